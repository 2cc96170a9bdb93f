"""Commander commands on the incident state machine."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from dispatch.events import (
    AssignmentKind,
    AssignmentRole,
    CommanderAction,
    CommanderCommand,
    IncidentState,
    PartyState,
)
from dispatch.lifecycle import CommandRejected, Incident, LifecyclePolicy, apply_command
from tests.unit.dispatch.lifecycle.test_lifecycle import T0, dispatched

POLICY = LifecyclePolicy()


def command(incident: Incident, action: CommanderAction, **fields: str) -> CommanderCommand:
    return CommanderCommand.model_validate(
        {
            "event_id": uuid.uuid4(),
            "incident_id": incident.incident_id,
            "action": action,
            "actor": "commander-1",
            "issued_at": T0 + timedelta(seconds=30),
            **fields,
        }
    )


def test_assign_sends_a_unit_the_routing_did_not_choose() -> None:
    incident = dispatched("patrol-1")
    effects = apply_command(
        incident, command(incident, CommanderAction.ASSIGN, unit_id="fire-1"), policy=POLICY
    )
    (job,) = effects.assignments
    assert (job.unit_id, job.role) == ("fire-1", AssignmentRole.SUPPORT)
    assert effects.state_changes[-1].actor == "commander-1"


def test_reassign_stands_one_unit_down_and_sends_another() -> None:
    incident = dispatched("patrol-1")
    cmd = command(incident, CommanderAction.REASSIGN, unit_id="patrol-2", from_unit_id="patrol-1")
    effects = apply_command(incident, cmd, policy=POLICY)
    states = {p.unit_id: p.state for p in effects.incident.parties}
    assert states == {"patrol-1": PartyState.CANCELLED, "patrol-2": PartyState.DISPATCHED}
    told, job = effects.assignments
    assert (told.unit_id, told.kind) == ("patrol-1", AssignmentKind.STAND_DOWN)
    assert job.role is AssignmentRole.PRIMARY  # the one it replaces led
    assert all(c.actor == "commander-1" for c in effects.state_changes)
    assert [d.unit_id for d in effects.incident.deadlines] == ["patrol-2"]


def test_cancel_and_close() -> None:
    incident = dispatched("patrol-1")
    cancelled = apply_command(incident, command(incident, CommanderAction.CANCEL), policy=POLICY)
    assert cancelled.incident.state is IncidentState.CANCELLED
    closed = apply_command(
        incident, command(incident, CommanderAction.CLOSE, reason="handled"), policy=POLICY
    )
    assert closed.incident.state is IncidentState.RESOLVED
    assert closed.incident.timing.resolved_at == T0 + timedelta(seconds=30)
    assert closed.state_changes[0].reason == "handled"
    with pytest.raises(CommandRejected, match="already resolved"):
        apply_command(closed.incident, command(incident, CommanderAction.CANCEL), policy=POLICY)


def test_replayed_command_changes_nothing() -> None:
    incident = dispatched("patrol-1")
    cmd = command(incident, CommanderAction.ASSIGN, unit_id="patrol-2")
    once = apply_command(incident, cmd, policy=POLICY)
    twice = apply_command(once.incident, cmd, policy=POLICY)
    assert twice.incident == once.incident
    assert twice.assignments == ()


def test_bad_commands_are_rejected() -> None:
    incident = dispatched("patrol-1")
    with pytest.raises(CommandRejected, match="already on incident"):
        apply_command(
            incident, command(incident, CommanderAction.ASSIGN, unit_id="patrol-1"), policy=POLICY
        )
    cmd = command(incident, CommanderAction.REASSIGN, unit_id="patrol-2", from_unit_id="ghost")
    with pytest.raises(CommandRejected, match="not active"):
        apply_command(incident, cmd, policy=POLICY)
