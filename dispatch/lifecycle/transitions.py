"""Incident transitions: each takes the stored incident and returns it with the events to emit.

Every id made here is derived from what it records (uuid5), never random, so that a stage that
replays its input after a crash re-emits the same assignment and state-change ids, which every
consumer deduplicates on.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dispatch.display import printable
from dispatch.events import (
    Assignment,
    AssignmentKind,
    AssignmentRole,
    IncidentState,
    IncidentStateChange,
    Party,
    PartyState,
)
from dispatch.events.incidents import RECENT_MERGED_IDS
from dispatch.lifecycle.incident import Deadline, Incident, earliest
from dispatch.lifecycle.policy import LifecyclePolicy

ID_NAMESPACE = uuid.UUID("a1e7d0c2-5b8f-4c36-9d0e-2f4b6a8c1e3d")
# Alarm ids an incident keeps (the newest); alarm_count counts them all.
RECENT_ALARM_IDS = RECENT_MERGED_IDS + 1
SYSTEM = "system"
STAND_DOWN_ACK = timedelta(minutes=5)

# The order of progress; an incident never moves back down it (a late en_route after on_scene
# changes nothing).
PROGRESS = (
    IncidentState.CLASSIFIED,
    IncidentState.DISPATCHED,
    IncidentState.ACCEPTED,
    IncidentState.EN_ROUTE,
    IncidentState.ON_SCENE,
    IncidentState.RESOLVED,
)
ACTIVE_PARTY_STATES = frozenset(
    {
        PartyState.DISPATCHED,
        PartyState.DELIVERED,
        PartyState.ACKED,
        PartyState.ACCEPTED,
        PartyState.EN_ROUTE,
        PartyState.ON_SCENE,
    }
)
AWAITING_ACCEPT = frozenset({PartyState.DISPATCHED, PartyState.DELIVERED, PartyState.ACKED})


class ResponseRejected(ValueError):
    """Raised when a response names an assignment this incident never gave that unit."""


@dataclass(frozen=True)
class Offer:
    """One unit to send or alert, as routing chose it."""

    unit_id: str
    role: AssignmentRole
    kind: AssignmentKind
    eta_s: float | None = None


@dataclass(frozen=True)
class Effects:
    """The incident after a transition, and what to publish because of it."""

    incident: Incident
    assignments: tuple[Assignment, ...] = ()
    state_changes: tuple[IncidentStateChange, ...] = ()
    # Route again for units_still_needed(incident), excluding the units already tried.
    reroute: bool = False
    # Units whose job was withdrawn by a decision, not by their own silence: free again.
    freed_units: tuple[str, ...] = ()

    def then(self, later: Effects) -> Effects:
        """Combine with the effects of a transition applied to this one's incident."""
        return Effects(
            later.incident,
            assignments=self.assignments + later.assignments,
            state_changes=self.state_changes + later.state_changes,
            reroute=later.reroute,
            freed_units=self.freed_units + later.freed_units,
        )


@dataclass(frozen=True)
class Withdrawal:
    """The stand-downs telling parties their jobs are withdrawn, and the units that frees."""

    stand_downs: tuple[Assignment, ...]
    freed_units: tuple[str, ...]


def notice(
    incident: Incident,
    party: Party,
    *,
    kind: AssignmentKind,
    at: datetime,
    summary: str,
    of: object = None,
    **fields: Any,
) -> Assignment:
    """Return a notice to a party about its job (a stand-down, an update), with the incident's
    fields and the party's unit and role. Its id derives from the job, the kind and `of` (the
    alarm an update tells of), so a replay makes the very same notice."""
    assert party.assignment_id is not None  # a party that was never sent a job gets none
    key = f"{party.assignment_id}:{kind}" + ("" if of is None else f":{of}")
    return Assignment(
        schema_version=2,
        assignment_id=uuid.uuid5(ID_NAMESPACE, key),
        incident_id=incident.incident_id,
        unit_id=party.unit_id,
        kind=kind,
        role=party.role,
        attempt=max(1, incident.attempt),
        priority=incident.priority,
        category=incident.category,
        position=incident.position,
        place_name=incident.place_name,
        dispatched_at=at,
        # Nothing escalates on a notice; the field keeps the record's one shape.
        ack_deadline=at + STAND_DOWN_ACK,
        summary=printable(summary)[:200],
        **fields,
    )


def withdraw(
    incident: Incident, parties: Iterable[Party], *, reason: str, at: datetime, frees: bool = True
) -> Withdrawal:
    """Stand each party down: one stand-down per job, which frees its unit unless frees=False.

    A mutual-aid guard is told too but freed by nobody: alerting it never made it busy. The
    stand-down's id derives from the job it withdraws, so a replay withdraws nothing twice.
    """
    stand_downs, freed = [], []
    for party in parties:
        if party.assignment_id is None:
            continue  # never sent a job, so there is nothing to withdraw
        stand_downs.append(
            notice(
                incident,
                party,
                kind=AssignmentKind.STAND_DOWN,
                at=at,
                summary=f"Stand down: {reason}",
                withdraws=party.assignment_id,
                reason=reason[:2000],
            )
        )
        if frees and party.kind is AssignmentKind.ASSIGNMENT:
            freed.append(party.unit_id)
    return Withdrawal(tuple(stand_downs), tuple(freed))


def units_still_needed(incident: Incident) -> int:
    """Return how many more units must be sent for the incident to be fully covered."""
    covering = sum(
        1
        for p in incident.parties
        if p.kind is AssignmentKind.ASSIGNMENT and p.state in ACTIVE_PARTY_STATES
    )
    return 0 if incident.is_closed else max(0, incident.units_needed - covering)


