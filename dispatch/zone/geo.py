"""Plane and sphere geometry for the zone: distances, point in polygon, polygon sanity."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple, Protocol

# h3 ships no type hints (pyproject lets mypy treat it as Any): values are converted on use.
import h3

EARTH_RADIUS_M = 6_371_007.180918475
"""h3's mean Earth radius; haversine with it is within 0.5 % of the ellipsoid."""

Vertex = tuple[float, float]
"""A polygon corner as (lat, lon) in degrees, the order the zone file writes them in."""

# Tolerance, in degrees, within which a point counts as lying on a polygon edge (≈ 1 mm).
_ON_EDGE_DEG = 1e-8


class LatLon(Protocol):
    """Anything with a WGS-84 latitude and longitude in degrees, such as `Position`."""

    @property
    def lat(self) -> float: ...

    @property
    def lon(self) -> float: ...


class Point(NamedTuple):
    """A bare (lat, lon) in degrees that satisfies `LatLon`."""

    lat: float
    lon: float


def haversine_m(a: LatLon, b: LatLon) -> float:
    """Return the great-circle distance between two points in metres (the project's only one)."""
    # h3's haversine on its own mean radius (6,371.007 km): the index and the zone measure alike.
    return float(h3.great_circle_distance((a.lat, a.lon), (b.lat, b.lon), unit="m"))


def open_ring(ring: Sequence[Vertex]) -> tuple[Vertex, ...]:
    """Return the ring without its closing vertex, if it repeats the first one."""
    if len(ring) > 1 and ring[0] == ring[-1]:
        return tuple(ring[:-1])
    return tuple(ring)


def _cross(o: Vertex, a: Vertex, b: Vertex) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _on_segment(p: Vertex, a: Vertex, b: Vertex) -> bool:
    # The box test first: it is cheap and rules out almost every edge.
    if not (
        min(a[0], b[0]) - _ON_EDGE_DEG <= p[0] <= max(a[0], b[0]) + _ON_EDGE_DEG
        and min(a[1], b[1]) - _ON_EDGE_DEG <= p[1] <= max(a[1], b[1]) + _ON_EDGE_DEG
    ):
        return False
    length = math.dist(a, b)
    return abs(_cross(a, b, p)) <= _ON_EDGE_DEG * max(length, _ON_EDGE_DEG)


def bounding_box(ring: Sequence[Vertex]) -> tuple[float, float, float, float]:
    """Return (min lat, max lat, min lon, max lon) of the ring, widened by the edge tolerance."""
    lats = [v[0] for v in ring]
    lons = [v[1] for v in ring]
    return (
        min(lats) - _ON_EDGE_DEG,
        max(lats) + _ON_EDGE_DEG,
        min(lons) - _ON_EDGE_DEG,
        max(lons) + _ON_EDGE_DEG,
    )


def point_in_polygon(point: LatLon, ring: Sequence[Vertex]) -> bool:
    """Return whether the point lies inside the ring or on its boundary."""
    # Grids are a few kilometres across, so treating degrees as a plane is exact enough, and
    # counting the boundary as inside means a point on a shared edge always finds a grid.
    p = (point.lat, point.lon)
    corners = open_ring(ring)
    inside = False
    for i, a in enumerate(corners):
        b = corners[i - 1]
        if _on_segment(p, a, b):
            return True
        # Ray casting towards +lon; the half-open test counts a vertex on the ray once.
        if (a[0] > p[0]) != (b[0] > p[0]):
            lon_at = a[1] + (p[0] - a[0]) * (b[1] - a[1]) / (b[0] - a[0])
            if p[1] < lon_at:
                inside = not inside
    return inside


def ring_area_deg2(ring: Sequence[Vertex]) -> float:
    """Return the unsigned shoelace area of the ring in square degrees."""
    corners = open_ring(ring)
    twice = sum(
        corners[i - 1][0] * corners[i][1] - corners[i][0] * corners[i - 1][1]
        for i in range(len(corners))
    )
    return abs(twice) / 2


def _segments_cross(a: Vertex, b: Vertex, c: Vertex, d: Vertex) -> bool:
    d1, d2 = _cross(c, d, a), _cross(c, d, b)
    d3, d4 = _cross(a, b, c), _cross(a, b, d)
    if ((d1 > 0) != (d2 > 0)) and ((d3 > 0) != (d4 > 0)) and 0 not in (d1, d2, d3, d4):
        return True
    # Touching or overlapping counts too: a ring that folds back on itself is not a grid.
    return (
        _on_segment(a, c, d) or _on_segment(b, c, d) or _on_segment(c, a, b) or _on_segment(d, a, b)
    )


def ring_problem(ring: Sequence[Vertex]) -> str | None:
    """Return why the ring is not a usable polygon, or None when it is."""
    corners = open_ring(ring)
    if len(set(corners)) < 3:
        return "a polygon needs at least 3 distinct [lat, lon] points"
    for i, vertex in enumerate(corners):
        if vertex == corners[i - 1]:
            return f"point {i} repeats the point before it"
    count = len(corners)
    for i in range(count):
        # Edges i and j share a corner when adjacent, so only non-neighbours are compared.
        for j in range(i + 2, count):
            if i == 0 and j == count - 1:
                continue
            if _segments_cross(corners[i], corners[i + 1], corners[j], corners[(j + 1) % count]):
                return f"edge {i}-{i + 1} crosses edge {j}-{(j + 1) % count}"
    if ring_area_deg2(corners) < 1e-10:
        return "the polygon has no area: its points lie on one line"
    return None


def ring_centroid(ring: Sequence[Vertex]) -> Vertex:
    """Return the area centroid of a simple ring as (lat, lon)."""
    corners = open_ring(ring)
    twice_area = cx = cy = 0.0
    for i, (x1, y1) in enumerate(corners):
        x0, y0 = corners[i - 1]
        step = x0 * y1 - x1 * y0
        twice_area += step
        cx += (x0 + x1) * step
        cy += (y0 + y1) * step
    return (cx / (3 * twice_area), cy / (3 * twice_area))
