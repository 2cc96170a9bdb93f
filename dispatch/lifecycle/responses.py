"""What units' responses, expired deadlines and commanders' cancellations do to an incident."""

from __future__ import annotations

import uuid
from datetime import datetime

from dispatch.events import (
    AssignmentKind,
    IncidentState,
    IncidentTiming,
    Party,
    PartyState,
    ResponseAction,
    ResponseEvent,
)
from dispatch.lifecycle.incident import MAX_REMEMBERED_EVENTS, Deadline, Incident, earliest
from dispatch.lifecycle.transitions import (
    ACTIVE_PARTY_STATES,
    AWAITING_ACCEPT,
    SYSTEM,
    Effects,
    ResponseRejected,
    advance,
    state_change,
    units_still_needed,
    withdraw,
)

# What each action makes of the party, and of the incident when the party is an assignment.
PARTY_STATE = {
    ResponseAction.ACK: PartyState.ACKED,
    ResponseAction.ACCEPT: PartyState.ACCEPTED,
    ResponseAction.DECLINE: PartyState.DECLINED,
    ResponseAction.EN_ROUTE: PartyState.EN_ROUTE,
    ResponseAction.ON_SCENE: PartyState.ON_SCENE,
    ResponseAction.RESOLVED: PartyState.RESOLVED,
    ResponseAction.TAKEN: PartyState.TAKEN,
}
INCIDENT_STATE = {
    ResponseAction.ACCEPT: IncidentState.ACCEPTED,
    ResponseAction.DECLINE: IncidentState.DECLINED,
    ResponseAction.EN_ROUTE: IncidentState.EN_ROUTE,
    ResponseAction.ON_SCENE: IncidentState.ON_SCENE,
    ResponseAction.RESOLVED: IncidentState.RESOLVED,
}
TIMING_FIELD = {
    ResponseAction.ACK: "delivered_at",
    ResponseAction.ACCEPT: "accepted_at",
    ResponseAction.ON_SCENE: "on_scene_at",
    ResponseAction.RESOLVED: "resolved_at",
}


def _updated_party(party: Party, action: ResponseAction, at: datetime) -> Party:
    stamps: dict[str, datetime] = {}
    if action is ResponseAction.ACK:
        stamps = {"delivered_at": earliest(party.delivered_at, at), "acked_at": at}
    elif action is ResponseAction.ACCEPT:
        stamps = {"accepted_at": at}
    elif action is ResponseAction.ON_SCENE:
        stamps = {"arrived_at": at}
    # An ack arriving after the accept (the network reorders) must not move the party back.
    keep = action is ResponseAction.ACK and party.state not in AWAITING_ACCEPT
    state = party.state if keep else PARTY_STATE[action]
    return party.model_copy(update={**stamps, "state": state})


def apply_response(incident: Incident, event: ResponseEvent) -> Effects:
    """Apply one unit's action; a replayed event changes nothing."""
    if event.event_id in incident.seen_event_ids:
        return Effects(incident)
    party = incident.party(event.assignment_id)
    if party is None or party.unit_id != event.unit_id:
        raise ResponseRejected(
            f"incident {incident.incident_id} gave no assignment {event.assignment_id} "
            f"to unit {event.unit_id}"
        )
    seen = (*incident.seen_event_ids, event.event_id)[-MAX_REMEMBERED_EVENTS:]
    if event.action is ResponseAction.TAKEN:
        # Never too late: whatever became of the incident meanwhile, its job never reached
        # the unit, and the board and the record must say so.
        return _taken(incident, party, event, seen)
    if incident.is_closed or party.state not in ACTIVE_PARTY_STATES:
        # Too late to matter (the job was cancelled, declined or timed out); remember it only.
        return Effects(incident.model_copy(update={"seen_event_ids": seen}))
    at = event.occurred_at
    new_party = _updated_party(party, event.action, at)
    parties = tuple(new_party if p is party else p for p in incident.parties)
    update: dict[str, object] = {"parties": parties, "seen_event_ids": seen}
    is_aid = party.kind is AssignmentKind.MUTUAL_AID_ALERT
    if is_aid or event.action is not ResponseAction.ACK:
        # A guard's ack answers its alert; for a job only an answer beyond the ack settles it.
        update["deadlines"] = _without(incident, event)
    target = INCIDENT_STATE.get(event.action)
    if is_aid or target is None:
        # Mutual-aid guards are tracked on their own party; the incident's milestones are the
        # assigned units', which is what the response norms measure.
        timing = _stamped(incident, event) if not is_aid else incident.timing
        return Effects(incident.model_copy(update={**update, "timing": timing}))
    update["timing"] = _stamped(incident, event)
    if target is IncidentState.DECLINED:
        update["excluded_unit_ids"] = (*incident.excluded_unit_ids, event.unit_id)[-64:]
        shown: IncidentState = target
        stored = incident.state
    else:
        shown = stored = advance(incident, target)
    others: tuple[Party, ...] = ()
    if target is IncidentState.RESOLVED:
        update["deadlines"] = ()
        # The incident is over for everyone still on it: they are stood down, not left going.
        others = tuple(p for p in parties if p is not new_party and p.state in ACTIVE_PARTY_STATES)
        update["parties"] = tuple(
            p.model_copy(update={"state": PartyState.RESOLVED}) if p in others else p
            for p in parties
        )
    updated = incident.model_copy(update={**update, "state": stored})
    change = state_change(
        updated,
        shown,
        previous=incident.state,
        reason=event.reason or f"{event.unit_id}: {event.action}",
        actor=event.actor,
        at=at,
    )
    reroute = target is IncidentState.DECLINED and units_still_needed(updated) > 0
    told = withdraw(updated, others, reason=f"resolved by {event.unit_id}", at=at)
    stand_downs = told.stand_downs
    if target is IncidentState.DECLINED and event.actor != event.unit_id:
        # Declined for the unit by someone else (a commander recording a radio answer): the
        # unit's phone still shows the job, so it is told the job is withdrawn, as a unit
        # whose acceptance time passed is. Not freed: its own decline frees nothing either.
        declined = withdraw(
            updated,
            (new_party,),
            reason=f"declined for you by {event.actor}: {event.reason or 'no reason given'}",
            at=at,
            frees=False,
        )
        stand_downs = (*stand_downs, *declined.stand_downs)
    return Effects(updated, stand_downs, (change,), reroute=reroute, freed_units=told.freed_units)


