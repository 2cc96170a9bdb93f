"""The services' logging set-up: JSON lines or text, the ids of `extra=`, and no token."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from consumers.logs import REDACTED, redact, setup_logging, wants_json

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1bml0LTcifQ.c2lnbmF0dXJl"  # a JWT's shape


@pytest.fixture
def restore_root() -> Iterator[None]:
    """Put the root logger back as pytest had it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


@pytest.mark.usefixtures("restore_root")
def test_json_lines_carry_the_ids_given_with_extra() -> None:
    out = io.StringIO()
    setup_logging(stream=out, json_lines=True)
    logging.getLogger("streams.route").info(
        "unit %s sent", "E-12", extra={"incident_id": "inc-1", "alarm_id": "al-9"}
    )
    [line] = _lines(out)
    entry = json.loads(line)
    assert entry["message"] == "unit E-12 sent"
    assert entry["incident_id"] == "inc-1"
    assert entry["alarm_id"] == "al-9"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "streams.route"
    assert "time" in entry


@pytest.mark.usefixtures("restore_root")
def test_text_lines_are_readable_and_keep_the_ids() -> None:
    out = io.StringIO()
    setup_logging(stream=out, json_lines=False)
    logging.getLogger("consumers.push").warning("late ack", extra={"incident_id": "inc-2"})
    [line] = _lines(out)
    assert "WARNING consumers.push: late ack" in line
    assert "incident_id=inc-2" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


@pytest.mark.usefixtures("restore_root")
@pytest.mark.parametrize("json_lines", [True, False])
def test_no_token_reaches_a_line(json_lines: bool) -> None:
    out = io.StringIO()
    setup_logging(stream=out, json_lines=json_lines)
    log = logging.getLogger("uvicorn.error")
    log.info("header Authorization: Bearer %s", TOKEN)
    log.info("GET /v1/units/feed?token=%s HTTP/1.1", "s3cr3t-value")
    log.info("bare %s in the message", TOKEN)
    log.info("as a field", extra={"alarm_id": "al-1", "header": f"Bearer {TOKEN}"})
    text = out.getvalue()
    assert TOKEN not in text
    assert "s3cr3t-value" not in text
    assert text.count(REDACTED) == 4
    assert "al-1" in text


def test_redact_leaves_ordinary_text() -> None:
    plain = "alarm al-42 of incident inc-7 routed to E-3 (score 0.8)"
    assert redact(plain) == plain
    assert redact("Bearer abc.def") == f"Bearer {REDACTED}"
    assert redact('{"token": "xyz"}') == f'{{"token": "{REDACTED}"}}'


@pytest.mark.usefixtures("restore_root")
def test_a_second_setup_replaces_the_first_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    setup_logging(stream=first, json_lines=True)
    setup_logging(stream=second, json_lines=True)
    logging.getLogger("x").info("once")
    assert first.getvalue() == ""
    assert len(_lines(second)) == 1


def test_form_follows_the_variable_then_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("DISPATCH_LOG_FORMAT", raising=False)
    assert wants_json(io.StringIO())
    assert not wants_json(Terminal())
    monkeypatch.setenv("DISPATCH_LOG_FORMAT", "json")
    assert wants_json(Terminal())
    monkeypatch.setenv("DISPATCH_LOG_FORMAT", "text")
    assert not wants_json(io.StringIO())
