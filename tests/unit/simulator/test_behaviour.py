"""A unit's knobs: compressed time, believable travel, who misbehaves."""

from __future__ import annotations

import pytest

from dispatch.events import Position
from simulator.behaviour import (
    MISBEHAVIOURS,
    Behaviour,
    Leg,
    Misbehaviour,
    Whereabouts,
    assign_misbehaviours,
)

HOME = Position(lat=31.70, lon=113.40)
TWO_KM_NORTH = Position(lat=31.70 + 2000 / 111_195, lon=113.40)


def test_travel_takes_distance_over_speed_and_compression_shortens_it() -> None:
    car = Behaviour(speed_kmh=40.0, compression=60.0)
    assert car.travel_s(HOME, TWO_KM_NORTH) == pytest.approx(180.0, rel=0.01)
    assert car.real_s(car.travel_s(HOME, TWO_KM_NORTH)) == pytest.approx(3.0, rel=0.01)


def test_a_unit_moves_along_its_leg_and_parks_at_its_end() -> None:
    where = Whereabouts(HOME)
    where.drive(Leg(HOME, TWO_KM_NORTH, began_at=100.0, duration_s=10.0))
    halfway = where.at(105.0)
    assert halfway.lat == pytest.approx((HOME.lat + TWO_KM_NORTH.lat) / 2)
    assert where.at(200.0).lat == pytest.approx(TWO_KM_NORTH.lat)
    assert where.at(300.0).lat == pytest.approx(TWO_KM_NORTH.lat)


def test_a_withdrawn_drive_stops_where_the_unit_is() -> None:
    where = Whereabouts(HOME)
    where.drive(Leg(HOME, TWO_KM_NORTH, began_at=0.0, duration_s=10.0))
    where.stop(5.0)
    assert where.at(50.0).lat == pytest.approx((HOME.lat + TWO_KM_NORTH.lat) / 2)


def test_a_share_of_units_misbehaves_each_in_turn() -> None:
    units = [f"u{n}" for n in range(20)]
    behaviours = assign_misbehaviours(units, 0.4, seed=5, base=Behaviour())
    bad = [b.misbehaviour for b in behaviours.values() if b.misbehaviour is not Misbehaviour.NONE]
    assert len(bad) == 8
    assert set(bad) == set(MISBEHAVIOURS)
    assert assign_misbehaviours(units, 0.4, seed=5, base=Behaviour()) == behaviours
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        assign_misbehaviours(units, 1.5, seed=5, base=Behaviour())
