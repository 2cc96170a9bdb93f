"""Routing: which units go to an incident, ranked by ETA over a spatial index (docs/routing.md)."""

from dispatch.routing.eta import EtaFunction, UnitWithoutPosition, distance_m, great_circle_eta
from dispatch.routing.index import DEFAULT_RESOLUTION, RingScan, UnitIndex
from dispatch.routing.needs import (
    SCHOOL_OFFICER_PART,
    InvalidNeed,
    Need,
    legacy_needs,
    merged_needs,
    needs_as_mapping,
    needs_from_mapping,
)
from dispatch.routing.policy import MAX_URGENT_GRID_BONUS_S, InvalidRoutingPolicy, RoutingPolicy
from dispatch.routing.router import (
    MAX_PARTS,
    Candidate,
    CandidateReason,
    InvalidRoutingRequest,
    RouteDecision,
    RoutingRequest,
    plan_size,
    route,
    route_by_scan,
)
from dispatch.routing.units import InvalidUnitRecord, UnitRecord
from dispatch.zone.model import UnitKind

__all__ = [
    "DEFAULT_RESOLUTION",
    "MAX_PARTS",
    "MAX_URGENT_GRID_BONUS_S",
    "SCHOOL_OFFICER_PART",
    "Candidate",
    "CandidateReason",
    "EtaFunction",
    "InvalidNeed",
    "InvalidRoutingPolicy",
    "InvalidRoutingRequest",
    "InvalidUnitRecord",
    "Need",
    "RingScan",
    "RouteDecision",
    "RoutingPolicy",
    "RoutingRequest",
    "UnitIndex",
    "UnitKind",
    "UnitRecord",
    "UnitWithoutPosition",
    "distance_m",
    "great_circle_eta",
    "legacy_needs",
    "merged_needs",
    "needs_as_mapping",
    "needs_from_mapping",
    "plan_size",
    "route",
    "route_by_scan",
]
