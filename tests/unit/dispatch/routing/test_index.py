"""Tests for unit records and the H3 unit index: buckets, moves and complete radius searches."""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest
from h3.api import basic_int as h3
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.events import Position, UnitAvailability, UnitStatus
from dispatch.routing import (
    InvalidUnitRecord,
    UnitIndex,
    UnitKind,
    UnitRecord,
    distance_m,
)
from dispatch.routing.index import covered_radius_m

FAST = settings(max_examples=150, deadline=None, database=None)
NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
ZONE = Position(lat=31.70, lon=113.40)
M_PER_DEG_LAT = 111_195.0


def _at(north_m: float, east_m: float, origin: Position = ZONE) -> Position:
    lat = origin.lat + north_m / M_PER_DEG_LAT
    lon = origin.lon + east_m / (M_PER_DEG_LAT * math.cos(math.radians(origin.lat)))
    return Position(lat=lat, lon=lon)


def _unit(
    unit_id: str,
    position: Position | None,
    *,
    kind: str = UnitKind.PATROL,
    capabilities: frozenset[str] = frozenset({"patrol"}),
    home_place_id: str | None = None,
) -> UnitRecord:
    return UnitRecord(
        unit_id=unit_id,
        kind=kind,
        capabilities=capabilities,
        speed_kmh=40.0,
        home_place_id=home_place_id,
        availability=UnitAvailability.AVAILABLE,
        position=position,
        position_at=NOW if position is not None else None,
    )


def _ids(units: Iterable[UnitRecord]) -> set[str]:
    return {u.unit_id for u in units}


# Unit records


def test_record_refuses_an_unknown_kind() -> None:
    with pytest.raises(InvalidUnitRecord, match="kind"):
        _unit("x", ZONE, kind="wizard")


@pytest.mark.parametrize("speed", [0.0, -5.0, math.inf, math.nan])
def test_record_refuses_a_speed_that_is_not_positive_and_finite(speed: float) -> None:
    with pytest.raises(InvalidUnitRecord, match="speed"):
        UnitRecord(unit_id="x", kind="patrol", capabilities=frozenset(), speed_kmh=speed)


def test_record_refuses_a_naive_position_time() -> None:
    with pytest.raises(InvalidUnitRecord, match="timezone"):
        UnitRecord(
            unit_id="x",
            kind="patrol",
            capabilities=frozenset(),
            speed_kmh=30,
            position=ZONE,
            position_at=datetime(2026, 5, 1, 8, 0),
        )


def _status(position: Position | None, at: datetime, unit_id: str = "p1") -> UnitStatus:
    return UnitStatus(
        event_id=uuid.uuid4(),
        unit_id=unit_id,
        status=UnitAvailability.BUSY,
        position=position,
        reported_at=at,
    )


def test_status_with_a_position_moves_the_record_and_stamps_the_fix() -> None:
    later = NOW + timedelta(minutes=1)
    moved = _unit("p1", ZONE).with_status(_status(_at(100, 0), later))
    assert moved.availability is UnitAvailability.BUSY
    assert moved.position == _at(100, 0)
    assert moved.position_at == later


def test_status_without_a_position_keeps_the_last_fix_and_its_time() -> None:
    kept = _unit("p1", ZONE).with_status(_status(None, NOW + timedelta(minutes=9)))
    assert kept.availability is UnitAvailability.BUSY
    assert (kept.position, kept.position_at) == (ZONE, NOW)


def test_status_for_another_unit_is_refused() -> None:
    with pytest.raises(InvalidUnitRecord, match="p2"):
        _unit("p1", ZONE).with_status(_status(ZONE, NOW, unit_id="p2"))


def test_freshness_counts_from_the_fix_time() -> None:
    unit = _unit("p1", ZONE)
    assert unit.is_fresh(NOW + timedelta(seconds=300), 300)
    assert not unit.is_fresh(NOW + timedelta(seconds=301), 300)
    assert unit.is_fresh(NOW - timedelta(seconds=5), 300)
    assert not _unit("p2", None).is_fresh(NOW, 300)


# The index


def test_upsert_get_and_remove() -> None:
    index = UnitIndex()
    unit = _unit("p1", ZONE)
    index.upsert(unit)
    assert len(index) == 1
    assert index.get("p1") == unit
    assert index.remove("p1") == unit
    assert index.get("p1") is None
    assert index.remove("p1") is None
    assert list(index.nearby(ZONE, 1000)) == []


