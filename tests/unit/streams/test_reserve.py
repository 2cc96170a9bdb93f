"""The reserve stage's handler without a broker: one writer per unit between route and units.

Two `Stages` are two route workers, each with its own unit board and incident tables, as two
processes are: both see every unit available, so both choose the same nearest unit for their
incidents. One `Reserver` (the member owning that unit's partition) decides between them.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from dispatch.classify import Rules
from dispatch.events import (
    ALARMS_DLQ,
    DISPATCH_ASSIGNMENTS,
    INCIDENTS_STATE,
    RESPONSES_EVENTS,
    UNITS_RESERVATIONS,
    Assignment,
    AssignmentKind,
    CommanderAction,
    CommanderCommand,
    DeadLetter,
    IncidentState,
    IncidentStateChange,
    PartyState,
    Reservation,
    ResponseAction,
    ResponseEvent,
    UnitAvailability,
    UnitStatus,
    decode,
    encode,
)
from dispatch.zone import Zone
from streams.stages import Queued, Reserver
from streams.tables import ChangelogTable
from tests.unit.streams.test_stages import NOW, Stages, of, record, school_fight
from tests.unit.streams.test_stages import zone_and_rules as zone_and_rules


def reserver() -> Reserver:
    return Reserver(
        holds={}, decisions=ChangelogTable("unit-decisions", "t-unit-decisions", partitions=4)
    )


def reserve(reserver: Reserver, out: Queued) -> Queued:
    """Pass every units.reservations record route queued in out through the reserver."""
    decided = Queued()
    for n, value in enumerate(of(out, UNITS_RESERVATIONS)):
        reserver.reservation(record("units.reservations", value, offset=n), decided, NOW)
    return decided


def delivered(out: Queued) -> list[Assignment]:
    return [decode(Assignment, v) for v in of(out, DISPATCH_ASSIGNMENTS)]


def refusals(out: Queued) -> list[ResponseEvent]:
    return [decode(ResponseEvent, v) for v in of(out, RESPONSES_EVENTS)]


def respond(stages: Stages, refusal: ResponseEvent) -> Queued:
    out = Queued()
    stages.router.response(record("responses.events", encode(refusal)), out, NOW)
    return out


def incident_of(stages: Stages, incident_id: uuid.UUID) -> Any:
    return stages.router.load(str(incident_id).encode())


def test_two_route_workers_choosing_one_unit_get_it_once_and_the_loser_routes_again(
    zone_and_rules: tuple[Zone, Rules],
) -> None:
    first, second, units = Stages(*zone_and_rules), Stages(*zone_and_rules), reserver()
    one, officer = school_fight(zone_and_rules[0])
    two, _ = school_fight(zone_and_rules[0])
    # Each worker alone would send the school's officer and two patrols.
    routed_one, routed_two = first.through(one), second.through(two)
    chosen_one = {r.unit_id for r in map(reservation_of, of(routed_one, UNITS_RESERVATIONS))}
    chosen_two = {r.unit_id for r in map(reservation_of, of(routed_two, UNITS_RESERVATIONS))}
    assert officer in chosen_one & chosen_two

    won = reserve(units, routed_one)
    assert {j.unit_id for j in delivered(won)} == chosen_one
    assert refusals(won) == []

    lost = reserve(units, routed_two)
    # The second incident's jobs for units the first holds never reach those units.
    assert {j.unit_id for j in delivered(lost)} == chosen_two - chosen_one
    taken = refusals(lost)
    assert {t.unit_id for t in taken} == chosen_one & chosen_two
    assert all(t.action is ResponseAction.TAKEN and t.actor == "system" for t in taken)

    # The losing incident hears of it and at once sends the next-best units instead.
    again = Queued()
    incident_id = taken[0].incident_id
    for t in taken:
        again.records.extend(respond(second, t).records)
    incident = incident_of(second, incident_id)
    states = {p.unit_id: p.state for p in incident.parties}
    assert all(states[t.unit_id] is PartyState.TAKEN for t in taken)
    assert not {d.unit_id for d in incident.deadlines} & {t.unit_id for t in taken}
    rerouted = reserve(units, again)
    replacements = {j.unit_id for j in delivered(rerouted)}
    assert replacements
    assert not replacements & chosen_one
    assert refusals(rerouted) == []
    # Never a stand-down for a job its unit never received.
    assert all(j.kind is AssignmentKind.ASSIGNMENT for j in delivered(rerouted))
    # Every unit is held by exactly one incident.
    holders = {unit: units.holds[unit.encode()] for unit in chosen_one | replacements}
    assert len(holders) == len(chosen_one | replacements)


def reservation_of(value: bytes) -> Reservation:
    return decode(Reservation, value)


def test_a_refused_incident_with_no_other_unit_goes_to_the_commander(
    zone_and_rules: tuple[Zone, Rules],
) -> None:
    zone, rules = zone_and_rules
    # The second worker knows only the one unit the first takes: nothing else to send.
    first, second, units = Stages(zone, rules), Stages(zone, rules), reserver()
    alarm, officer = school_fight(zone)
    for unit in zone.units:
        if unit.id != officer:
            off = UnitStatus(
                event_id=uuid.uuid4(),
                unit_id=unit.id,
                status=UnitAvailability.OFF_DUTY,
                reported_at=NOW + timedelta(seconds=1),
            )
            assert second.board.apply(off)
    reserve(units, first.through(alarm))
    (taken,) = refusals(reserve(units, second.through(school_fight(zone)[0])))
    out = respond(second, taken)
    # The board hears that the unit was taken (the incident's state unchanged), then, with
    # nobody else to send, the commander is told at once, not left waiting.
    changes = [decode(IncidentStateChange, v) for v in of(out, INCIDENTS_STATE)]
    assert [c.state for c in changes] == [IncidentState.DISPATCHED, IncidentState.ESCALATED]
    assert changes[0].reason == taken.reason
    assert [p.state for p in changes[0].parties if p.unit_id == officer] == [PartyState.TAKEN]
    assert of(out, UNITS_RESERVATIONS) == []


def held_unit(zone_and_rules: tuple[Zone, Rules]) -> tuple[Reserver, str, Queued]:
    """A reserver holding the school officer for a routed school fight."""
    stages, units = Stages(*zone_and_rules), reserver()
    alarm, officer = school_fight(zone_and_rules[0])
    routed = stages.through(alarm)
    reserve(units, routed)
    return units, officer, routed


def report(unit_id: str, status: UnitAvailability, at: Any, *, presence: bool = False) -> bytes:
    return encode(
        UnitStatus(
            event_id=uuid.uuid4(),
            unit_id=unit_id,
            status=status,
            reported_at=at,
            presence=presence,
        )
    )


@pytest.mark.parametrize(
    ("status", "offset_s", "presence", "frees"),
    [
        (UnitAvailability.AVAILABLE, 5, False, True),
        (UnitAvailability.AVAILABLE, -5, False, False),  # written before the hold began
        (UnitAvailability.AVAILABLE, 5, True, False),  # presence: no report of availability
        (UnitAvailability.BUSY, 5, False, False),
        (UnitAvailability.ASSIGNED, 5, False, False),  # route's own report
    ],
)
def test_only_the_units_own_later_report_of_available_ends_its_hold(
    zone_and_rules: tuple[Zone, Rules],
    status: UnitAvailability,
    offset_s: int,
    presence: bool,
    frees: bool,
) -> None:
    units, officer, _ = held_unit(zone_and_rules)
    at = NOW + timedelta(seconds=offset_s)
    out = Queued()
    units.status(record("units.status", report(officer, status, at, presence=presence)), out, NOW)
    assert (officer.encode() not in units.holds) is frees
    assert out.records == []


def test_a_stand_down_that_frees_the_unit_ends_its_hold_and_reaches_the_unit(
    zone_and_rules: tuple[Zone, Rules],
) -> None:
    stages, units = Stages(*zone_and_rules), reserver()
    alarm, officer = school_fight(zone_and_rules[0])
    routed = stages.through(alarm)
    reserve(units, routed)
    incident_id = reservation_of(of(routed, UNITS_RESERVATIONS)[0]).incident_id
    cancel = CommanderCommand(
        event_id=uuid.uuid4(),
        incident_id=incident_id,
        action=CommanderAction.CANCEL,
        reason="false alarm, cameras show nothing",
        actor="commander-1",
        issued_at=NOW,
    )
    out = Queued()
    stages.router.command(record("commander.commands", encode(cancel)), out, NOW)
    passed = reserve(units, out)
    downs = delivered(passed)
    assert officer in {d.unit_id for d in downs}
    assert all(d.kind is AssignmentKind.STAND_DOWN for d in downs)
    assert units.holds == {}


def test_a_commanders_choice_goes_even_to_a_unit_another_incident_holds(
    zone_and_rules: tuple[Zone, Rules],
) -> None:
    zone, rules = zone_and_rules
    first, second, units = Stages(zone, rules), Stages(zone, rules), reserver()
    alarm, officer = school_fight(zone)
    reserve(units, first.through(alarm))
    other = second.through(school_fight(zone)[0])
    for taken in refusals(reserve(units, other)):
        reserve(units, respond(second, taken))
    incident_id = reservation_of(of(other, UNITS_RESERVATIONS)[0]).incident_id
    # The officer was taken; the commander sends it to the second incident anyway.
    assign = CommanderCommand(
        event_id=uuid.uuid4(),
        incident_id=incident_id,
        action=CommanderAction.ASSIGN,
        unit_id=officer,
        reason="the officer knows the school",
        actor="commander-1",
        issued_at=NOW,
    )
    # The worker's board still has the officer assigned: the commander decides anyway.
    out = Queued()
    second.router.command(record("commander.commands", encode(assign)), out, NOW)
    forced = [r for r in map(reservation_of, of(out, UNITS_RESERVATIONS)) if r.force]
    assert [r.unit_id for r in forced] == [officer]
    passed = reserve(units, out)
    assert officer in {j.unit_id for j in delivered(passed)}
    assert refusals(passed) == []
    assert str(incident_id) in units.holds[officer.encode()].decode()


def test_a_replayed_reservation_is_decided_as_the_first_time(
    zone_and_rules: tuple[Zone, Rules],
) -> None:
    zone, rules = zone_and_rules
    first, second, units = Stages(zone, rules), Stages(zone, rules), reserver()
    alarm, officer = school_fight(zone)
    won = first.through(alarm)
    reserve(units, won)
    lost = second.through(school_fight(zone)[0])
    refused = refusals(reserve(units, lost))
    # The unit is freed, then the reserver reads both batches again (a crash before commit).
    free = report(officer, UnitAvailability.AVAILABLE, NOW + timedelta(seconds=5))
    units.status(record("units.status", free), Queued(), NOW)
    assert officer.encode() not in units.holds
    assert refusals(reserve(units, lost)) == refused  # still refused: the incident moved on
    again = reserve(units, won)
    assert officer in {j.unit_id for j in delivered(again)}  # the same job, harmlessly again
    assert officer.encode() not in units.holds  # and no hold taken back


def test_a_reservation_that_does_not_parse_is_dead_lettered_with_its_reason() -> None:
    units, out = reserver(), Queued()
    units.reservation(record("units.reservations", b'{"unit_id": "x"}'), out, NOW)
    (letter,) = [decode(DeadLetter, v) for v in of(out, ALARMS_DLQ)]
    assert letter.stage == "reserve"
    assert "event_id" in {e.field for e in letter.errors}
    assert units.holds == {}
    units.status(record("units.status", b"\x00garbage"), out, NOW)
    assert len(out.records) == 1  # a bad unit report is the unit board's to dead-letter
