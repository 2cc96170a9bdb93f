"""The commander's command frame: parsing, the event it becomes, refusals that name the field."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from consumers.push.actions import command_event_id
from consumers.push.protocol import BadFrame, CommandFrame, parse_client_frame
from dispatch.events import CommanderAction, CommanderCommand, encode, key_of, spec_for

NOW = datetime(2026, 11, 26, 3, 6, 0, tzinfo=UTC)
INCIDENT = uuid.UUID("6f1d2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b")
COMMAND = uuid.UUID("0b6c7d8e-9f00-4a1b-8c2d-3e4f5a6b7c8d")
ACTOR = "commander-zhang"


def frame(**fields: Any) -> dict[str, Any]:
    """Return a command frame as a client sends it, with the given fields changed."""
    base: dict[str, Any] = {
        "type": "command",
        "command_id": str(COMMAND),
        "action": "cancel",
        "incident_id": str(INCIDENT),
    }
    return {k: v for k, v in (base | fields).items() if v is not None}


def parse(data: dict[str, Any]) -> CommandFrame:
    parsed = parse_client_frame(json.dumps(data))
    assert isinstance(parsed, CommandFrame)
    return parsed


def to_command(data: dict[str, Any]) -> CommanderCommand:
    """Parse a frame and turn it into its event, as the gateway does."""
    return parse(data).command(
        event_id=command_event_id(ACTOR, COMMAND), actor=ACTOR, issued_at=NOW
    )


def refusal(data: dict[str, Any]) -> BadFrame:
    """Return the refusal of a frame, at parsing or when it becomes its event."""
    with pytest.raises(BadFrame) as caught:
        to_command(data)
    return caught.value


def fields(exc: BadFrame) -> list[str]:
    return [error.field for error in exc.errors]


@pytest.mark.parametrize(
    ("changes", "unit_id", "from_unit_id"),
    [
        ({"action": "cancel"}, None, None),
        ({"action": "close", "reason": "suspect caught"}, None, None),
        ({"action": "assign", "unit_id": "patrol-xihe-2"}, "patrol-xihe-2", None),
        (
            {"action": "reassign", "unit_id": "patrol-xihe-2", "from_unit_id": "patrol-cd-1"},
            "patrol-xihe-2",
            "patrol-cd-1",
        ),
    ],
)
def test_each_action_becomes_its_event_with_the_commander_as_actor(
    changes: dict[str, str], unit_id: str | None, from_unit_id: str | None
) -> None:
    command = to_command(frame(**changes, ref="c-1"))
    assert command.action is CommanderAction(changes["action"])
    assert (command.incident_id, command.unit_id, command.from_unit_id) == (
        INCIDENT,
        unit_id,
        from_unit_id,
    )
    assert (command.actor, command.issued_at, command.event_id) == (
        ACTOR,
        NOW,
        command_event_id(ACTOR, COMMAND),
    )
    assert command.reason == changes.get("reason")
    # It goes to commander.commands, keyed by the incident, as the catalog says.
    assert spec_for(CommanderCommand).name == "commander.commands"
    assert key_of(command) == str(INCIDENT).encode()
    assert CommanderCommand.model_validate_json(encode(command)) == command


def test_the_ref_is_kept_and_is_not_part_of_the_event() -> None:
    parsed = parse(frame(ref="c-7"))
    assert parsed.ref == "c-7"
    assert "ref" not in json.loads(encode(to_command(frame(ref="c-7"))))


def test_the_event_id_is_the_same_for_a_repeat_and_belongs_to_one_commander() -> None:
    assert command_event_id(ACTOR, COMMAND) == command_event_id(ACTOR, COMMAND)
    assert command_event_id(ACTOR, COMMAND) != command_event_id(ACTOR, uuid.uuid4())
    # Two commanders who happen to pick one command id make two events.
    assert command_event_id(ACTOR, COMMAND) != command_event_id("commander-li", COMMAND)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"command_id": None}, "command_id"),
        ({"command_id": "c-1"}, "command_id"),
        ({"action": None}, "action"),
        ({"action": "promote"}, "action"),
        ({"incident_id": None}, "incident_id"),
        ({"incident_id": "incident-42"}, "incident_id"),
        ({"action": "assign", "unit_id": "has space"}, "unit_id"),
        ({"action": "assign", "unit_id": 7}, "unit_id"),
        ({"reason": ""}, "reason"),
        ({"reason": "x" * 2001}, "reason"),
        ({"ref": ""}, "ref"),
        ({"ref": "r" * 65}, "ref"),
        ({"actor": "commander-li"}, "actor"),
        ({"event_id": str(uuid.uuid4())}, "event_id"),
        ({"priority": "P1"}, "priority"),
        # The rules of which unit an action names are the event's, applied to the frame.
        ({"action": "assign"}, "unit_id"),
        ({"action": "reassign", "from_unit_id": "patrol-cd-1"}, "unit_id"),
        ({"action": "reassign", "unit_id": "patrol-xihe-2"}, "from_unit_id"),
        ({"action": "assign", "unit_id": "u-1", "from_unit_id": "u-2"}, "from_unit_id"),
        ({"action": "close", "from_unit_id": "u-2"}, "from_unit_id"),
    ],
)
def test_a_bad_command_names_the_field(changes: dict[str, Any], field: str) -> None:
    exc = refusal(frame(**changes))
    assert fields(exc) == [field], exc.errors
    assert str(exc).startswith(f"bad frame: {field}: ")


def test_a_refused_command_keeps_the_clients_ref_at_either_step() -> None:
    assert refusal(frame(action="promote", ref="c-2")).ref == "c-2"
    assert refusal(frame(action="assign", ref="c-3")).ref == "c-3"


def test_the_actor_and_the_time_come_from_the_gateway_not_the_client() -> None:
    command = parse(frame()).command(
        event_id=command_event_id("commander-li", COMMAND), actor="commander-li", issued_at=NOW
    )
    assert command.actor == "commander-li"
    # The gateway's actor must itself be valid: a broken principal id is refused, not sent.
    with pytest.raises(BadFrame) as caught:
        parse(frame()).command(event_id=uuid.uuid4(), actor="not valid", issued_at=NOW)
    assert fields(caught.value) == ["actor"]
