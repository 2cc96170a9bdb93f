"""Choose the units for an incident: school officer first, then best ETA, plus mutual-aid guards."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from dispatch.events import Position, Priority, UnitAvailability
from dispatch.routing.eta import (
    EtaFunction,
    distance_m,
    eta_lower_bound_s,
    great_circle_eta,
    unit_distance_m,
)
from dispatch.routing.index import UnitIndex
from dispatch.routing.units import UnitKind, UnitRecord


class InvalidRoutingRequest(ValueError):
    """Raised when a routing request or policy cannot be answered as asked."""


class CandidateReason(StrEnum):
    """Why a unit was chosen."""

    SCHOOL_OFFICER = "school_officer"
    GRID_PATROL = "grid_patrol"
    BEST_ETA = "best_eta"
    OWN_GUARD = "own_guard"
    NEARBY_GUARD = "nearby_guard"


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingPolicy:
    """Tunable routing rules; the defaults suit an urban zone."""

    position_max_age: timedelta = timedelta(minutes=5)
    # Subtracted from the grid's own patrols' ETA when ranking: they know the streets.
    grid_bonus_s: float = 120.0
    mutual_aid_radius_m: float = 1000.0
    mutual_aid_priorities: frozenset[Priority] = frozenset({Priority.P1, Priority.P2})
    max_search_radius_m: float = 30_000.0

    def __post_init__(self) -> None:
        if self.grid_bonus_s < 0 or self.mutual_aid_radius_m < 0 or self.max_search_radius_m < 0:
            raise InvalidRoutingRequest("policy bonus and radii must not be negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingRequest:
    """Everything routing needs to know about one incident at one moment."""

    position: Position
    priority: Priority
    now: datetime
    required_capabilities: frozenset[str] = frozenset()
    units_needed: int = 1
    grid_id: str | None = None
    school_place_id: str | None = None
    enterprise_place_id: str | None = None
    # Units that declined or timed out on this incident, or already hold a part in it.
    excluded_unit_ids: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.units_needed < 1:
            raise InvalidRoutingRequest("units_needed must be at least 1")
        if self.now.utcoffset() is None:
            raise InvalidRoutingRequest("now must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One unit chosen, its estimated travel time in seconds (no bonus applied), and why."""

    unit_id: str
    eta_s: float
    reason: CandidateReason


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """The units to send, the guards to alert, and whether the commander must step in."""

    primaries: tuple[Candidate, ...]
    mutual_aid: tuple[Candidate, ...] = ()
    commander_needed: bool = False
    commander_reason: str | None = None


_Ranked = tuple[float, str, Candidate]


def _order(ranked: _Ranked) -> tuple[float, str]:
    # Adjusted ETA, then unit id: a total order that never has to compare two Candidates.
    return ranked[0], ranked[1]


class _Rules:
    """The per-request checks shared by the indexed route and the linear scan."""

    def __init__(self, request: RoutingRequest, policy: RoutingPolicy, eta: EtaFunction) -> None:
        self.request = request
        self.policy = policy
        self.eta = eta
        self.max_age_s = policy.position_max_age.total_seconds()
        self.bonus_s = policy.grid_bonus_s if request.grid_id is not None else 0.0

    def ready(self, unit: UnitRecord) -> bool:
        return (
            unit.availability is UnitAvailability.AVAILABLE
            and unit.unit_id not in self.request.excluded_unit_ids
            and unit.is_fresh(self.request.now, self.max_age_s)
        )

    def eligible(self, unit: UnitRecord) -> bool:
        return self.request.required_capabilities <= unit.capabilities and self.ready(unit)

    def is_school_officer(self, unit: UnitRecord) -> bool:
        school = self.request.school_place_id
        return (
            school is not None
            and unit.kind == UnitKind.SCHOOL_OFFICER
            and unit.home_place_id == school
        )

    def in_range(self, unit: UnitRecord) -> bool:
        return unit_distance_m(unit, self.request.position) <= self.policy.max_search_radius_m

    def rank(self, unit: UnitRecord) -> _Ranked:
        eta_s = self.eta(unit, self.request.position)
        # bonus_s is zero when the incident has no grid: a unit without one matches nothing.
        own_grid = unit.home_grid_id == self.request.grid_id
        if self.bonus_s > 0 and unit.kind == UnitKind.PATROL and own_grid:
            candidate = Candidate(unit.unit_id, eta_s, CandidateReason.GRID_PATROL)
            return (eta_s - self.bonus_s, unit.unit_id, candidate)
        return (eta_s, unit.unit_id, Candidate(unit.unit_id, eta_s, CandidateReason.BEST_ETA))

    def officers(self, homed: Iterable[UnitRecord]) -> list[Candidate]:
        # The school's own officer goes first whatever the distance, if free and capable.
        ranked = sorted(
            (self.rank(u) for u in homed if self.is_school_officer(u) and self.eligible(u)),
            key=_order,
        )
        return [
            Candidate(c.unit_id, c.eta_s, CandidateReason.SCHOOL_OFFICER)
            for _, _, c in ranked[: self.request.units_needed]
        ]

    def mutual_aid(self, guards: Iterable[UnitRecord], primaries: set[str]) -> list[Candidate]:
        if not self.wants_mutual_aid():
            return []
        own = self.request.enterprise_place_id
        ranked = sorted(
            (self.eta(u, self.request.position), u.unit_id, u.home_place_id == own)
            for u in guards
            if u.kind == UnitKind.GUARD and u.unit_id not in primaries and self.ready(u)
        )
        return [
            Candidate(
                unit_id,
                eta_s,
                CandidateReason.OWN_GUARD if is_own else CandidateReason.NEARBY_GUARD,
            )
            for eta_s, unit_id, is_own in ranked
        ]

    def wants_mutual_aid(self) -> bool:
        return (
            self.request.enterprise_place_id is not None
            and self.request.priority in self.policy.mutual_aid_priorities
        )

    def decide(self, primaries: list[Candidate], mutual_aid: list[Candidate]) -> RouteDecision:
        needed = self.request.units_needed
        reason = None
        if len(primaries) < needed:
            capabilities = ", ".join(sorted(self.request.required_capabilities)) or "any"
            reason = (
                f"found {len(primaries)} of {needed} units needed: available, capable ("
                f"{capabilities}), fresh position, within {self.policy.max_search_radius_m:.0f} m"
            )
        return RouteDecision(
            primaries=tuple(primaries),
            mutual_aid=tuple(mutual_aid),
            commander_needed=reason is not None,
            commander_reason=reason,
        )


