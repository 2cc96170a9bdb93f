"""Dead letters as an operator sees them: the preview, whether one may be replayed, --since."""

from __future__ import annotations

import argparse
import base64
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from cli.dlq_command import as_json, as_lines, since_of
from consumers.dlq import Replay, StoredDeadLetter, catalog_name, preview, why_not_replayable
from consumers.dlq.letters import HEAD_CHARS, Reached
from streams.bundles import bundle

ALARM = {
    "schema_version": 1,
    "alarm_id": "0f5c2a8e-1111-4c1e-9a55-0d1b2c3d4e5f",
    "received_at": "2026-12-06T02:00:00.000Z",
    "source_kind": "hotline",
    "source_id": "hotline",
    "text": "新建仓库门口有人打架,\x00快来",
    "place_id": "new-warehouse",
}


def stored(raw: bytes, **fields: object) -> StoredDeadLetter:
    """Return a dead letter of these bytes as the record holds it, whole."""
    text = base64.b64encode(raw).decode()
    letter = StoredDeadLetter(
        event_id=uuid.uuid4(),
        source_topic="alarms.raw",
        partition=0,
        offset=17,
        bundle_index=None,
        key=base64.b64encode(b"hotline").decode(),
        key_truncated=False,
        value=text,
        value_chars=len(text),
        value_truncated=False,
        reason="no position, and neither place_id, place_name, enterprise_id nor the text ...",
        errors=(),
        stage="classify",
        failed_at=datetime(2026, 12, 6, 2, 0, 1, tzinfo=UTC),
        replay=None,
        replay_of=None,
    )
    return replace(letter, **fields)  # type: ignore[arg-type]  # test fields by name


def alarm_bytes(**changes: object) -> bytes:
    """Return an alarm's JSON bytes with some fields changed."""
    return json.dumps(ALARM | changes, ensure_ascii=False).encode()


def test_the_preview_of_an_alarm_is_its_words_made_printable() -> None:
    letter = stored(alarm_bytes())
    assert preview(letter) == "新建仓库门口有人打架,\ufffd快来"
    assert letter.value_bytes == len(alarm_bytes())


def test_the_preview_of_a_long_alarm_is_read_from_the_head_of_its_value() -> None:
    long = alarm_bytes(text="有人打架" * 2000)
    whole = stored(long)
    head = replace(whole, value=whole.value[:HEAD_CHARS])
    assert not head.is_whole
    assert head.value_bytes == len(long)
    assert preview(head).startswith("有人打架有人打架")
    assert preview(head).endswith("…")
    assert len(preview(head)) == 72


def test_garbage_bundles_and_empty_values_say_what_they_are() -> None:
    assert preview(stored(b"\x00\x01 garbage\xff")).startswith("(11 bytes, not UTF-8: 00 01 20")
    assert preview(stored(bundle([(b"k", b"v")])[0])).startswith("(a bundle of")
    assert preview(stored(b"")) == "(empty)"
    assert preview(stored(b"plain words\nover lines")) == "plain words over lines"
    assert preview(replace(stored(b"x"), value="not base64!")) == "(stored value is not base64)"


def test_an_unplaced_alarm_may_be_replayed() -> None:
    assert why_not_replayable(stored(alarm_bytes())) is None
    assert why_not_replayable(stored(alarm_bytes(), source_topic="t0a1.alarms.raw")) is None


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"value_truncated": True}, "value was cut short"),
        ({"key_truncated": True}, "key was cut short"),
        ({"stage": "sink"}, "the pipeline handled it"),
        ({"source_topic": "commander.commands", "stage": "route"}, "gives it again"),
        ({"source_topic": "t9.responses.events", "stage": "route"}, "answers again"),
        ({"source_topic": "units.status", "stage": "route"}, "superseded"),
        ({"source_topic": "somebody.elses.topic"}, "only alarms are replayed"),
        ({"value": "%%%"}, "not base64"),
    ],
)
def test_what_must_not_be_replayed_says_why(fields: dict[str, object], words: str) -> None:
    why = why_not_replayable(stored(alarm_bytes(), **fields), force=True)
    assert why is not None
    assert words in why


