"""Tests for routing rules, mutual aid, and the index search against a brute-force scan."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dispatch.events import Position, Priority, UnitAvailability
from dispatch.routing import (
    SCHOOL_OFFICER_PART,
    CandidateReason,
    InvalidRoutingPolicy,
    InvalidRoutingRequest,
    Need,
    RouteDecision,
    RoutingPolicy,
    RoutingRequest,
    UnitIndex,
    UnitKind,
    UnitRecord,
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
        "needs": (Need("patrol"),),
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


def _parts(decision: RouteDecision) -> list[tuple[str, str]]:
    return [(c.unit_id, c.part) for c in decision.primaries]


def test_the_nearest_capable_unit_is_chosen() -> None:
    units = [
        _unit("far", 800),
        _unit("near", 300),
        _unit("fire", 50, kind="fire", capabilities=["fire"]),
    ]
    decision = _route(units, _request())
    assert _parts(decision) == [("near", "patrol")]
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


def test_several_kinds_of_unit_cover_the_need_together() -> None:
    # The warehouse fire with people trapped: two engines and an ambulance, never one unit
    # that holds every capability (there is none).
    units = [
        _unit("engine-1", 2000, kind="fire", capabilities=["fire", "rescue"], speed_kmh=45),
        _unit("engine-2", 2500, kind="fire", capabilities=["fire", "rescue"], speed_kmh=45),
        _unit("engine-3", 9000, kind="fire", capabilities=["fire"], speed_kmh=45),
        _unit("amb-1", 3000, kind="medical", capabilities=["medical"], speed_kmh=50),
        _unit("patrol", 500),
    ]
    request = _request(priority=Priority.P1, needs=(Need("fire", 2), Need("medical")))
    decision = _route(units, request)
    assert _parts(decision) == [("engine-1", "fire"), ("engine-2", "fire"), ("amb-1", "medical")]
    assert not decision.commander_needed


def test_what_cannot_be_covered_goes_to_the_commander_and_the_rest_is_sent() -> None:
    units = [_unit("engine-1", 2000, kind="fire", capabilities=["fire"], speed_kmh=45)]
    request = _request(priority=Priority.P1, needs=(Need("fire", 2), Need("medical")))
    decision = _route(units, request)
    assert _parts(decision) == [("engine-1", "fire")]
    assert decision.commander_needed
    assert decision.missing == (Need("fire", 1), Need("medical", 1))
    assert "not covered: fire x1; medical x1" in (decision.commander_reason or "")


def test_a_unit_fills_one_part_and_the_rare_capability_gets_the_rare_unit() -> None:
    # The hazmat truck is nearest, but only it can fill hazmat: the water tender takes fire.
    units = [
        _unit("hazmat", 1000, kind="fire", capabilities=["fire", "hazmat"], speed_kmh=45),
        _unit("tender", 1500, kind="fire", capabilities=["fire"], speed_kmh=45),
    ]
    request = _request(priority=Priority.P1, needs=(Need("fire"), Need("hazmat")))
    assert _parts(_route(units, request)) == [("tender", "fire"), ("hazmat", "hazmat")]


def test_at_p1_a_school_gets_its_officer_and_the_nearest_patrol() -> None:
    units = [
        _unit("patrol", 100),
        _unit("officer", 9000, kind="school_officer", home_place_id="school-1"),
        _unit("other-school", 200, kind="school_officer", home_place_id="school-2"),
    ]
    decision = _route(units, _request(priority=Priority.P1, school_place_id="school-1"))
    assert _parts(decision) == [("officer", SCHOOL_OFFICER_PART), ("patrol", "patrol")]
    assert decision.primaries[0].reason is CandidateReason.SCHOOL_OFFICER


def test_below_p2_the_school_officer_alone_takes_the_part_whatever_the_distance() -> None:
    units = [
        _unit("patrol", 100),
        _unit("officer", 2500, kind="school_officer", home_place_id="school-1"),
    ]
    decision = _route(units, _request(priority=Priority.P3, school_place_id="school-1"))
    assert _parts(decision) == [("officer", "patrol")]


def test_school_officers_stay_on_their_own_campus() -> None:
    units = [
        _unit("officer", 100, kind="school_officer", home_place_id="school-2"),
        _unit("patrol", 4000),
    ]
    assert _primary_ids(_route(units, _request(priority=Priority.P1))) == ["patrol"]
    off_campus = _route(units, _request(), school_officers_off_campus=True)
    assert _primary_ids(off_campus) == ["officer"]


def test_an_unavailable_school_officer_goes_to_the_commander_at_p1() -> None:
    busy = UnitAvailability.BUSY
    units = [
        _unit("patrol", 100),
        _unit("officer", 50, kind="school_officer", home_place_id="school-1", availability=busy),
    ]
    decision = _route(units, _request(priority=Priority.P1, school_place_id="school-1"))
    assert _primary_ids(decision) == ["patrol"]
    assert decision.missing == (Need(SCHOOL_OFFICER_PART),)
    low = _route(units, _request(priority=Priority.P3, school_place_id="school-1"))
    assert (_primary_ids(low), low.commander_needed) == (["patrol"], False)


def test_the_grid_bonus_flips_a_close_call_only_within_its_margin() -> None:
    units = [_unit("stranger", 1000, home_grid_id="g2"), _unit("local", 1500, home_grid_id="g1")]
    assert _primary_ids(_route(units, _request())) == ["stranger"]
    # P3: 120 s of bonus beats the 50 s the local patrol is behind.
    decision = _route(units, _request(grid_id="g1", priority=Priority.P3))
    assert _primary_ids(decision) == ["local"]
    # The reported ETA is the real travel time; the bonus only ranks.
    assert decision.primaries[0].eta_s == pytest.approx(150.0, rel=1e-3)
    assert decision.primaries[0].reason is CandidateReason.GRID_PATROL
    # P1 and P2: 30 s at most, so a unit 50 s sooner goes.
    assert _primary_ids(_route(units, _request(grid_id="g1", priority=Priority.P1))) == ["stranger"]


def test_a_grid_bonus_over_a_minute_for_urgent_incidents_is_refused() -> None:
    with pytest.raises(InvalidRoutingPolicy, match="P1/P2"):
        RoutingPolicy(grid_bonus_s=120.0)
    with pytest.raises(InvalidRoutingPolicy):
        RoutingPolicy(grid_bonus_s={Priority.P1: 10.0})
    assert RoutingPolicy(grid_bonus_s=45).grid_bonus_for(Priority.P4) == 45.0


def test_p1_needing_two_units_gets_the_two_best() -> None:
    units = [_unit("c", 900), _unit("a", 100), _unit("b", 400), _unit("d", 2000)]
    decision = _route(units, _request(priority=Priority.P1, needs=(Need("patrol", 2),)))
    assert _primary_ids(decision) == ["a", "b"]
    assert not decision.commander_needed


def test_legacy_requests_read_the_extra_units_as_the_first_capability() -> None:
    units = [_unit("a", 100), _unit("b", 400), _unit("m", 300, capabilities=["mediation"])]
    request = _request(
        needs=(), required_capabilities=frozenset({"patrol", "mediation"}), units_needed=3
    )
    assert request.wanted == (Need("mediation", 2), Need("patrol"))
    assert _parts(_route(units, request)) == [("m", "mediation"), ("a", "patrol")]


def test_a_fast_unit_farther_out_beats_a_slow_one_nearby() -> None:
    # The search must keep widening after the first find until no farther unit could win.
    units = [_unit("walker", 3000, speed_kmh=10), _unit("car", 9000, speed_kmh=60)]
    assert _primary_ids(_route(units, _request())) == ["car"]


def test_equal_etas_are_broken_by_unit_id() -> None:
    units = [_unit("p-b", 500), _unit("p-c", 500), _unit("p-a", 500)]
    assert _primary_ids(_route(units, _request(needs=(Need("patrol", 2),)))) == ["p-a", "p-b"]


def test_nobody_available_goes_to_the_commander() -> None:
    decision = _route([_unit("busy", 100, availability=UnitAvailability.BUSY)], _request())
    assert decision.primaries == ()
    assert decision.commander_needed
    assert "not covered: patrol x1" in (decision.commander_reason or "")


def test_engaged_units_keep_their_parts_and_only_the_open_part_is_routed() -> None:
    units = [
        _unit("engine-1", 2000, kind="fire", capabilities=["fire"], speed_kmh=45),
        _unit("engine-2", 2500, kind="fire", capabilities=["fire"], speed_kmh=45),
        _unit("amb-1", 3000, kind="medical", capabilities=["medical"], speed_kmh=50),
        _unit("amb-2", 6000, kind="medical", capabilities=["medical"], speed_kmh=50),
    ]
    request = _request(
        priority=Priority.P1,
        needs=(Need("fire", 2), Need("medical")),
        engaged_unit_ids=frozenset({"engine-1", "engine-2"}),
        excluded_unit_ids=frozenset({"amb-1"}),
    )
    assert _parts(_route(units, request)) == [("amb-2", "medical")]


def test_units_beyond_the_search_radius_are_not_sent() -> None:
    decision = _route([_unit("remote", 31_000)], _request())
    assert decision.primaries == ()
    assert decision.commander_needed
    assert _primary_ids(_route([_unit("remote", 31_000)], _request(), max_search_radius_m=40_000))


def _guards() -> list[UnitRecord]:
    return [
        _unit("g500", 500, kind="guard", capabilities=["guard"], home_place_id="ent-2"),
        _unit("g900", -900, kind="guard", capabilities=["guard"], home_place_id="ent-1"),
        _unit("g1100", 1100, kind="guard", capabilities=["guard"]),
        _unit("g-busy", 200, kind="guard", availability=UnitAvailability.BUSY),
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
    guards = [
        _unit("g1", 100, kind="guard", capabilities=["guard"]),
        _unit("g2", 200, kind="guard"),
    ]
    request = _request(priority=Priority.P1, enterprise_place_id="ent-1", needs=(Need("guard"),))
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


@pytest.mark.parametrize(
    "changes",
    [
        {"units_needed": 0},
        {"now": datetime(2026, 5, 1, 8, 0)},
        {"needs": (Need("patrol", 6), Need("fire", 5))},
    ],
)
def test_a_request_that_cannot_be_answered_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidRoutingRequest):
        _request(**changes)