def test_moving_a_unit_moves_it_between_cells() -> None:
    index = UnitIndex()
    index.upsert(_unit("p1", ZONE))
    far = _at(8000, -6000)
    index.upsert(_unit("p1", far))
    assert len(index) == 1
    assert list(index.nearby(ZONE, 2000)) == []
    assert _ids(index.nearby(far, 100)) == {"p1"}


def test_changing_capabilities_moves_a_unit_between_buckets() -> None:
    index = UnitIndex()
    index.upsert(_unit("u1", ZONE, kind="fire", capabilities=frozenset({"fire"})))
    index.upsert(_unit("u1", ZONE, kind="medical", capabilities=frozenset({"medical"})))
    assert list(index.nearby(ZONE, 500, capabilities={"fire"})) == []
    assert _ids(index.nearby(ZONE, 500, capabilities={"medical"})) == {"u1"}


def test_a_unit_without_position_is_held_but_never_found_nearby() -> None:
    index = UnitIndex()
    index.upsert(_unit("s1", None, kind="school_officer", home_place_id="school-1"))
    assert index.get("s1") is not None
    assert list(index.nearby(ZONE, 50_000)) == []
    assert _ids(index.homed_at("school-1")) == {"s1"}


def test_homed_at_follows_upserts_and_removals() -> None:
    index = UnitIndex()
    index.upsert(_unit("g1", ZONE, kind="guard", home_place_id="ent-1"))
    index.upsert(_unit("g2", ZONE, kind="guard", home_place_id="ent-1"))
    index.upsert(_unit("g2", ZONE, kind="guard", home_place_id="ent-2"))
    index.remove("g1")
    assert list(index.homed_at("ent-1")) == []
    assert _ids(index.homed_at("ent-2")) == {"g2"}


def test_a_fire_search_meets_no_patrols() -> None:
    index = UnitIndex()
    for i in range(300):
        index.upsert(_unit(f"p{i:03d}", _at(10 * i, 5 * i)))
    index.upsert(_unit("f1", _at(9000, 0), kind="fire", capabilities=frozenset({"fire"})))
    scans = list(index.nearest_rings(ZONE, max_radius_m=30_000, capabilities={"fire"}))
    met = [u.unit_id for scan in scans for u in scan.units]
    assert met == ["f1"]
    # Once the only fire unit is met, the search knows there is nothing farther out.
    assert scans[-1].covered_m == math.inf


def test_kind_and_capability_filters_combine() -> None:
    index = UnitIndex()
    index.upsert(_unit("g1", ZONE, kind="guard", capabilities=frozenset({"patrol"})))
    index.upsert(_unit("p1", ZONE))
    assert _ids(index.nearby(ZONE, 100, kind="guard")) == {"g1"}
    assert _ids(index.nearby(ZONE, 100, capabilities={"patrol"})) == {"g1", "p1"}
    assert _ids(index.nearby(ZONE, 100, capabilities={"patrol"}, kind="guard")) == {"g1"}


def test_rings_grow_outwards_and_stop_at_the_radius() -> None:
    index = UnitIndex()
    index.upsert(_unit("near", ZONE))
    index.upsert(_unit("far", _at(40_000, 0)))
    scans = list(index.nearest_rings(ZONE, max_radius_m=10_000))
    covered = [scan.covered_m for scan in scans]
    assert covered == sorted(covered)
    assert covered[-1] >= 10_000
    assert covered[-2] < 10_000
    assert [u.unit_id for scan in scans for u in scan.units] == ["near"]


def test_an_empty_bucket_yields_nothing() -> None:
    index = UnitIndex()
    index.upsert(_unit("p1", ZONE))
    assert list(index.nearest_rings(ZONE, max_radius_m=1000, capabilities={"fire"})) == []


offsets = st.tuples(
    st.floats(min_value=-6000, max_value=6000), st.floats(min_value=-6000, max_value=6000)
)


@st.composite
def _query_points(draw: st.DrawFn) -> Position:
    # Half the queries sit exactly on a cell corner, where a search is likeliest to miss.
    point = _at(*draw(offsets))
    if draw(st.booleans()):
        cell = h3.latlng_to_cell(point.lat, point.lon, draw(st.sampled_from([6, 7, 8])))
        corners = h3.cell_to_boundary(cell)
        lat, lon = corners[draw(st.integers(0, len(corners) - 1))]
        point = Position(lat=float(lat), lon=float(lon))
    return point


