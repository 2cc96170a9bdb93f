"""Choose the units for an incident: a set that covers its counted needs, part by part."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from dispatch.events import Position, Priority, UnitAvailability
from dispatch.routing.assign import assign
from dispatch.routing.eta import EtaFunction, distance_m, eta_lower_bound_s, great_circle_eta
from dispatch.routing.index import UnitIndex
from dispatch.routing.needs import (
    SCHOOL_OFFICER_PART,
    Need,
    count_parts,
    legacy_needs,
    parts_of,
)
from dispatch.routing.policy import RoutingPolicy
from dispatch.routing.units import UnitRecord
from dispatch.zone.model import UnitKind

MAX_PARTS = 10  # an incident sends at most this many units at once (Incident.units_needed)
# What holding a part costs a unit already on its way: below any ETA, so the assignment keeps
# every engaged unit on a part whenever it can, and sends new units only for the rest.
ENGAGED_COST = -1e7
# Seconds of ranking added per second a connected unit's fix is older than position_max_age:
# 30 min old costs it 2.5 min against a fresh unit equally near.
STALE_FIX_PENALTY = 0.1


class InvalidRoutingRequest(ValueError):
    """Raised when a routing request cannot be answered as asked."""


class CandidateReason(StrEnum):
    """Why a unit was chosen."""

    SCHOOL_OFFICER = "school_officer"
    GRID_PATROL = "grid_patrol"
    BEST_ETA = "best_eta"
    OWN_GUARD = "own_guard"
    NEARBY_GUARD = "nearby_guard"


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingRequest:
    """Everything routing needs to know about one incident at one moment."""

    position: Position
    priority: Priority
    now: datetime
    # What the incident needs in all; without it, the old pair below is read (legacy_needs).
    needs: tuple[Need, ...] = ()
    required_capabilities: frozenset[str] = frozenset()
    units_needed: int = 1
    grid_id: str | None = None
    school_place_id: str | None = None
    enterprise_place_id: str | None = None
    # Units that declined or timed out on this incident: never offered it again.
    excluded_unit_ids: frozenset[str] = field(default_factory=frozenset)
    # Units on the incident now: they keep the parts they fill; only the rest is routed.
    engaged_unit_ids: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.units_needed < 1:
            raise InvalidRoutingRequest("units_needed must be at least 1")
        if self.now.utcoffset() is None:
            raise InvalidRoutingRequest("now must be timezone-aware")
        if len(parts_of(self.wanted)) > MAX_PARTS:
            raise InvalidRoutingRequest(f"an incident needs at most {MAX_PARTS} units")

    @property
    def wanted(self) -> tuple[Need, ...]:
        """Return the counted needs, read from the old fields when `needs` is empty."""
        if self.needs:
            return self.needs
        return legacy_needs(sorted(self.required_capabilities), self.units_needed)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One unit chosen, its travel time in seconds (no bonus applied), why, and its part."""

    unit_id: str
    eta_s: float
    reason: CandidateReason
    part: str = ""


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """The units to send, the guards to alert, and what the commander must cover."""

    primaries: tuple[Candidate, ...]
    mutual_aid: tuple[Candidate, ...] = ()
    commander_needed: bool = False
    commander_reason: str | None = None
    missing: tuple[Need, ...] = ()


_Ranked = tuple[float, str, UnitRecord]


