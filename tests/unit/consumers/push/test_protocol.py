"""The push protocol's frames: parsing, refusals that name the field, and docs/protocol.md."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from consumers.push.protocol import (
    AckFrame,
    AuthFrame,
    BadFrame,
    CommandFrame,
    ErrorCode,
    ErrorFrame,
    HelloFrame,
    IncidentFrame,
    JobFrame,
    PositionFrame,
    RespondAction,
    RespondFrame,
    UnitStatusFrame,
    error_frame,
    incident_frame,
    job_frame,
    parse_client_frame,
    parse_server_frame,
    unit_status_frame,
)
from dispatch.events import (
    Assignment,
    AssignmentKind,
    AssignmentRole,
    Category,
    CommanderAction,
    FieldError,
    IncidentState,
    IncidentStateChange,
    IncidentTiming,
    Position,
    Priority,
    ResponseAction,
    UnitAvailability,
    UnitStatus,
    encode,
)

DOC = Path(__file__).resolve().parents[4] / "docs" / "protocol.md"
JSON_BLOCK = re.compile(r"```json\n(.*?)```", re.DOTALL)
NOW = datetime(2026, 11, 26, 3, 4, 5, 123000, tzinfo=UTC)


def assignment() -> Assignment:
    return Assignment(
        assignment_id=uuid.uuid4(),
        incident_id=uuid.uuid4(),
        unit_id="patrol-1",
        kind=AssignmentKind.MUTUAL_AID_ALERT,
        role=AssignmentRole.MUTUAL_AID,
        attempt=1,
        priority=Priority.P1,
        category=Category.ROBBERY,
        position=Position(lat=31.7, lon=113.4),
        place_name='恒通 gate "2"',
        dispatched_at=NOW,
        ack_deadline=NOW + timedelta(minutes=5),
        summary="P1 robbery",
    )


def refusal(data: str | bytes) -> BadFrame:
    with pytest.raises(BadFrame) as caught:
        parse_client_frame(data)
    return caught.value


def fields(exc: BadFrame) -> list[str]:
    return [error.field for error in exc.errors]


# -- client frames ------------------------------------------------------------------------------


def test_each_client_frame_parses() -> None:
    auth = parse_client_frame('{"type": "auth", "token": "dsp_abc"}')
    assert isinstance(auth, AuthFrame)
    assert auth.token.get_secret_value() == "dsp_abc"
    assert "dsp_abc" not in repr(auth)
    assert parse_client_frame('{"type": "hello"}') == HelloFrame(type="hello")
    assert parse_client_frame('{"type": "hello", "last_acked_seq": 0}') == HelloFrame(
        type="hello", last_acked_seq=0
    )
    assert parse_client_frame('{"type": "ack", "seq": 7}') == AckFrame(type="ack", seq=7)
    job = uuid.uuid4()
    respond = parse_client_frame(
        json.dumps({"type": "respond", "assignment_id": str(job), "action": "on_scene"})
    )
    assert isinstance(respond, RespondFrame)
    assert (respond.assignment_id, respond.action.as_response()) == (job, ResponseAction.ON_SCENE)
    position = parse_client_frame(
        '{"type": "position", "lat": 31.7, "lon": 113.4, "status": "busy", "ref": "p"}'
    )
    assert isinstance(position, PositionFrame)
    assert (position.status, position.accuracy_m, position.ref) == (
        UnitAvailability.BUSY,
        None,
        "p",
    )


def test_every_answer_but_ack_is_a_response_action() -> None:
    # The ack has its own frame; `taken` is the reserve stage's, never a unit's.
    own = {ResponseAction.ACK, ResponseAction.TAKEN}
    assert {a.as_response() for a in RespondAction} == set(ResponseAction) - own


def test_a_unit_cannot_answer_taken() -> None:
    frame = json.dumps({"type": "respond", "seq": 1, "action": "taken"})
    assert fields(refusal(frame)) == ["action"]


def test_a_command_parses_into_its_frame() -> None:
    incident, command_id = uuid.uuid4(), uuid.uuid4()
    frame = parse_client_frame(
        json.dumps(
            {
                "type": "command",
                "command_id": str(command_id),
                "action": "assign",
                "incident_id": str(incident),
                "unit_id": "u",
                "ref": "c",
            }
        )
    )
    assert frame == CommandFrame(
        type="command",
        command_id=command_id,
        action=CommanderAction.ASSIGN,
        incident_id=incident,
        unit_id="u",
        ref="c",
    )


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ("not json", "$"),
        ("[1, 2]", "$"),
        ("{}", "type"),
        ('{"type": "subscribe"}', "type"),
        ('{"type": "hello", "last_acked_seq": -1}', "last_acked_seq"),
        ('{"type": "hello", "last_acked_seq": "x"}', "last_acked_seq"),
        ('{"type": "ack"}', "seq"),
        ('{"type": "ack", "seq": 0}', "seq"),
        ('{"type": "ack", "seq": 1, "extra": true}', "extra"),
        ('{"type": "auth", "token": ""}', "token"),
        ('{"type": "respond", "seq": 1, "action": "ack"}', "action"),
        ('{"type": "respond", "action": "accept"}', "assignment_id"),
        ('{"type": "respond", "seq": 1, "action": "decline"}', "reason"),
        ('{"type": "respond", "seq": 1, "action": "accept", "reason": ""}', "reason"),
        ('{"type": "position", "lat": 91, "lon": 0, "status": "available"}', "lat"),
        ('{"type": "position", "lat": 0, "lon": 0, "status": "sleeping"}', "status"),
        ('{"type": "position", "lat": 0, "lon": 0}', "status"),
    ],
)
def test_a_bad_frame_names_the_field(data: str, field: str) -> None:
    assert field in fields(refusal(data))


def test_a_respond_names_one_job_not_two() -> None:
    data = {"type": "respond", "seq": 1, "assignment_id": str(uuid.uuid4()), "action": "accept"}
    assert fields(refusal(json.dumps(data))) == ["assignment_id"]


def test_a_binary_frame_is_refused() -> None:
    assert fields(refusal(b'{"type": "ack", "seq": 1}')) == ["$"]


def test_a_refused_frame_keeps_the_clients_ref() -> None:
    exc = refusal('{"type": "respond", "seq": 1, "action": "decline", "ref": "d-1"}')
    assert exc.ref == "d-1"
    assert "reason" in str(exc)
    assert refusal("nope").ref is None


# -- gateway frames -----------------------------------------------------------------------------


def test_a_spliced_job_frame_is_a_job_frame() -> None:
    job = assignment()
    frame = parse_server_frame(job_frame(42, job.model_dump_json()))
    assert frame == JobFrame(seq=42, assignment=job)


def test_spliced_board_frames_parse() -> None:
    change = IncidentStateChange(
        event_id=uuid.uuid4(),
        incident_id=uuid.uuid4(),
        state=IncidentState.DISPATCHED,
        actor="system",
        at=NOW,
        priority=Priority.P2,
        category=Category.FIGHT,
        enterprise_id="ent-1",
        timing=IncidentTiming(received_at=NOW, dispatched_at=NOW + timedelta(seconds=1)),
    )
    incident = parse_server_frame(incident_frame(encode(change).decode()))
    assert incident == IncidentFrame(change=change)
    status = UnitStatus(
        event_id=uuid.uuid4(), unit_id="u-1", status=UnitAvailability.OFF_DUTY, reported_at=NOW
    )
    assert parse_server_frame(unit_status_frame(encode(status).decode())) == UnitStatusFrame(
        status=status
    )


def test_an_error_frame_carries_the_fields_and_the_wait() -> None:
    errors = [FieldError(field="reason", message="a decline must give a reason")]
    frame = parse_server_frame(error_frame(ErrorCode.BAD_FRAME, "bad", ref="r", errors=errors))
    assert frame == ErrorFrame(
        code=ErrorCode.BAD_FRAME, message="bad", ref="r", errors=tuple(errors)
    )
    limited = parse_server_frame(error_frame(ErrorCode.RATE_LIMITED, "slow", retry_after_s=1.5))
    assert isinstance(limited, ErrorFrame)
    assert limited.retry_after_s == 1.5


def test_a_server_frame_of_unknown_type_does_not_parse() -> None:
    with pytest.raises(ValidationError):
        parse_server_frame('{"type": "job", "seq": 1}')


# -- docs/protocol.md ---------------------------------------------------------------------------


def doc_examples() -> list[dict[str, Any]]:
    return [json.loads(block) for block in JSON_BLOCK.findall(DOC.read_text(encoding="utf-8"))]


def test_every_example_in_the_protocol_doc_is_a_frame() -> None:
    client_types, server_types = set(), set()
    for example in doc_examples():
        text = json.dumps(example)
        try:
            client_types.add(parse_client_frame(text).type)
        except BadFrame:
            server_types.add(parse_server_frame(text).type)
    assert client_types == {"auth", "hello", "ack", "respond", "position", "command"}
    assert server_types == {
        "welcome",
        "resume",
        "job",
        "ok",
        "error",
        "incident",
        "unit_status",
        "command_outcome",
    }


def test_every_error_code_and_close_code_is_documented() -> None:
    doc = DOC.read_text(encoding="utf-8")
    for code in ErrorCode:
        assert f"| `{code}` |" in doc
    for close in ("4001", "4002", "4003", "4008", "1013"):
        assert f"| {close} |" in doc
