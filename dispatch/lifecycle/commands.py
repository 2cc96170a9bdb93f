"""What a commander's manual decisions do to an incident: assign, reassign, cancel, close."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from dispatch.events import (
    AssignmentKind,
    AssignmentRole,
    CommanderAction,
    CommanderCommand,
    IncidentState,
    PartyState,
)
from dispatch.lifecycle.incident import MAX_REMEMBERED_EVENTS, Incident, earliest
from dispatch.lifecycle.policy import LifecyclePolicy
from dispatch.lifecycle.responses import cancel
from dispatch.lifecycle.transitions import (
    ACTIVE_PARTY_STATES,
    Effects,
    Offer,
    dispatch_offers,
    state_change,
    withdraw,
)


class CommandRejected(ValueError):
    """Raised when a command cannot apply to this incident (names the reason)."""


def apply_command(
    incident: Incident,
    command: CommanderCommand,
    *,
    policy: LifecyclePolicy,
    is_unit: Callable[[str], bool] = lambda _: True,
) -> Effects:
    """Apply one commander command; a replayed command changes nothing.

    is_unit tells whether a unit id names a unit of the zone: a job for any other id would
    wait in an outbox no device ever reads, while the commander believes someone is coming.
    """
    if command.event_id in incident.seen_event_ids:
        return Effects(incident)
    if incident.is_closed:
        raise CommandRejected(f"incident {incident.incident_id} is already {incident.state}")
    if command.unit_id is not None and not is_unit(command.unit_id):
        raise CommandRejected(f"unit {command.unit_id} is not a unit of the zone")
    seen = (*incident.seen_event_ids, command.event_id)[-MAX_REMEMBERED_EVENTS:]
    remembered = incident.model_copy(update={"seen_event_ids": seen})
    reason = command.reason or f"by {command.actor}"
    at = command.issued_at
    if command.action is CommanderAction.CANCEL:
        return cancel(remembered, reason=reason, actor=command.actor, now=at)
    if command.action is CommanderAction.CLOSE:
        return close(remembered, reason=reason, actor=command.actor, now=at)
    unit_id = command.unit_id
    if unit_id is None:
        raise CommandRejected(f"{command.action} needs unit_id")
    effects = Effects(remembered)
    if command.action is CommanderAction.REASSIGN:
        if command.from_unit_id is None:
            raise CommandRejected("reassign needs from_unit_id")
        effects = stand_down(
            remembered, unit_id=command.from_unit_id, reason=reason, actor=command.actor, now=at
        )
    leading = any(
        p.role is AssignmentRole.PRIMARY and p.state in ACTIVE_PARTY_STATES
        for p in effects.incident.parties
    )
    role = AssignmentRole.SUPPORT if leading else AssignmentRole.PRIMARY
    offer = Offer(unit_id, role, AssignmentKind.ASSIGNMENT)
    sent = dispatch_offers(effects.incident, (offer,), now=at, policy=policy, actor=command.actor)
    if not sent.assignments:
        raise CommandRejected(f"unit {unit_id} is already on incident {incident.incident_id}")
    queue_done = sent.incident.model_copy(update={"in_commander_queue": False})
    return effects.then(Effects(queue_done, sent.assignments, sent.state_changes))


def stand_down(
    incident: Incident, *, unit_id: str, reason: str, actor: str, now: datetime
) -> Effects:
    """Take one unit off the incident (the rest carry on)."""
    party = next(
        (p for p in incident.parties if p.unit_id == unit_id and p.state in ACTIVE_PARTY_STATES),
        None,
    )
    if party is None:
        raise CommandRejected(f"unit {unit_id} is not active on incident {incident.incident_id}")
    parties = tuple(
        p.model_copy(update={"state": PartyState.CANCELLED}) if p is party else p
        for p in incident.parties
    )
    deadlines = tuple(d for d in incident.deadlines if d.assignment_id != party.assignment_id)
    updated = incident.model_copy(update={"parties": parties, "deadlines": deadlines})
    change = state_change(
        updated,
        IncidentState.REDISPATCHED,
        previous=incident.state,
        reason=f"{unit_id} stood down: {reason}",
        actor=actor,
        at=now,
    )
    told = withdraw(updated, (party,), reason=f"reassigned by {actor}: {reason}", at=now)
    return Effects(updated, told.stand_downs, (change,), freed_units=told.freed_units)


def close(incident: Incident, *, reason: str, actor: str, now: datetime) -> Effects:
    """Resolve the incident by a commander's decision; active parties are stood down."""
    active = [p for p in incident.parties if p.state in ACTIVE_PARTY_STATES]
    parties = tuple(
        p.model_copy(update={"state": PartyState.RESOLVED}) if p.state in ACTIVE_PARTY_STATES else p
        for p in incident.parties
    )
    timing = incident.timing.model_copy(
        update={"resolved_at": earliest(incident.timing.resolved_at, now)}
    )
    updated = incident.model_copy(
        update={
            "parties": parties,
            "deadlines": (),
            "timing": timing,
            "state": IncidentState.RESOLVED,
            "in_commander_queue": False,
        }
    )
    change = state_change(
        updated, IncidentState.RESOLVED, previous=incident.state, reason=reason, actor=actor, at=now
    )
    told = withdraw(updated, active, reason=f"closed by {actor}: {reason}", at=now)
    return Effects(updated, told.stand_downs, (change,), freed_units=told.freed_units)