@FAST
@given(
    spots=st.lists(offsets, max_size=80),
    query=_query_points(),
    radius=st.floats(min_value=0, max_value=5000),
    resolution=st.sampled_from([6, 7, 8]),
)
def test_nearby_finds_exactly_the_units_a_full_scan_finds(
    spots: list[tuple[float, float]], query: Position, radius: float, resolution: int
) -> None:
    index = UnitIndex(resolution=resolution)
    units = [_unit(f"u{i}", _at(*spot)) for i, spot in enumerate(spots)]
    for unit in units:
        index.upsert(unit)
    expected = {u.unit_id for u in units if distance_m(u.position or ZONE, query) <= radius}
    assert _ids(index.nearby(query, radius)) == expected


@FAST
@given(
    point=_query_points(),
    k=st.integers(min_value=0, max_value=12),
    bearing=st.floats(min_value=0, max_value=2 * math.pi),
    fraction=st.floats(min_value=0, max_value=1),
    resolution=st.sampled_from([6, 7, 8]),
)
def test_every_point_within_the_covered_radius_lies_within_k_rings(
    point: Position, k: int, bearing: float, fraction: float, resolution: int
) -> None:
    origin = h3.latlng_to_cell(point.lat, point.lon, resolution)
    covered = covered_radius_m(origin, k)
    if covered <= 0:
        return
    other = _at(
        covered * fraction * math.cos(bearing), covered * fraction * math.sin(bearing), point
    )
    # The flat offset above is slightly off the true distance; only points inside count.
    if distance_m(point, other) > covered:
        return
    target = h3.latlng_to_cell(other.lat, other.lon, resolution)
    assert h3.grid_distance(origin, target) <= k


operations = st.lists(
    st.tuples(
        st.integers(0, 9), st.one_of(st.none(), offsets), st.sampled_from(["fire", "patrol"])
    ),
    max_size=60,
)


@FAST
@given(ops=operations, query=_query_points(), radius=st.floats(min_value=0, max_value=5000))
def test_after_any_moves_and_removals_searches_see_only_the_latest_records(
    ops: list[tuple[int, tuple[float, float] | None, str]], query: Position, radius: float
) -> None:
    index = UnitIndex()
    latest: dict[str, UnitRecord] = {}
    for number, spot, capability in ops:
        unit_id = f"u{number}"
        if spot is None:
            index.remove(unit_id)
            latest.pop(unit_id, None)
            continue
        unit = _unit(unit_id, _at(*spot), kind=capability, capabilities=frozenset({capability}))
        index.upsert(unit)
        latest[unit_id] = unit
    assert sorted(index, key=lambda u: u.unit_id) == sorted(
        latest.values(), key=lambda u: u.unit_id
    )
    for capability in ("fire", "patrol"):
        expected = {
            u.unit_id
            for u in latest.values()
            if capability in u.capabilities and distance_m(u.position or ZONE, query) <= radius
        }
        assert _ids(index.nearby(query, radius, capabilities={capability})) == expected


def test_available_only_searches_free_units_and_ends_at_once_when_none_is_free() -> None:
    index = UnitIndex()
    busy = dataclasses.replace(_unit("p1", _at(100, 0)), availability=UnitAvailability.ASSIGNED)
    index.upsert(busy)
    index.upsert(_unit("p2", _at(9_000, 0)))
    everyone = _ids(index.nearby(ZONE, 10_000))
    free = _ids(index.nearby(ZONE, 10_000, available_only=True))
    assert (everyone, free) == ({"p1", "p2"}, {"p2"})
    # p2 goes busy too: no ring is walked at all, however wide the search.
    p2 = index.get("p2")
    assert p2 is not None
    index.upsert(dataclasses.replace(p2, availability=UnitAvailability.BUSY))
    assert list(index.nearest_rings(ZONE, max_radius_m=50_000, available_only=True)) == []
    assert _ids(index.nearby(ZONE, 10_000)) == {"p1", "p2"}
    # Free again: found again, and forgetting it empties the free buckets.
    index.upsert(_unit("p2", _at(9_000, 0)))
    assert _ids(index.nearby(ZONE, 10_000, available_only=True)) == {"p2"}
    index.remove("p2")
    assert list(index.nearest_rings(ZONE, max_radius_m=50_000, available_only=True)) == []
