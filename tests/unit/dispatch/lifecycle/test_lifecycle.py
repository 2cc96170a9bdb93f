"""The incident state machine: dispatch, responses, timeouts, merges, cancellation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from dispatch.events import (
    AssignmentKind,
    AssignmentRole,
    Category,
    ClassifiedAlarm,
    IncidentState,
    PartyState,
    PlaceType,
    Position,
    Priority,
    ResponseAction,
    ResponseEvent,
    SourceKind,
)
from dispatch.lifecycle import (
    Incident,
    LifecyclePolicy,
    Offer,
    ResponseRejected,
    apply_response,
    cancel,
    dispatch_offers,
    escalate,
    expire_deadlines,
    merge_alarm,
    open_incident,
    units_still_needed,
)

T0 = datetime(2026, 11, 26, 3, 0, 0, tzinfo=UTC)
POLICY = LifecyclePolicy()
PRIMARY = AssignmentRole.PRIMARY
JOB = AssignmentKind.ASSIGNMENT
AID = AssignmentKind.MUTUAL_AID_ALERT


def classified(
    *, incident_id: uuid.UUID | None = None, priority: Priority = Priority.P2, needed: int = 1
) -> ClassifiedAlarm:
    return ClassifiedAlarm(
        alarm_id=uuid.uuid4(),
        incident_id=incident_id or uuid.uuid4(),
        category=Category.ROBBERY,
        priority=priority,
        required_capabilities=("patrol",),
        units_needed=needed,
        position=Position(lat=31.70, lon=113.40),
        place_type=PlaceType.ENTERPRISE,
        enterprise_id="ent-01",
        received_at=T0,
        classified_at=T0 + timedelta(milliseconds=40),
        text="仓库有人抢劫",
        source_kind=SourceKind.DESK,
        source_id="desk-ent-01",
    )


def response(
    incident: Incident,
    unit_id: str,
    action: ResponseAction,
    at: datetime,
    reason: str | None = None,
) -> ResponseEvent:
    party = next(p for p in incident.parties if p.unit_id == unit_id)
    assert party.assignment_id is not None
    return ResponseEvent(
        event_id=uuid.uuid4(),
        assignment_id=party.assignment_id,
        incident_id=incident.incident_id,
        unit_id=unit_id,
        action=action,
        occurred_at=at,
        reason=reason,
        actor=unit_id,
    )


def dispatched(*units: str, priority: Priority = Priority.P2, needed: int = 1) -> Incident:
    incident = open_incident(classified(priority=priority, needed=needed))
    offers = tuple(Offer(u, PRIMARY, JOB, eta_s=60.0) for u in units)
    return dispatch_offers(incident, offers, now=T0 + timedelta(seconds=1), policy=POLICY).incident


def test_dispatch_makes_assignments_parties_and_deadlines() -> None:
    incident = open_incident(classified(priority=Priority.P1))
    now = T0 + timedelta(seconds=1)
    effects = dispatch_offers(
        incident, (Offer("patrol-1", PRIMARY, JOB, 90.0),), now=now, policy=POLICY
    )
    (job,) = effects.assignments
    assert job.unit_id == "patrol-1"
    assert job.ack_deadline == now + timedelta(seconds=30)  # P1
    assert job.attempt == 1
    assert effects.incident.state is IncidentState.DISPATCHED
    assert effects.incident.timing.dispatched_at == now
    assert effects.incident.deadlines[0].assignment_id == job.assignment_id
    (change,) = effects.state_changes
    assert (change.previous_state, change.state) == (
        IncidentState.CLASSIFIED,
        IncidentState.DISPATCHED,
    )


def test_replayed_dispatch_sends_nothing_twice_and_ids_are_stable() -> None:
    incident = open_incident(classified())
    offer = (Offer("patrol-1", PRIMARY, JOB),)
    first = dispatch_offers(incident, offer, now=T0, policy=POLICY)
    again = dispatch_offers(first.incident, offer, now=T0, policy=POLICY)
    assert again.assignments == ()
    assert again.incident == first.incident
    # The same decision made again from the same stored incident yields the same ids.
    twin = dispatch_offers(incident, offer, now=T0, policy=POLICY)
    assert twin.assignments[0].assignment_id == first.assignments[0].assignment_id
    assert twin.state_changes[0].event_id == first.state_changes[0].event_id


def test_full_response_records_every_milestone() -> None:
    incident = dispatched("patrol-1")
    steps = [
        (ResponseAction.ACK, 2, IncidentState.DISPATCHED),
        (ResponseAction.ACCEPT, 5, IncidentState.ACCEPTED),
        (ResponseAction.EN_ROUTE, 6, IncidentState.EN_ROUTE),
        (ResponseAction.ON_SCENE, 200, IncidentState.ON_SCENE),
        (ResponseAction.RESOLVED, 900, IncidentState.RESOLVED),
    ]
    for action, second, state in steps:
        at = T0 + timedelta(seconds=second)
        incident = apply_response(incident, response(incident, "patrol-1", action, at)).incident
        assert incident.state is state
    timing = incident.timing
    assert timing.to_deliver_s == 2
    assert timing.to_accept_s == 5
    assert timing.to_scene_s == 200
    assert timing.to_resolve_s == 900
    assert incident.is_closed
    assert incident.deadlines == ()
    assert incident.parties[0].state is PartyState.RESOLVED


def test_accept_settles_the_deadline_but_ack_does_not() -> None:
    incident = dispatched("patrol-1")
    acked = apply_response(
        incident, response(incident, "patrol-1", ResponseAction.ACK, T0)
    ).incident
    assert len(acked.deadlines) == 1
    accepted = apply_response(
        acked, response(acked, "patrol-1", ResponseAction.ACCEPT, T0)
    ).incident
    assert accepted.deadlines == ()


def test_late_ack_after_accept_does_not_move_the_party_back() -> None:
    incident = dispatched("patrol-1")
    accept = response(incident, "patrol-1", ResponseAction.ACCEPT, T0 + timedelta(seconds=3))
    incident = apply_response(incident, accept).incident
    ack = response(incident, "patrol-1", ResponseAction.ACK, T0 + timedelta(seconds=2))
    incident = apply_response(incident, ack).incident
    assert incident.parties[0].state is PartyState.ACCEPTED
    assert incident.timing.delivered_at == T0 + timedelta(seconds=2)


def test_decline_excludes_the_unit_and_asks_for_the_next_best() -> None:
    incident = dispatched("patrol-1")
    decline = response(incident, "patrol-1", ResponseAction.DECLINE, T0, reason="tyre burst")
    effects = apply_response(incident, decline)
    assert effects.reroute
    assert effects.incident.excluded_unit_ids == ("patrol-1",)
    assert effects.state_changes[0].state is IncidentState.DECLINED
    assert effects.state_changes[0].reason == "tyre burst"
    assert units_still_needed(effects.incident) == 1
    second = dispatch_offers(
        effects.incident, (Offer("patrol-2", PRIMARY, JOB),), now=T0, policy=POLICY
    )
    assert second.assignments[0].attempt == 2
    assert second.state_changes[0].state is IncidentState.REDISPATCHED


def test_no_acceptance_in_time_times_out_escalates_and_reroutes() -> None:
    incident = dispatched("patrol-1", priority=Priority.P1)
    due = incident.deadlines[0].due_at
    assert expire_deadlines(incident, now=due - timedelta(milliseconds=1)).state_changes == ()
    effects = expire_deadlines(incident, now=due)
    assert effects.reroute
    assert [c.state for c in effects.state_changes] == [
        IncidentState.TIMED_OUT,
        IncidentState.ESCALATED,
    ]
    assert effects.incident.in_commander_queue
    assert effects.incident.excluded_unit_ids == ("patrol-1",)
    assert effects.incident.parties[0].state is PartyState.TIMED_OUT
    # A late accept from the unit that timed out changes nothing.
    late = response(effects.incident, "patrol-1", ResponseAction.ACCEPT, due)
    assert apply_response(effects.incident, late).incident.state is IncidentState.DISPATCHED


def test_p1_with_two_units_needs_both() -> None:
    incident = dispatched("patrol-1", priority=Priority.P1, needed=2)
    assert units_still_needed(incident) == 1
    incident = dispatch_offers(
        incident, (Offer("patrol-2", PRIMARY, JOB),), now=T0, policy=POLICY
    ).incident
    assert units_still_needed(incident) == 0


def test_mutual_aid_is_tracked_per_party_and_never_redispatched() -> None:
    incident = dispatched("patrol-1", priority=Priority.P1)
    aid = tuple(Offer(g, AssignmentRole.MUTUAL_AID, AID, 30.0) for g in ("guard-1", "guard-2"))
    effects = dispatch_offers(incident, aid, now=T0 + timedelta(seconds=1), policy=POLICY)
    assert {a.kind for a in effects.assignments} == {AID}
    incident = effects.incident
    assert units_still_needed(incident) == 0
    at = T0 + timedelta(seconds=40)
    incident = apply_response(
        incident, response(incident, "guard-1", ResponseAction.ACK, at)
    ).incident
    incident = apply_response(
        incident, response(incident, "guard-1", ResponseAction.ON_SCENE, at)
    ).incident
    guard = next(p for p in incident.parties if p.unit_id == "guard-1")
    assert (guard.state, guard.arrived_at) == (PartyState.ON_SCENE, at)
    # The guard's arrival is its own; the incident's milestones are the police unit's.
    assert incident.timing.on_scene_at is None
    assert incident.state is IncidentState.DISPATCHED
    # Guard 2 never answers: its alert lapses without re-dispatch or escalation.
    lapse = T0 + timedelta(seconds=1) + POLICY.mutual_aid_ack_timeout
    accepted = apply_response(incident, response(incident, "patrol-1", ResponseAction.ACCEPT, at))
    effects = expire_deadlines(accepted.incident, now=lapse)
    assert not effects.reroute
    assert effects.state_changes == ()


def test_replayed_response_changes_nothing() -> None:
    incident = dispatched("patrol-1")
    accept = response(incident, "patrol-1", ResponseAction.ACCEPT, T0)
    once = apply_response(incident, accept)
    twice = apply_response(once.incident, accept)
    assert twice.incident == once.incident
    assert twice.state_changes == ()


def test_response_for_someone_elses_assignment_is_rejected() -> None:
    incident = dispatched("patrol-1")
    forged = response(incident, "patrol-1", ResponseAction.ACCEPT, T0).model_copy(
        update={"unit_id": "patrol-9"}
    )
    with pytest.raises(ResponseRejected, match="patrol-9"):
        apply_response(incident, forged)


def test_merge_adds_the_alarm_raises_priority_and_ignores_replays() -> None:
    first = classified(priority=Priority.P3)
    incident = open_incident(first)
    repeat = classified(incident_id=incident.incident_id, priority=Priority.P2)
    effects = merge_alarm(incident, repeat)
    assert effects.incident.alarm_ids == (first.alarm_id, repeat.alarm_id)
    assert effects.incident.priority is Priority.P2
    assert effects.state_changes[0].state is IncidentState.MERGED
    assert effects.state_changes[0].merged_alarm_ids == (repeat.alarm_id,)
    assert merge_alarm(effects.incident, repeat).incident == effects.incident


def test_escalate_puts_the_incident_in_the_commander_queue() -> None:
    incident = open_incident(classified())
    effects = escalate(incident, reason="no available unit with patrol", now=T0)
    assert effects.incident.in_commander_queue
    assert effects.state_changes[0].state is IncidentState.ESCALATED


def test_cancel_stands_everyone_down_and_later_answers_are_ignored() -> None:
    incident = dispatched("patrol-1")
    effects = cancel(incident, reason="false alarm", actor="commander-1", now=T0)
    assert effects.incident.state is IncidentState.CANCELLED
    assert effects.incident.parties[0].state is PartyState.CANCELLED
    assert effects.state_changes[0].actor == "commander-1"
    late = response(effects.incident, "patrol-1", ResponseAction.ACCEPT, T0)
    assert apply_response(effects.incident, late).incident.state is IncidentState.CANCELLED
    assert (
        dispatch_offers(
            effects.incident, (Offer("patrol-2", PRIMARY, JOB),), now=T0, policy=POLICY
        ).assignments
        == ()
    )


def test_incident_survives_a_round_trip_through_storage() -> None:
    incident = dispatched("patrol-1", "patrol-2", priority=Priority.P1, needed=2)
    assert Incident.model_validate_json(incident.model_dump_json()) == incident


def taken(incident: Incident, unit_id: str, at: datetime) -> ResponseEvent:
    """The reserve stage's refusal of unit_id's job: another incident held the unit."""
    event = response(incident, unit_id, ResponseAction.TAKEN, at, reason=f"{unit_id} was busy")
    return event.model_copy(update={"actor": "system"})


def test_a_unit_taken_after_its_incident_resolved_is_shown_taken_and_nothing_is_sent() -> None:
    # The reserve stage was behind (a worker's partitions were moving): the incident was
    # resolved by patrol-1, and patrol-2's job, never delivered, was stood down with it,
    # before the refusal of that job came back.
    incident = dispatched("patrol-1", "patrol-2", needed=2)
    for action, second in ((ResponseAction.ACCEPT, 2), (ResponseAction.RESOLVED, 3)):
        at = T0 + timedelta(seconds=second)
        incident = apply_response(incident, response(incident, "patrol-1", action, at)).incident
    assert incident.is_closed
    assert [p.state for p in incident.parties] == [PartyState.RESOLVED, PartyState.RESOLVED]
    refusal = taken(incident, "patrol-2", T0 + timedelta(seconds=8))
    effects = apply_response(incident, refusal)
    # The board and the record learn that patrol-2 never had the job; no unit is sent again.
    assert [p.state for p in effects.incident.parties] == [PartyState.RESOLVED, PartyState.TAKEN]
    (change,) = effects.state_changes
    assert (change.previous_state, change.state) == (IncidentState.RESOLVED,) * 2
    assert change.reason == "patrol-2 was busy"
    assert [p.state for p in change.parties] == [PartyState.RESOLVED, PartyState.TAKEN]
    assert not effects.reroute
    assert effects.assignments == ()
    # The same refusal again changes nothing and says nothing.
    again = apply_response(effects.incident, refusal)
    assert again.state_changes == ()
    assert again.incident.parties == effects.incident.parties


def test_a_unit_taken_while_its_incident_is_open_is_shown_taken_and_replaced() -> None:
    incident = dispatched("patrol-1")
    effects = apply_response(incident, taken(incident, "patrol-1", T0 + timedelta(seconds=2)))
    assert effects.incident.parties[0].state is PartyState.TAKEN
    assert effects.incident.deadlines == ()
    (change,) = effects.state_changes
    assert change.state is IncidentState.DISPATCHED
    assert effects.reroute  # the router sends the next-best unit at once
