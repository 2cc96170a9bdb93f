"""Travel-time estimates: the seam where a road graph can later replace straight lines."""

from __future__ import annotations

import math
from typing import Protocol

from dispatch.events import Position
from dispatch.routing.units import UnitRecord
from dispatch.zone.geo import haversine_m


class UnitWithoutPosition(ValueError):
    """Raised when an ETA is asked for a unit that has never reported a position."""


class EtaFunction(Protocol):
    """Estimate how many seconds a unit needs to reach a target.

    Contract: the result is never less than great-circle distance / the unit's `speed_kmh`.
    Road distance is never shorter than the great circle, so a road graph that caps each
    unit at its `speed_kmh` keeps this; the index relies on it to stop searching early.
    """

    def __call__(self, unit: UnitRecord, target: Position, /) -> float:
        """Return the estimated travel time in seconds."""
        ...


def distance_m(a: Position, b: Position) -> float:
    """Return the great-circle distance in metres between two positions (the zone's one)."""
    return haversine_m(a, b)


def unit_distance_m(unit: UnitRecord, target: Position) -> float:
    """Return the great-circle distance in metres from a unit's last fix to target."""
    if unit.position is None:
        raise UnitWithoutPosition(f"unit {unit.unit_id} has no position")
    return distance_m(unit.position, target)


def great_circle_eta(unit: UnitRecord, target: Position, /) -> float:
    """Return seconds to cover the great-circle distance at the unit's top speed."""
    return unit_distance_m(unit, target) / unit.speed_mps


def eta_lower_bound_s(distance: float, fastest_kmh: float) -> float:
    """Return the least ETA any conforming EtaFunction gives at distance for the fastest unit."""
    if fastest_kmh <= 0:
        return math.inf
    return distance / (fastest_kmh / 3.6)
