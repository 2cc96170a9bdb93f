"""Tests for routing rules, mutual aid, and the index search against a brute-force scan."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.events import Position, Priority, UnitAvailability
from dispatch.routing import (
    CandidateReason,
    InvalidRoutingRequest,
    RouteDecision,
    RoutingPolicy,
    RoutingRequest,
    UnitIndex,
    UnitKind,
    UnitRecord,
    distance_m,
    great_circle_eta,
    route,
    route_by_scan,
)

NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
SCENE = Position(lat=31.70, lon=113.40)
M_PER_DEG_LAT = 111_195.0
POLICY = RoutingPolicy()


def _at(north_m: float, east_m: float = 0.0) -> Position:
    lon_m = M_PER_DEG_LAT * math.cos(math.radians(SCENE.lat))
    return Position(lat=SCENE.lat + north_m / M_PER_DEG_LAT, lon=SCENE.lon + east_m / lon_m)


def _unit(
    unit_id: str,
    north_m: float,
    *,
    kind: str = UnitKind.PATROL,
    capabilities: Iterable[str] = ("patrol",),
    speed_kmh: float = 36.0,
    home_grid_id: str | None = None,
    home_place_id: str | None = None,
    availability: UnitAvailability = UnitAvailability.AVAILABLE,
    age: timedelta = timedelta(seconds=30),
) -> UnitRecord:
    return UnitRecord(
        unit_id=unit_id,
        kind=kind,
        capabilities=frozenset(capabilities),
        speed_kmh=speed_kmh,
        home_grid_id=home_grid_id,
        home_place_id=home_place_id,
        availability=availability,
        position=_at(north_m),
        position_at=NOW - age,
    )


def _request(**changes: Any) -> RoutingRequest:
    fields: dict[str, Any] = {
        "position": SCENE,
        "priority": Priority.P2,
        "now": NOW,
        "required_capabilities": frozenset({"patrol"}),
    }
    fields.update(changes)
    return RoutingRequest(**fields)


def _route(units: Iterable[UnitRecord], request: RoutingRequest, **policy: Any) -> RouteDecision:
    index = UnitIndex()
    for unit in units:
        index.upsert(unit)
    decision = route(index, request, RoutingPolicy(**policy))
    # Every scenario doubles as a check that the index agrees with the linear scan.
    assert decision == route_by_scan(index, request, RoutingPolicy(**policy))
    return decision


def _primary_ids(decision: RouteDecision) -> list[str]:
    return [c.unit_id for c in decision.primaries]


def test_the_nearest_capable_unit_is_chosen() -> None:
    units = [
        _unit("far", 800),
        _unit("near", 300),
        _unit("fire", 50, kind="fire", capabilities=["fire"]),
    ]
    decision = _route(units, _request())
    assert _primary_ids(decision) == ["near"]
    assert decision.primaries[0].eta_s == pytest.approx(30.0, rel=1e-3)
    assert decision.primaries[0].reason is CandidateReason.BEST_ETA
    assert not decision.commander_needed


def test_busy_stale_incapable_and_excluded_units_are_skipped() -> None:
    units = [
        _unit("busy", 10, availability=UnitAvailability.BUSY),
        _unit("assigned", 20, availability=UnitAvailability.ASSIGNED),
        _unit("stale", 30, age=timedelta(minutes=6)),
        _unit("medic", 40, kind="medical", capabilities=["medical"]),
        _unit("declined", 50),
        _unit("ok", 3000),
    ]
    decision = _route(units, _request(excluded_unit_ids=frozenset({"declined"})))
    assert _primary_ids(decision) == ["ok"]


def test_a_unit_needs_every_required_capability() -> None:
    units = [_unit("patrol", 100), _unit("both", 900, capabilities=["patrol", "mediation"])]
    decision = _route(units, _request(required_capabilities=frozenset({"patrol", "mediation"})))
    assert _primary_ids(decision) == ["both"]


def test_the_school_officer_goes_first_even_when_a_patrol_is_closer() -> None:
    units = [
        _unit("patrol", 100),
        _unit("officer", 2500, kind="school_officer", home_place_id="school-1"),
        _unit("other-school", 200, kind="school_officer", home_place_id="school-2"),
    ]
    one = _route(units, _request(school_place_id="school-1"))
    assert _primary_ids(one) == ["officer"]
    assert one.primaries[0].reason is CandidateReason.SCHOOL_OFFICER
    two = _route(units, _request(school_place_id="school-1", units_needed=2))
    assert _primary_ids(two) == ["officer", "patrol"]
    assert _primary_ids(_route(units, _request())) == ["patrol"]


def test_an_unavailable_school_officer_gives_way_to_the_nearest_unit() -> None:
    busy = UnitAvailability.BUSY
    units = [
        _unit("patrol", 100),
        _unit("officer", 50, kind="school_officer", home_place_id="school-1", availability=busy),
    ]
    assert _primary_ids(_route(units, _request(school_place_id="school-1"))) == ["patrol"]


def test_the_grid_bonus_flips_a_close_call() -> None:
    units = [_unit("stranger", 1000, home_grid_id="g2"), _unit("local", 1500, home_grid_id="g1")]
    assert _primary_ids(_route(units, _request())) == ["stranger"]
    decision = _route(units, _request(grid_id="g1"))
    assert _primary_ids(decision) == ["local"]
    # The reported ETA is the real travel time; the bonus only ranks.
    assert decision.primaries[0].eta_s == pytest.approx(150.0, rel=1e-3)
    assert decision.primaries[0].reason is CandidateReason.GRID_PATROL
    assert _primary_ids(_route(units, _request(grid_id="g1"), grid_bonus_s=30)) == ["stranger"]


def test_p1_needing_two_units_gets_the_two_best() -> None:
    units = [_unit("c", 900), _unit("a", 100), _unit("b", 400), _unit("d", 2000)]
    decision = _route(units, _request(priority=Priority.P1, units_needed=2))
    assert _primary_ids(decision) == ["a", "b"]
    assert not decision.commander_needed


def test_a_fast_unit_farther_out_beats_a_slow_one_nearby() -> None:
    # The search must keep widening after the first find until no farther unit could win.
    units = [_unit("walker", 3000, speed_kmh=10), _unit("car", 9000, speed_kmh=60)]
    assert _primary_ids(_route(units, _request())) == ["car"]


def test_equal_etas_are_broken_by_unit_id() -> None:
    units = [_unit("p-b", 500), _unit("p-c", 500), _unit("p-a", 500)]
    assert _primary_ids(_route(units, _request(units_needed=2))) == ["p-a", "p-b"]


def test_nobody_available_goes_to_the_commander() -> None:
    decision = _route([_unit("busy", 100, availability=UnitAvailability.BUSY)], _request())
    assert decision.primaries == ()
    assert decision.commander_needed
    assert decision.commander_reason is not None
    assert "0 of 1" in decision.commander_reason


def test_too_few_units_for_p1_also_go_to_the_commander() -> None:
    decision = _route([_unit("only", 100)], _request(priority=Priority.P1, units_needed=3))
    assert _primary_ids(decision) == ["only"]
    assert decision.commander_needed
    assert "1 of 3" in (decision.commander_reason or "")


def test_units_beyond_the_search_radius_are_not_sent() -> None:
    decision = _route([_unit("remote", 31_000)], _request())
    assert decision.primaries == ()
    assert decision.commander_needed
    assert _primary_ids(_route([_unit("remote", 31_000)], _request(), max_search_radius_m=40_000))


def _guards() -> list[UnitRecord]:
    return [
        _unit("g500", 500, kind="guard", capabilities=[], home_place_id="ent-2"),
        _unit("g900", -900, kind="guard", capabilities=[], home_place_id="ent-1"),
        _unit("g1100", 1100, kind="guard", capabilities=[]),
        _unit("g-busy", 200, kind="guard", capabilities=[], availability=UnitAvailability.BUSY),
        _unit("police", 300),
    ]


def test_an_enterprise_alarm_alerts_every_guard_within_the_radius() -> None:
    decision = _route(_guards(), _request(priority=Priority.P1, enterprise_place_id="ent-1"))
    assert _primary_ids(decision) == ["police"]
    assert [(c.unit_id, c.reason) for c in decision.mutual_aid] == [
        ("g500", CandidateReason.NEARBY_GUARD),
        ("g900", CandidateReason.OWN_GUARD),
    ]


@pytest.mark.parametrize(
    "changes",
    [
        {"priority": Priority.P3, "enterprise_place_id": "ent-1"},
        {"priority": Priority.P1},
    ],
)
def test_no_mutual_aid_for_low_priority_or_outside_an_enterprise(
    changes: dict[str, object],
) -> None:
    assert _route(_guards(), _request(**changes)).mutual_aid == ()


def test_the_mutual_aid_radius_is_configurable() -> None:
    request = _request(priority=Priority.P2, enterprise_place_id="ent-1")
    decision = _route(_guards(), request, mutual_aid_radius_m=1200)
    assert {c.unit_id for c in decision.mutual_aid} == {"g500", "g900", "g1100"}


def test_a_guard_sent_as_primary_is_not_also_alerted() -> None:
    guards = [_unit("g1", 100, kind="guard", capabilities=[]), _unit("g2", 200, kind="guard")]
    request = _request(
        priority=Priority.P1, enterprise_place_id="ent-1", required_capabilities=frozenset()
    )
    decision = _route(guards, request)
    assert _primary_ids(decision) == ["g1"]
    assert [c.unit_id for c in decision.mutual_aid] == ["g2"]


def test_moving_a_unit_changes_the_choice() -> None:
    index = UnitIndex()
    index.upsert(_unit("a", 300))
    index.upsert(_unit("b", 600))
    assert _primary_ids(route(index, _request(), POLICY)) == ["a"]
    index.upsert(_unit("a", 5000))
    assert _primary_ids(route(index, _request(), POLICY)) == ["b"]


def test_a_replacement_eta_function_is_used_for_ranking() -> None:
    def river_eta(unit: UnitRecord, target: Position, /) -> float:
        # A stand-in for a road graph: unit "a" has to go round by the bridge.
        factor = 5.0 if unit.unit_id == "a" else 1.0
        return factor * great_circle_eta(unit, target)

    index = UnitIndex()
    index.upsert(_unit("a", 300))
    index.upsert(_unit("b", 600))
    decision = route(index, _request(), POLICY, eta=river_eta)
    assert _primary_ids(decision) == ["b"]
    assert decision == route_by_scan(index, _request(), POLICY, eta=river_eta)


@pytest.mark.parametrize("changes", [{"units_needed": 0}, {"now": datetime(2026, 5, 1, 8, 0)}])
def test_a_request_that_cannot_be_answered_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidRoutingRequest):
        _request(**changes)


# The index against a brute-force scan written straight from the rules


def _oracle(
    units: list[UnitRecord], request: RoutingRequest, policy: RoutingPolicy
) -> tuple[list[str], list[str]]:
    def ready(u: UnitRecord) -> bool:
        return (
            u.availability is UnitAvailability.AVAILABLE
            and u.unit_id not in request.excluded_unit_ids
            and u.position is not None
            and u.position_at is not None
            and request.now - u.position_at <= policy.position_max_age
        )

    def eligible(u: UnitRecord) -> bool:
        return ready(u) and request.required_capabilities <= u.capabilities

    def eta(u: UnitRecord) -> float:
        assert u.position is not None
        return distance_m(u.position, request.position) / (u.speed_kmh / 3.6)

    officers = sorted(
        (eta(u), u.unit_id)
        for u in units
        if request.school_place_id is not None
        and u.kind == "school_officer"
        and u.home_place_id == request.school_place_id
        and eligible(u)
    )[: request.units_needed]
    chosen = [unit_id for _, unit_id in officers]
    others = []
    for u in units:
        if u.unit_id in chosen or not eligible(u):
            continue
        assert u.position is not None
        if distance_m(u.position, request.position) > policy.max_search_radius_m:
            continue
        own_grid = request.grid_id is not None and u.home_grid_id == request.grid_id
        bonus = policy.grid_bonus_s if own_grid and u.kind == "patrol" else 0.0
        others.append((eta(u) - bonus, u.unit_id))
    chosen += [unit_id for _, unit_id in sorted(others)[: request.units_needed - len(chosen)]]
    aid: list[str] = []
    if request.enterprise_place_id is not None and request.priority in policy.mutual_aid_priorities:
        aid = [
            unit_id
            for _, unit_id in sorted(
                (eta(u), u.unit_id)
                for u in units
                if u.kind == "guard"
                and ready(u)
                and u.unit_id not in chosen
                and distance_m(u.position or SCENE, request.position) <= policy.mutual_aid_radius_m
            )
        ]
    return chosen, aid


# A coarse lattice (about 330 m a step) and few speeds make equal ETAs common, so tie-breaks
# are exercised. Dense and sparse draws both matter: sparse ones make the search expand
# ring after ring, and a few units far out test the search radius.
near = st.tuples(st.integers(-6, 6), st.integers(-6, 6))
mid = st.tuples(st.integers(-30, 30), st.integers(-30, 30))
CAPABILITIES = ["patrol", "fire", "medical", "mediation"]
OWN_CAPABILITY = {
    UnitKind.PATROL: "patrol",
    UnitKind.SCHOOL_OFFICER: "patrol",
    UnitKind.GUARD: "patrol",
    UnitKind.FIRE: "fire",
    UnitKind.MEDICAL: "medical",
    UnitKind.MEDIATOR: "mediation",
}
KINDS = list(UnitKind)
SPEEDS = [30.0, 60.0, 60.0]
GRIDS = [None, "g1", "g2"]
HOMES = [None, "s1", "e1"]
# Weighted towards available units, or most draws would route nobody.
AVAILABILITIES = [UnitAvailability.AVAILABLE] * 4 + list(UnitAvailability)
MAX_AGE_S = 425
# Kind, extra capabilities (bit mask), own capability (kept unless 0), fix (none if 0), speed,
# grid, home, availability, then fix age: one draw instead of nine keeps the test fast.
TRAITS = (len(KINDS), 16, 10, 10, len(SPEEDS), len(GRIDS), len(HOMES), len(AVAILABILITIES))
SPREADS = (6, 30, 120)


def _lattice_position(spot: tuple[int, int]) -> Position:
    return Position(lat=SCENE.lat + spot[0] * 0.003, lon=SCENE.lon + spot[1] * 0.0035)


def _digits(value: int, radices: tuple[int, ...]) -> list[int]:
    digits = []
    for radix in radices:
        value, digit = divmod(value, radix)
        digits.append(digit)
    return [*digits, value]


@st.composite
def _units(draw: st.DrawFn) -> list[UnitRecord]:
    # Drawing the count first spreads sizes evenly; plain lists favour short ones.
    count = draw(st.integers(0, 80))
    ids = draw(st.lists(st.integers(0, 999), unique=True, min_size=count, max_size=count))
    units = []
    for number in ids:
        traits = draw(st.integers(0, math.prod(TRAITS) * (MAX_AGE_S + 1) - 1))
        kind, extra, own, fix, speed, grid, home, available, age = _digits(traits, TRAITS)
        capabilities = {c for bit, c in enumerate(CAPABILITIES) if extra >> bit & 1}
        if own:
            capabilities.add(OWN_CAPABILITY[KINDS[kind]])
        spread = SPREADS[draw(st.integers(0, len(SPREADS) - 1))]
        north, east = draw(st.integers(-spread, spread)), draw(st.integers(-spread, spread))
        units.append(
            UnitRecord(
                unit_id=f"u{number:03d}",
                kind=KINDS[kind],
                capabilities=frozenset(capabilities),
                speed_kmh=SPEEDS[speed],
                home_grid_id=GRIDS[grid],
                home_place_id=HOMES[home],
                availability=AVAILABILITIES[available],
                position=_lattice_position((north, east)) if fix else None,
                position_at=NOW - timedelta(seconds=age - 5),
            )
        )
    return units


requests = st.builds(
    RoutingRequest,
    position=st.builds(_lattice_position, st.one_of(near, mid)),
    priority=st.sampled_from([Priority.P1, Priority.P2, *Priority]),
    now=st.just(NOW),
    required_capabilities=st.frozensets(st.sampled_from(CAPABILITIES), max_size=2).filter(
        lambda caps: len(caps) < 2 or "patrol" in caps
    ),
    units_needed=st.integers(1, 4),
    grid_id=st.sampled_from([None, "g1", "g2"]),
    school_place_id=st.sampled_from([None, "s1"]),
    enterprise_place_id=st.sampled_from([None, "e1", "e1"]),
    excluded_unit_ids=st.frozensets(st.sampled_from([f"u{n:03d}" for n in range(0, 1000, 7)])),
)
policies = st.builds(
    RoutingPolicy,
    grid_bonus_s=st.sampled_from([0.0, 120.0, 600.0]),
    mutual_aid_radius_m=st.sampled_from([500.0, 1000.0, 3000.0]),
    max_search_radius_m=st.sampled_from([2_000.0, 10_000.0, 30_000.0]),
)


@settings(max_examples=600, deadline=None, database=None)
@given(
    units=_units(),
    request=requests,
    policy=policies,
    resolution=st.sampled_from([6, 7, 8]),
)
def test_route_picks_exactly_what_a_brute_force_scan_picks(
    units: list[UnitRecord], request: RoutingRequest, policy: RoutingPolicy, resolution: int
) -> None:
    index = UnitIndex(resolution=resolution)
    for unit in units:
        index.upsert(unit)
    decision = route(index, request, policy)
    primaries, aid = _oracle(units, request, policy)
    assert _primary_ids(decision) == primaries
    assert [c.unit_id for c in decision.mutual_aid] == aid
    assert decision.commander_needed == (len(primaries) < request.units_needed)
    assert decision == route_by_scan(units, request, policy)
