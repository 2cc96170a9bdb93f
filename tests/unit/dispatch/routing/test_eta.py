"""Tests for great-circle distance, the default ETA and the ETA seam."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.events import Position, UnitAvailability
from dispatch.routing import (
    EtaFunction,
    UnitKind,
    UnitRecord,
    UnitWithoutPosition,
    distance_m,
    great_circle_eta,
)
from dispatch.routing.eta import eta_lower_bound_s
from dispatch.zone.geo import EARTH_RADIUS_M

FAST = settings(max_examples=200, deadline=None, database=None)
NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
ZONE = Position(lat=31.70, lon=113.40)

lats = st.floats(min_value=-80, max_value=80, allow_nan=False)
lons = st.floats(min_value=-180, max_value=180, allow_nan=False)


def _unit(position: Position | None, speed_kmh: float = 36.0) -> UnitRecord:
    return UnitRecord(
        unit_id="p1",
        kind=UnitKind.PATROL,
        capabilities=frozenset({"patrol"}),
        speed_kmh=speed_kmh,
        availability=UnitAvailability.AVAILABLE,
        position=position,
        position_at=NOW if position is not None else None,
    )


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    # Routing measures with the zone's one great-circle distance.
    return distance_m(Position(lat=lat1, lon=lon1), Position(lat=lat2, lon=lon2))


def _law_of_cosines_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    # An independent formula, well conditioned once points are more than a few km apart.
    p1, p2 = math.radians(lat1), math.radians(lat2)
    cos_c = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(
        math.radians(lon2 - lon1)
    )
    return EARTH_RADIUS_M * math.acos(max(-1.0, min(1.0, cos_c)))


def test_one_degree_of_latitude_is_about_111_km() -> None:
    assert haversine_m(31.0, 113.4, 32.0, 113.4) == pytest.approx(111_195, abs=1)


def test_quarter_meridian_is_a_quarter_of_the_circumference() -> None:
    assert haversine_m(0.0, 0.0, 90.0, 0.0) == pytest.approx(EARTH_RADIUS_M * math.pi / 2)


def test_antipodes_are_half_the_circumference_apart() -> None:
    assert haversine_m(0.0, 0.0, 0.0, 180.0) == pytest.approx(EARTH_RADIUS_M * math.pi)


def test_suizhou_to_xihe_is_about_ten_km() -> None:
    suizhou = Position(lat=31.69, lon=113.38)
    xihe = Position(lat=31.74, lon=113.47)
    # Flat-earth check: 0.05 deg north is 5,560 m, 0.09 deg east at 31.7 N is 8,514 m.
    assert distance_m(suizhou, xihe) == pytest.approx(10_169, rel=1e-3)


@FAST
@given(lat1=lats, lon1=lons, lat2=lats, lon2=lons)
def test_haversine_is_symmetric_and_matches_the_law_of_cosines(
    lat1: float, lon1: float, lat2: float, lon2: float
) -> None:
    d = haversine_m(lat1, lon1, lat2, lon2)
    assert d == pytest.approx(haversine_m(lat2, lon2, lat1, lon1), rel=1e-12, abs=1e-6)
    assert 0 <= d <= EARTH_RADIUS_M * math.pi + 1e-6
    if d > 10_000:
        assert d == pytest.approx(_law_of_cosines_m(lat1, lon1, lat2, lon2), rel=1e-6)


def test_great_circle_eta_is_distance_over_speed() -> None:
    unit = _unit(Position(lat=31.70, lon=113.40), speed_kmh=36.0)
    target = Position(lat=31.70 + 1000 / 111_195, lon=113.40)
    assert great_circle_eta(unit, target) == pytest.approx(100.0, rel=1e-3)


def test_great_circle_eta_is_zero_on_the_spot() -> None:
    assert great_circle_eta(_unit(ZONE), ZONE) == 0.0


def test_eta_of_a_unit_without_position_is_refused() -> None:
    with pytest.raises(UnitWithoutPosition, match="p1"):
        great_circle_eta(_unit(None), ZONE)


@FAST
@given(
    north_m=st.floats(min_value=-30_000, max_value=30_000),
    speed_kmh=st.floats(min_value=1, max_value=200),
    fastest_extra=st.floats(min_value=0, max_value=100),
)
def test_lower_bound_never_exceeds_the_eta_of_a_slower_unit(
    north_m: float, speed_kmh: float, fastest_extra: float
) -> None:
    unit = _unit(Position(lat=31.70 + north_m / 111_195, lon=113.40), speed_kmh)
    d = distance_m(ZONE, unit.position or ZONE)
    assert eta_lower_bound_s(d, speed_kmh + fastest_extra) <= great_circle_eta(unit, ZONE)


def test_lower_bound_with_no_units_is_infinite() -> None:
    assert eta_lower_bound_s(100.0, 0.0) == math.inf


def test_a_road_graph_stand_in_satisfies_the_protocol() -> None:
    def detour_eta(unit: UnitRecord, target: Position, /) -> float:
        return 1.4 * great_circle_eta(unit, target)

    eta: EtaFunction = detour_eta
    unit = _unit(Position(lat=31.71, lon=113.40))
    assert eta(unit, ZONE) == pytest.approx(1.4 * great_circle_eta(unit, ZONE))
