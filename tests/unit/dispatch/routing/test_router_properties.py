"""Properties of joint coverage: the index agrees with a scan, and a plan covers what it can."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.events import Position, Priority, UnitAvailability
from dispatch.routing import (
    SCHOOL_OFFICER_PART,
    Need,
    RoutingPolicy,
    RoutingRequest,
    UnitIndex,
    UnitKind,
    UnitRecord,
    distance_m,
    route,
    route_by_scan,
)
from tests.unit.dispatch.routing.matching import most_coverable

NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
SCENE = Position(lat=31.70, lon=113.40)
CAPABILITIES = ["patrol", "fire", "medical", "hazmat", "rescue"]
KINDS = [UnitKind.PATROL, UnitKind.FIRE, UnitKind.MEDICAL, UnitKind.SCHOOL_OFFICER, UnitKind.GUARD]
MAX_AGE = timedelta(minutes=5)
PROPERTY = settings(max_examples=300, deadline=None, database=None)


def _lattice(north: int, east: int) -> Position:
    # About 330 m a step, so equal ETAs are common and tie-breaks are exercised.
    return Position(lat=SCENE.lat + north * 0.003, lon=SCENE.lon + east * 0.0035)


HOMES = {UnitKind.SCHOOL_OFFICER: ("s1", "s2"), UnitKind.GUARD: ("e1", "e1")}
AVAILABILITY = [UnitAvailability.AVAILABLE] * 3 + list(UnitAvailability)
# One flat tuple per unit: a handful of fixed strategies keeps generation fast.
traits = st.tuples(
    st.integers(0, len(KINDS) - 1),
    st.integers(0, 2 ** len(CAPABILITIES) - 1),
    st.sampled_from([12.0, 40.0, 45.0]),
    st.booleans(),
    st.booleans(),
    st.integers(0, len(AVAILABILITY) - 1),
    st.sampled_from([4, 20, 100]),
    st.integers(-100, 100),
    st.integers(-100, 100),
    st.integers(-5, 400),
)


def _unit(
    number: int, drawn: tuple[int, int, float, bool, bool, int, int, int, int, int]
) -> UnitRecord:
    kind, mask, speed, in_grid, second_home, available, spread, north, east, age = drawn
    unit_kind = KINDS[kind]
    homes = HOMES.get(unit_kind)
    return UnitRecord(
        unit_id=f"u{number:02d}",
        kind=unit_kind,
        capabilities=frozenset(c for bit, c in enumerate(CAPABILITIES) if mask >> bit & 1),
        speed_kmh=speed,
        home_grid_id="g1" if in_grid else None,
        home_place_id=homes[second_home] if homes else None,
        availability=AVAILABILITY[available],
        position=_lattice(north % (2 * spread + 1) - spread, east % (2 * spread + 1) - spread),
        position_at=NOW - timedelta(seconds=age),
    )


fleets = st.lists(traits, max_size=40).map(lambda drawn: [_unit(n, t) for n, t in enumerate(drawn)])
needs = st.dictionaries(st.sampled_from(CAPABILITIES), st.integers(1, 3), min_size=1, max_size=3)
requests = st.builds(
    lambda counts, **kw: RoutingRequest(needs=tuple(Need(c, n) for c, n in counts.items()), **kw),
    needs,
    position=st.just(SCENE),
    priority=st.sampled_from(list(Priority)),
    now=st.just(NOW),
    grid_id=st.sampled_from([None, "g1"]),
    school_place_id=st.sampled_from([None, "s1"]),
    enterprise_place_id=st.sampled_from([None, "e1"]),
    excluded_unit_ids=st.frozensets(st.sampled_from([f"u{n:02d}" for n in range(40)])),
)
policies = st.builds(
    RoutingPolicy,
    max_search_radius_m=st.sampled_from([3_000.0, 30_000.0]),
    school_officers_off_campus=st.booleans(),
)


def _usable(request: RoutingRequest, policy: RoutingPolicy) -> Callable[[UnitRecord, str], bool]:
    """The rules of docs/routing.md, written out independently of the router."""
    backup = request.priority in policy.school_backup_priorities

    def usable(unit: UnitRecord, part: str) -> bool:
        assert unit.position is not None
        assert unit.position_at is not None
        ready = (
            unit.availability is UnitAvailability.AVAILABLE
            and unit.unit_id not in request.excluded_unit_ids
            and NOW - unit.position_at <= MAX_AGE
        )
        own = unit.kind == UnitKind.SCHOOL_OFFICER and unit.home_place_id == (
            request.school_place_id or "none"
        )
        if not ready:
            return False
        if part == SCHOOL_OFFICER_PART:
            return own
        in_range = distance_m(unit.position, SCENE) <= policy.max_search_radius_m
        if part not in unit.capabilities:
            return False
        if unit.kind == UnitKind.SCHOOL_OFFICER:
            return (not backup) if own else (policy.school_officers_off_campus and in_range)
        return in_range

    return usable


def _parts(request: RoutingRequest, policy: RoutingPolicy) -> list[str]:
    officer = request.school_place_id and request.priority in policy.school_backup_priorities
    return [SCHOOL_OFFICER_PART] * bool(officer) + [
        n.capability for n in request.wanted for _ in range(n.count)
    ]


@PROPERTY
@given(units=fleets, request=requests, policy=policies, resolution=st.sampled_from([6, 7, 8]))
def test_the_plan_covers_every_part_the_free_units_can_cover(
    units: list[UnitRecord], request: RoutingRequest, policy: RoutingPolicy, resolution: int
) -> None:
    index = UnitIndex(resolution=resolution)
    for unit in units:
        index.upsert(unit)
    decision = route(index, request, policy)
    assert decision == route_by_scan(units, request, policy)
    parts = _parts(request, policy)
    usable = _usable(request, policy)
    coverable = most_coverable(parts, units, usable)
    assert len(decision.primaries) == coverable
    assert sum(n.count for n in decision.missing) == len(parts) - coverable
    assert decision.commander_needed == (coverable < len(parts))


@PROPERTY
@given(units=fleets, request=requests, policy=policies)
def test_no_plan_holds_a_busy_off_duty_stale_excluded_or_incapable_unit(
    units: list[UnitRecord], request: RoutingRequest, policy: RoutingPolicy
) -> None:
    decision = route_by_scan(units, request, policy)
    by_id = {u.unit_id: u for u in units}
    usable = _usable(request, policy)
    chosen = [c.unit_id for c in decision.primaries]
    assert len(set(chosen)) == len(chosen)
    for candidate in decision.primaries:
        assert usable(by_id[candidate.unit_id], candidate.part)
    for guard in decision.mutual_aid:
        unit = by_id[guard.unit_id]
        assert unit.kind == UnitKind.GUARD
        assert usable(unit, next(iter(unit.capabilities), "")) or (
            unit.availability is UnitAvailability.AVAILABLE
            and unit.unit_id not in request.excluded_unit_ids
        )
        assert guard.unit_id not in chosen
