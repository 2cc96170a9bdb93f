"""The route stage's unit board: presence records and the real age of a repeated fix."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from dispatch.classify import Rules
from dispatch.events import UNITS_STATUS, Position, UnitAvailability, UnitStatus, decode
from dispatch.zone import Zone
from streams.units_board import UnitBoard
from tests.unit.streams.test_stages import (  # noqa: F401  (zone_and_rules: a fixture)
    NOW,
    Stages,
    of,
    school_fight,
    zone_and_rules,
)

AVAILABLE, ASSIGNED, OFF_DUTY = (
    UnitAvailability.AVAILABLE,
    UnitAvailability.ASSIGNED,
    UnitAvailability.OFF_DUTY,
)
# The events' precision: a timestamp is kept to the millisecond.
T = NOW.replace(microsecond=NOW.microsecond - NOW.microsecond % 1000)
HERE = Position(lat=31.70, lon=113.40, accuracy_m=8.0)
THERE = Position(lat=31.71, lon=113.41, accuracy_m=8.0)


def report(unit_id: str, status: UnitAvailability, **fields: object) -> UnitStatus:
    """Return a status report of a unit, made now unless fields say otherwise."""
    base: dict[str, object] = {
        "event_id": uuid.uuid4(),
        "unit_id": unit_id,
        "status": status,
        "position": HERE,
        "reported_at": T,
    }
    return UnitStatus.model_validate(base | fields)


def presence(unit_id: str, status: UnitAvailability, fixed_ago_s: float) -> UnitStatus:
    """Return a presence record seen now, repeating a fix made fixed_ago_s ago."""
    fixed = T - timedelta(seconds=fixed_ago_s)
    return report(unit_id, status, position_at=fixed, presence=True)


@pytest.fixture
def board(zone_and_rules: tuple[Zone, Rules]) -> UnitBoard:  # noqa: F811
    return UnitBoard(zone_and_rules[0])


@pytest.fixture
def unit(zone_and_rules: tuple[Zone, Rules]) -> str:  # noqa: F811
    return zone_and_rules[0].units[0].id


def test_presence_never_frees_a_unit_this_worker_just_assigned(board: UnitBoard, unit: str) -> None:
    assert board.apply(report(unit, AVAILABLE, reported_at=T - timedelta(minutes=1)))
    board.reserve(unit, T)
    # The gateway last saw the unit say "available" and repeats it: that frees nothing.
    assert board.apply(presence(unit, AVAILABLE, fixed_ago_s=60))
    held = board.index.get(unit)
    assert held is not None
    assert held.availability is ASSIGNED


def test_presence_never_puts_an_off_duty_unit_on_duty(board: UnitBoard, unit: str) -> None:
    assert board.apply(report(unit, OFF_DUTY))
    assert board.apply(presence(unit, AVAILABLE, fixed_ago_s=0))
    record = board.index.get(unit)
    assert record is not None
    assert record.availability is OFF_DUTY


def test_presence_keeps_the_fix_and_its_real_age(board: UnitBoard, unit: str) -> None:
    fixed = T - timedelta(minutes=6)
    assert board.apply(report(unit, AVAILABLE, reported_at=fixed))
    assert board.apply(presence(unit, AVAILABLE, fixed_ago_s=360))
    record = board.index.get(unit)
    assert record is not None
    assert (record.availability, record.position, record.position_at) == (AVAILABLE, HERE, fixed)
    assert not record.is_fresh(T, max_age_s=300)  # six minutes old, as it is


def test_presence_gives_a_board_without_a_fix_the_last_one_with_its_time(
    board: UnitBoard, unit: str
) -> None:
    # Nothing applied yet: compaction left only the presence record.
    assert board.apply(presence(unit, AVAILABLE, fixed_ago_s=90))
    record = board.index.get(unit)
    assert record is not None
    assert (record.availability, record.position) == (OFF_DUTY, HERE)
    assert record.position_at == T - timedelta(seconds=90)
    # An older fix than the board holds moves nothing.
    assert board.apply(report(unit, AVAILABLE, position=THERE, reported_at=T))
    assert board.apply(presence(unit, AVAILABLE, fixed_ago_s=30))
    record = board.index.get(unit)
    assert record is not None
    assert (record.position, record.position_at) == (THERE, T)


def test_a_report_that_repeats_a_fix_keeps_that_fixs_time(board: UnitBoard, unit: str) -> None:
    fixed = T - timedelta(minutes=4)
    assert board.apply(report(unit, ASSIGNED, position_at=fixed))
    record = board.index.get(unit)
    assert record is not None
    assert record.position_at == fixed


def test_assigning_a_unit_repeats_its_fix_without_making_it_fresher(
    zone_and_rules: tuple[Zone, Rules],  # noqa: F811
) -> None:
    zone = zone_and_rules[0]
    stages = Stages(*zone_and_rules)
    # Every unit reported a while ago: the fix the route stage repeats must keep that age.
    fixed = T - timedelta(minutes=4)
    for each in zone.units:
        position = zone.home_position(each)
        assert stages.board.apply(report(each.id, AVAILABLE, position=position, reported_at=fixed))
    alarm, officer = school_fight(zone)
    out = stages.through(alarm)
    held = [decode(UnitStatus, v) for v in of(out, UNITS_STATUS)]
    assert officer in {status.unit_id for status in held}
    for status in held:
        assert (status.status, status.reported_at, status.position_at) == (ASSIGNED, T, fixed)