def state_change(
    incident: Incident,
    state: IncidentState,
    *,
    previous: IncidentState,
    reason: str | None,
    actor: str,
    at: datetime,
) -> IncidentStateChange:
    """Build the state-change event for an incident as it now stands."""
    key = f"{incident.incident_id}:{state}:{at.isoformat()}:{reason}:{len(incident.parties)}"
    # Incidents stored before first_alarm_id existed still hold their first alarm first.
    first = incident.first_alarm_id or (incident.alarm_ids[0] if incident.alarm_ids else None)
    merged = tuple(alarm_id for alarm_id in incident.alarm_ids if alarm_id != first)
    return IncidentStateChange(
        event_id=uuid.uuid5(ID_NAMESPACE, key),
        incident_id=incident.incident_id,
        state=state,
        previous_state=previous,
        reason=reason[:2000] if reason else None,
        actor=actor,
        at=at,
        priority=incident.priority,
        category=incident.category,
        position=incident.position,
        place_name=incident.place_name,
        enterprise_id=incident.enterprise_id,
        timing=incident.timing,
        parties=incident.parties,
        merged_alarm_ids=merged[-RECENT_MERGED_IDS:],
        alarm_count=max(incident.alarm_count, len(incident.alarm_ids)),
        first_alarm_id=first,
        text=incident.text,
        reporter_name=incident.reporter_name,
        reporter_phone=incident.reporter_phone,
    )


def advance(incident: Incident, state: IncidentState) -> IncidentState:
    if state in PROGRESS and incident.state in PROGRESS:
        return max(incident.state, state, key=PROGRESS.index)
    return state


def assignment_id_for(incident: Incident, offer: Offer, attempt: int) -> uuid.UUID:
    """Return the id an offer gets; the same offer on replay gets the same id."""
    return uuid.uuid5(
        ID_NAMESPACE, f"{incident.incident_id}:{offer.unit_id}:{offer.kind}:{attempt}"
    )


def dispatch_offers(
    incident: Incident,
    offers: tuple[Offer, ...],
    *,
    now: datetime,
    policy: LifecyclePolicy,
    actor: str = SYSTEM,
) -> Effects:
    """Send the offered units, with their deadlines; a unit already on the incident is skipped."""
    engaged = {p.unit_id for p in incident.parties if p.state in ACTIVE_PARTY_STATES}
    fresh = tuple(o for o in offers if o.unit_id not in engaged)
    if incident.is_closed or not fresh:
        return Effects(incident)
    attempt = incident.attempt + 1
    parties, deadlines, assignments = list(incident.parties), list(incident.deadlines), []
    for offer in fresh:
        assignment_id = assignment_id_for(incident, offer, attempt)
        is_aid = offer.kind is AssignmentKind.MUTUAL_AID_ALERT
        timeout = (
            policy.mutual_aid_ack_timeout if is_aid else policy.accept_timeout(incident.priority)
        )
        assignments.append(
            Assignment(
                assignment_id=assignment_id,
                incident_id=incident.incident_id,
                unit_id=offer.unit_id,
                kind=offer.kind,
                role=offer.role,
                attempt=attempt,
                priority=incident.priority,
                category=incident.category,
                position=incident.position,
                place_name=incident.place_name,
                eta_s=offer.eta_s,
                dispatched_at=now,
                ack_deadline=now + timeout,
                summary=incident.summary,
                text=incident.text,
                # Who called and their number go to the units sent, not to every guard
                # alerted nearby (guards of other enterprises among them).
                reporter_name=None if is_aid else incident.reporter_name,
                reporter_phone=None if is_aid else incident.reporter_phone,
            )
        )
        parties.append(
            Party(
                unit_id=offer.unit_id,
                assignment_id=assignment_id,
                role=offer.role,
                kind=offer.kind,
                state=PartyState.DISPATCHED,
                dispatched_at=now,
            )
        )
        deadlines.append(
            Deadline(assignment_id=assignment_id, unit_id=offer.unit_id, due_at=now + timeout)
        )
    sends_units = any(o.kind is AssignmentKind.ASSIGNMENT for o in fresh)
    state = IncidentState.REDISPATCHED if incident.attempt > 0 else IncidentState.DISPATCHED
    timing = incident.timing.model_copy(
        update={"dispatched_at": earliest(incident.timing.dispatched_at, now)}
    )
    stored = advance(incident, IncidentState.DISPATCHED) if sends_units else incident.state
    updated = incident.model_copy(
        update={
            "parties": tuple(parties)[-64:],
            "deadlines": tuple(deadlines)[-64:],
            "attempt": attempt,
            "timing": timing if sends_units else incident.timing,
            "state": stored,
        }
    )
    names = ", ".join(o.unit_id for o in fresh)
    change = state_change(
        updated,
        state,
        previous=incident.state,
        reason=f"attempt {attempt}: {names}",
        actor=actor,
        at=now,
    )
    return Effects(updated, assignments=tuple(assignments), state_changes=(change,))


def escalate(incident: Incident, *, reason: str, now: datetime, actor: str = SYSTEM) -> Effects:
    """Put the incident in the commander queue and say why; nothing waits silently."""
    if incident.is_closed:
        return Effects(incident)
    queued = incident.model_copy(update={"in_commander_queue": True})
    change = state_change(
        queued, IncidentState.ESCALATED, previous=incident.state, reason=reason, actor=actor, at=now
    )
    return Effects(queued, state_changes=(change,))