def _best_by_rings(
    index: UnitIndex, rules: _Rules, taken: set[str], wanted: int
) -> list[Candidate]:
    """Keep the best `wanted` units, widening the rings until no unit farther out could win."""
    best: list[_Ranked] = []
    if wanted <= 0:
        return []
    for scan in index.nearest_rings(
        rules.request.position,
        max_radius_m=rules.policy.max_search_radius_m,
        capabilities=rules.request.required_capabilities,
        available_only=True,
    ):
        for unit in scan.units:
            if unit.unit_id in taken or not rules.eligible(unit):
                continue
            ranked = rules.rank(unit)
            # The range check costs a second distance, so only contenders pay for it.
            if len(best) == wanted and _order(ranked) >= _order(best[-1]):
                continue
            if rules.in_range(unit):
                bisect.insort(best, ranked, key=_order)
                del best[wanted:]
        # Every unit not met yet is farther than covered_m, so its ETA (less any bonus) is
        # strictly above this floor: once the last pick is at or under it, none can win.
        floor = eta_lower_bound_s(scan.covered_m, scan.fastest_kmh) - rules.bonus_s
        if len(best) == wanted and best[-1][0] <= floor:
            break
    return [c for _, _, c in best]


def route(
    index: UnitIndex,
    request: RoutingRequest,
    policy: RoutingPolicy,
    eta: EtaFunction = great_circle_eta,
) -> RouteDecision:
    """Choose primary units and mutual-aid guards for one incident from the index."""
    rules = _Rules(request, policy, eta)
    school = request.school_place_id
    primaries = rules.officers(index.homed_at(school) if school is not None else ())
    taken = {c.unit_id for c in primaries}
    primaries.extend(_best_by_rings(index, rules, taken, request.units_needed - len(primaries)))
    guards: Iterable[UnitRecord] = ()
    if rules.wants_mutual_aid():
        guards = index.nearby(
            request.position, policy.mutual_aid_radius_m, kind=UnitKind.GUARD, available_only=True
        )
    taken = {c.unit_id for c in primaries}
    return rules.decide(primaries, rules.mutual_aid(guards, taken))


def route_by_scan(
    units: Iterable[UnitRecord],
    request: RoutingRequest,
    policy: RoutingPolicy,
    eta: EtaFunction = great_circle_eta,
) -> RouteDecision:
    """Choose as `route` does by checking every unit: the baseline that the index must match."""
    rules = _Rules(request, policy, eta)
    everyone = list(units)
    primaries = rules.officers(everyone)
    taken = {c.unit_id for c in primaries}
    wanted = request.units_needed - len(primaries)
    ranked = sorted(
        (
            rules.rank(u)
            for u in everyone
            if u.unit_id not in taken and rules.eligible(u) and rules.in_range(u)
        ),
        key=_order,
    )
    primaries.extend(c for _, _, c in ranked[: max(wanted, 0)])
    taken = {c.unit_id for c in primaries}
    guards = [
        u
        for u in everyone
        if u.position is not None
        and distance_m(u.position, request.position) <= policy.mutual_aid_radius_m
    ]
    return rules.decide(primaries, rules.mutual_aid(guards, taken))
