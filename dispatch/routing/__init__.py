"""Routing: which units go to an incident, ranked by ETA over a spatial index (docs/routing.md)."""

from dispatch.routing.eta import (
    EARTH_RADIUS_M,
    EtaFunction,
    UnitWithoutPosition,
    distance_m,
    great_circle_eta,
    haversine_m,
)
from dispatch.routing.index import DEFAULT_RESOLUTION, RingScan, UnitIndex
from dispatch.routing.router import (
    Candidate,
    CandidateReason,
    InvalidRoutingRequest,
    RouteDecision,
    RoutingPolicy,
    RoutingRequest,
    route,
    route_by_scan,
)
from dispatch.routing.units import InvalidUnitRecord, UnitKind, UnitRecord

__all__ = [
    "DEFAULT_RESOLUTION",
    "EARTH_RADIUS_M",
    "Candidate",
    "CandidateReason",
    "EtaFunction",
    "InvalidRoutingRequest",
    "InvalidUnitRecord",
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
    "haversine_m",
    "route",
    "route_by_scan",
]