def test_a_broken_bundle_is_not_replayed() -> None:
    why = why_not_replayable(stored(bundle([(b"k", b"v")])[0][:-1]))
    assert why is not None
    assert "bundle" in why


def test_a_record_that_failed_validation_needs_force() -> None:
    letter = stored(b"{}", errors=({"field": "alarm_id", "message": "Field required"},))
    why = why_not_replayable(letter)
    assert why is not None
    assert "alarm_id: Field required" in why
    assert "--force" in why
    assert why_not_replayable(letter, force=True) is None


def test_topics_are_named_with_or_without_a_prefix() -> None:
    assert catalog_name("alarms.raw") == "alarms.raw"
    assert catalog_name("t1a2b.alarms.classified") == "alarms.classified"
    assert catalog_name("alarms.rawish") is None


def test_the_table_shows_status_reason_value_and_a_failed_replay() -> None:
    original = uuid.uuid4()
    letter = stored(alarm_bytes(), replay_of=original)
    heading, reason, value, again = as_lines(letter)
    assert heading.startswith(f"{letter.event_id}  2026-12-06T02:00:01Z  classify")
    assert heading.endswith("alarms.raw[0]@17  pending")
    assert reason.startswith("    reason: no position")
    assert value.startswith("    value:  新建仓库门口有人打架")
    assert value.endswith(" bytes)")
    assert again == f"    the replay of dead letter {original}, failed again"
    done = Replay("alarms.raw", 0, 40, datetime(2026, 12, 6, 3, tzinfo=UTC), "cli:ops", 2)
    assert as_lines(replace(letter, replay=done))[0].endswith("replayed 2026-12-06T03:00:00Z (x2)")
    cut = as_lines(stored(alarm_bytes(), value_truncated=True))
    assert cut[0].endswith("not replayable")
    assert cut[-1].startswith("    not replayable:")


def test_json_carries_every_field() -> None:
    letter = stored(alarm_bytes(), value_truncated=True)
    entry = as_json(letter)
    assert entry["event_id"] == str(letter.event_id)
    assert entry["value_preview"].startswith("新建仓库")
    assert entry["status"] == "not replayable"
    assert "cut short" in entry["not_replayable"]
    assert entry["replay"] is None
    assert entry["replay_of"] is None
    json.dumps(entry)  # serialisable as it stands


def test_since_reads_an_age_or_a_time() -> None:
    before = datetime.now(UTC)
    since = since_of("2h")
    after = datetime.now(UTC)
    assert before - timedelta(hours=2) <= since <= after - timedelta(hours=2)
    assert since_of("2026-12-06T08:00+08:00") == datetime(2026, 12, 6, 0, tzinfo=UTC)
    assert since_of("2026-12-06") == datetime(2026, 12, 6, tzinfo=UTC)
    with pytest.raises(argparse.ArgumentTypeError, match="neither an age"):
        since_of("yesterday")


def test_the_alarm_id_is_read_from_the_head_and_a_handled_letter_says_so() -> None:
    letter = stored(alarm_bytes())
    assert str(letter.alarm_id) == ALARM["alarm_id"]
    assert stored(b"\x00\x01 garbage").alarm_id is None
    incident = uuid.uuid4()
    handled = replace(letter, reached=Reached(incident, datetime(2026, 12, 6, 3, tzinfo=UTC)))
    assert as_lines(handled)[0].endswith(f"handled: its alarm reached incident {incident}")
    entry = as_json(handled)
    assert entry["reached"] == {
        "incident_id": str(incident),
        "classified_at": "2026-12-06T03:00:00Z",
    }
    assert entry["not_replayable"] is None