def _taken(
    incident: Incident, party: Party, event: ResponseEvent, seen: tuple[uuid.UUID, ...]
) -> Effects:
    # Another incident held the unit when the job reached the unit's single writer: the unit
    # never saw the job, so it is neither stood down nor freed (the other incident has it).
    # The party is marked taken and the change published in the incident's present state,
    # even when the refusal comes after the incident closed or the party was stood down (the
    # reserve stage was behind, e.g. while a worker's partitions moved): a board that showed
    # the unit sent learns it never had the job. An open incident routes again at once.
    if party.state is PartyState.TAKEN:
        return Effects(incident.model_copy(update={"seen_event_ids": seen}))
    parties = tuple(
        p.model_copy(update={"state": PartyState.TAKEN}) if p is party else p
        for p in incident.parties
    )
    updated = incident.model_copy(
        update={"parties": parties, "seen_event_ids": seen, "deadlines": _without(incident, event)}
    )
    change = state_change(
        updated,
        incident.state,
        previous=incident.state,
        reason=event.reason or f"{event.unit_id}: taken by another incident",
        actor=event.actor,
        at=event.occurred_at,
    )
    reroute = not incident.is_closed and units_still_needed(updated) > 0
    return Effects(updated, state_changes=(change,), reroute=reroute)


def _without(incident: Incident, event: ResponseEvent) -> tuple[Deadline, ...]:
    return tuple(d for d in incident.deadlines if d.assignment_id != event.assignment_id)


def _stamped(incident: Incident, event: ResponseEvent) -> IncidentTiming:
    field = TIMING_FIELD.get(event.action)
    if field is None:
        return incident.timing
    first = earliest(getattr(incident.timing, field), event.occurred_at)
    return incident.timing.model_copy(update={field: first})


def expire_deadlines(incident: Incident, *, now: datetime) -> Effects:
    """Time out every party that let its deadline pass; escalate and ask for a re-route."""
    due = [d for d in incident.deadlines if d.due_at <= now]
    if not due or incident.is_closed:
        return Effects(incident)
    due_ids = {d.assignment_id for d in due}
    parties, timed_out = [], []
    for party in incident.parties:
        if (
            party.assignment_id in due_ids
            and party.kind is AssignmentKind.ASSIGNMENT
            and party.state in AWAITING_ACCEPT
        ):
            parties.append(party.model_copy(update={"state": PartyState.TIMED_OUT}))
            timed_out.append(party.unit_id)
        else:
            parties.append(party)
    remaining = tuple(d for d in incident.deadlines if d.assignment_id not in due_ids)
    updated = incident.model_copy(
        update={
            "parties": tuple(parties),
            "deadlines": remaining,
            "excluded_unit_ids": (*incident.excluded_unit_ids, *timed_out)[-64:],
        }
    )
    if not timed_out:
        return Effects(updated)  # only mutual-aid alerts lapsed: nothing to re-dispatch
    names = ", ".join(timed_out)
    reason = f"no acceptance from {names} in time"
    updated = updated.model_copy(update={"in_commander_queue": True})
    changes = (
        state_change(
            updated,
            IncidentState.TIMED_OUT,
            previous=incident.state,
            reason=reason,
            actor=SYSTEM,
            at=now,
        ),
        state_change(
            updated,
            IncidentState.ESCALATED,
            previous=IncidentState.TIMED_OUT,
            reason=f"{reason}; offering the next-best unit",
            actor=SYSTEM,
            at=now,
        ),
    )
    # Told, so that a late accept is refused rather than silently ignored; not freed: a unit
    # that did not answer is offered nothing more until it reports in itself.
    lapsed = [p for p in incident.parties if p.unit_id in timed_out and p.assignment_id in due_ids]
    told = withdraw(updated, lapsed, reason=f"no acceptance in time: {reason}", at=now, frees=False)
    return Effects(updated, told.stand_downs, changes, reroute=units_still_needed(updated) > 0)


def cancel(incident: Incident, *, reason: str, actor: str, now: datetime) -> Effects:
    """Cancel the incident (a commander's decision) and stand down every party."""
    if incident.is_closed:
        return Effects(incident)
    active = [p for p in incident.parties if p.state in ACTIVE_PARTY_STATES]
    parties = tuple(
        p.model_copy(update={"state": PartyState.CANCELLED}) if p in active else p
        for p in incident.parties
    )
    updated = incident.model_copy(
        update={"parties": parties, "deadlines": (), "state": IncidentState.CANCELLED}
    )
    change = state_change(
        updated,
        IncidentState.CANCELLED,
        previous=incident.state,
        reason=reason,
        actor=actor,
        at=now,
    )
    told = withdraw(updated, active, reason=f"cancelled by {actor}: {reason}", at=now)
    return Effects(updated, told.stand_downs, (change,), freed_units=told.freed_units)