class _Planner:
    """The per-request rules shared by the indexed route and the linear scan."""

    def __init__(self, request: RoutingRequest, policy: RoutingPolicy, eta: EtaFunction) -> None:
        self.request = request
        self.policy = policy
        self.eta = eta
        self.max_age_s = policy.position_max_age.total_seconds()
        self.seen_within_s = policy.presence_window.total_seconds()
        self.connected_max_age_s = policy.connected_position_max_age.total_seconds()
        self.bonus_s = policy.grid_bonus_for(request.priority) if request.grid_id else 0.0
        self.backup = request.priority in policy.school_backup_priorities
        school = request.school_place_id is not None
        officer_part = [SCHOOL_OFFICER_PART] if school and self.backup else []
        # The school's officer leads at its own school, so its part comes first.
        self.parts = officer_part + parts_of(request.wanted)

    def ready(self, unit: UnitRecord) -> bool:
        return (
            unit.availability is UnitAvailability.AVAILABLE
            and unit.unit_id not in self.request.excluded_unit_ids
            and unit.unit_id not in self.request.engaged_unit_ids
            and unit.is_fresh(
                self.request.now,
                self.max_age_s,
                seen_within_s=self.seen_within_s,
                connected_max_age_s=self.connected_max_age_s,
            )
        )

    def own_officer(self, unit: UnitRecord) -> bool:
        school = self.request.school_place_id
        return (
            school is not None
            and unit.kind == UnitKind.SCHOOL_OFFICER
            and unit.home_place_id == school
        )

    def can_fill(self, unit: UnitRecord, part: str) -> bool:
        """Tell whether the unit may hold the part, whatever its availability."""
        if part == SCHOOL_OFFICER_PART:
            return self.own_officer(unit)
        if part not in unit.capabilities:
            return False
        if unit.kind == UnitKind.SCHOOL_OFFICER:
            # At urgent priorities the officer holds its own part, so the capable units
            # nearest the scene are sent beside it; officers stay on their own campus.
            if self.own_officer(unit):
                return not self.backup
            return self.policy.school_officers_off_campus
        return True

    def in_range(self, unit: UnitRecord) -> bool:
        position = unit.position
        if position is None:
            return False
        return distance_m(position, self.request.position) <= self.policy.max_search_radius_m

    def adjusted(self, unit: UnitRecord) -> float:
        """Return the ETA used for ranking: the grid's own patrol gets its bonus off."""
        if self.own_officer(unit) and not self.backup:
            return 0.0  # the school's own officer, whatever the distance, below urgent
        eta_s = self.eta(unit, self.request.position) + self.stale_penalty(unit)
        if self.is_grid_patrol(unit):
            return eta_s - self.bonus_s
        return eta_s

    def stale_penalty(self, unit: UnitRecord) -> float:
        """Return the seconds a fix older than position_max_age adds to a unit's ranking."""
        age = unit.fix_age_s(self.request.now)
        return 0.0 if age is None else max(0.0, age - self.max_age_s) * STALE_FIX_PENALTY

    def is_grid_patrol(self, unit: UnitRecord) -> bool:
        grid = self.request.grid_id
        return (
            self.bonus_s > 0
            and grid is not None
            and unit.kind == UnitKind.PATROL
            and unit.home_grid_id == grid
        )

    def candidate(self, unit: UnitRecord, part: str) -> Candidate:
        eta_s = self.eta(unit, self.request.position)
        if self.own_officer(unit):
            reason = CandidateReason.SCHOOL_OFFICER
        elif self.is_grid_patrol(unit):
            reason = CandidateReason.GRID_PATROL
        else:
            reason = CandidateReason.BEST_ETA
        return Candidate(unit.unit_id, eta_s, reason, part)

    def officers(self, homed: Iterable[UnitRecord]) -> list[UnitRecord]:
        return [u for u in homed if self.own_officer(u) and self.ready(u)]

    def mutual_aid(self, guards: Iterable[UnitRecord], taken: set[str]) -> list[Candidate]:
        if not self.wants_mutual_aid():
            return []
        own = self.request.enterprise_place_id
        ranked = sorted(
            (self.eta(u, self.request.position), u.unit_id, u.home_place_id == own)
            for u in guards
            if u.kind == UnitKind.GUARD
            and u.unit_id not in taken
            and u.unit_id not in self.request.engaged_unit_ids
            and self.ready(u)
        )
        return [
            Candidate(
                unit_id,
                eta_s,
                CandidateReason.OWN_GUARD if is_own else CandidateReason.NEARBY_GUARD,
                "mutual_aid",
            )
            for eta_s, unit_id, is_own in ranked
        ]

    def wants_mutual_aid(self) -> bool:
        return (
            self.request.enterprise_place_id is not None
            and self.request.priority in self.policy.mutual_aid_priorities
        )

    def fill(
        self, parts: list[str], pool: Iterable[UnitRecord], engaged: Iterable[UnitRecord] = ()
    ) -> tuple[list[Candidate], list[str]]:
        """Fill the parts from the engaged units and the candidates; return the candidates
        chosen (at least total ETA) and the parts that stay open.

        The engaged units (already on the way) and the candidates are matched to the parts
        together, the engaged ones first whenever they can be: which part an engaged unit
        holds is decided with what the free units can fill, so a unit that declines reopens
        a part some free unit can take whenever one can (an engine that can also carry a
        stretcher holds the stretcher's part if only an engine is free).
        """
        held = sorted({u.unit_id: u for u in engaged}.values(), key=lambda u: u.unit_id)
        free = sorted(
            {u.unit_id: u for u in pool if u.unit_id not in {h.unit_id for h in held}}.values(),
            key=lambda u: (self.adjusted(u), u.unit_id),
        )
        columns = [*held, *free]
        costs = [ENGAGED_COST] * len(held) + [self.adjusted(u) for u in free]
        # A tiny cost by rank makes equal ETAs go to the lower unit id, as a scan would.
        chosen = assign(
            len(parts),
            len(columns),
            lambda p, u: costs[u] + u * 1e-6 if self.can_fill(columns[u], parts[p]) else None,
        )
        filled = [
            (costs[u], columns[u].unit_id, self.candidate(columns[u], parts[p]))
            for p, u in enumerate(chosen)
            if u is not None and u >= len(held)
        ]
        # Officer's part first, then the parts in order of need, each by ETA.
        order = {part: n for n, part in enumerate(dict.fromkeys(parts))}
        filled.sort(key=lambda f: (order[f[2].part], f[0], f[1]))
        missing = [part for part, u in zip(parts, chosen, strict=True) if u is None]
        return [c for _, _, c in filled], missing

    def decide(
        self, primaries: list[Candidate], missing: list[str], aid: list[Candidate]
    ) -> RouteDecision:
        if not missing:
            return RouteDecision(primaries=tuple(primaries), mutual_aid=tuple(aid))
        lacking = count_parts(missing)
        described = "; ".join(str(need) for need in lacking)
        reason = (
            f"not covered: {described} (no available unit with a fresh position within "
            f"{self.policy.max_search_radius_m:.0f} m"
        )
        if SCHOOL_OFFICER_PART in missing:
            reason += f"; the officer of {self.request.school_place_id} is not free"
        sent = ", ".join(f"{c.unit_id} ({c.part})" for c in primaries) or "nothing"
        return RouteDecision(
            primaries=tuple(primaries),
            mutual_aid=tuple(aid),
            commander_needed=True,
            commander_reason=f"{reason}); sent: {sent}",
            missing=lacking,
        )


def plan_size(request: RoutingRequest, policy: RoutingPolicy) -> int:
    """Return how many units a full plan for the request sends (its parts, the officer's too)."""
    return len(_Planner(request, policy, great_circle_eta).parts)


def _best_by_rings(
    index: UnitIndex, planner: _Planner, capability: str, skip: set[str], wanted: int
) -> list[UnitRecord]:
    """Keep the best `wanted` units for a capability, widening rings until none could win."""
    best: list[_Ranked] = []
    for scan in index.nearest_rings(
        planner.request.position,
        max_radius_m=planner.policy.max_search_radius_m,
        capabilities=(capability,),
        available_only=True,
    ):
        for unit in scan.units:
            if unit.unit_id in skip or not planner.ready(unit):
                continue
            if not planner.can_fill(unit, capability):
                continue
            ranked = (planner.adjusted(unit), unit.unit_id, unit)
            # The range check costs a second distance, so only contenders pay for it.
            if len(best) == wanted and ranked[:2] >= best[-1][:2]:
                continue
            if planner.in_range(unit):
                bisect.insort(best, ranked, key=lambda r: r[:2])
                del best[wanted:]
        # Every unit not met yet is farther than covered_m, so its ETA (less any bonus) is
        # strictly above this floor: once the last pick is at or under it, none can win.
        floor = eta_lower_bound_s(scan.covered_m, scan.fastest_kmh) - planner.bonus_s
        if len(best) == wanted and best[-1][0] <= floor:
            break
    return [unit for _, _, unit in best]


def route(
    index: UnitIndex,
    request: RoutingRequest,
    policy: RoutingPolicy,
    eta: EtaFunction = great_circle_eta,
) -> RouteDecision:
    """Choose units that together cover the incident's open parts, and mutual-aid guards."""
    planner = _Planner(request, policy, eta)
    engaged = [u for u in map(index.get, sorted(request.engaged_unit_ids)) if u is not None]
    parts = planner.parts
    school = request.school_place_id
    officers = planner.officers(index.homed_at(school) if school is not None else ())
    skip = {u.unit_id for u in officers}
    pool = list(officers)
    # The best len(parts) units per capability suffice: a part given a worse unit always has
    # a free better one among them to swap in.
    for capability in dict.fromkeys(p for p in parts if p != SCHOOL_OFFICER_PART):
        pool.extend(_best_by_rings(index, planner, capability, skip, len(parts)))
    primaries, missing = planner.fill(parts, pool, engaged)
    guards: Iterable[UnitRecord] = ()
    if planner.wants_mutual_aid():
        guards = index.nearby(
            request.position, policy.mutual_aid_radius_m, kind=UnitKind.GUARD, available_only=True
        )
    taken = {c.unit_id for c in primaries}
    return planner.decide(primaries, missing, planner.mutual_aid(guards, taken))


def route_by_scan(
    units: Iterable[UnitRecord],
    request: RoutingRequest,
    policy: RoutingPolicy,
    eta: EtaFunction = great_circle_eta,
) -> RouteDecision:
    """Choose as `route` does by checking every unit: the baseline that the index must match."""
    planner = _Planner(request, policy, eta)
    everyone = list(units)
    engaged = [u for u in everyone if u.unit_id in request.engaged_unit_ids]
    parts = planner.parts
    officers = planner.officers(everyone)
    skip = {u.unit_id for u in officers}
    pool = list(officers)
    for capability in dict.fromkeys(p for p in parts if p != SCHOOL_OFFICER_PART):
        ranked = sorted(
            (planner.adjusted(u), u.unit_id, u)
            for u in everyone
            if u.unit_id not in skip
            and planner.ready(u)
            and planner.can_fill(u, capability)
            and planner.in_range(u)
        )
        pool.extend(unit for _, _, unit in ranked[: len(parts)])
    primaries, missing = planner.fill(parts, pool, engaged)
    taken = {c.unit_id for c in primaries}
    guards = [
        u
        for u in everyone
        if u.position is not None
        and distance_m(u.position, request.position) <= policy.mutual_aid_radius_m
    ]
    return planner.decide(primaries, missing, planner.mutual_aid(guards, taken))
