"""Tests for the zone's geometry: haversine distances, point in polygon, polygon checks."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.events import Position
from dispatch.zone.geo import (
    EARTH_RADIUS_M,
    Vertex,
    haversine_m,
    open_ring,
    point_in_polygon,
    ring_area_deg2,
    ring_centroid,
    ring_problem,
)

SQUARE: list[Vertex] = [(0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0)]
# An L shape: the notch at lat 0.5..1, lon 0.5..1 is outside.
L_SHAPE: list[Vertex] = [(0.0, 0.0), (0.0, 1.0), (0.5, 1.0), (0.5, 0.5), (1.0, 0.5), (1.0, 0.0)]


def at(lat: float, lon: float) -> Position:
    """Build a position from degrees."""
    return Position(lat=lat, lon=lon)


def test_haversine_of_a_point_to_itself_is_zero() -> None:
    assert haversine_m(at(31.69, 113.38), at(31.69, 113.38)) == 0.0


def test_haversine_one_degree_of_latitude() -> None:
    assert haversine_m(at(0, 0), at(1, 0)) == pytest.approx(math.pi * EARTH_RADIUS_M / 180)
    assert haversine_m(at(0, 0), at(1, 0)) == pytest.approx(111_195, abs=1)


def test_haversine_equator_to_pole_is_a_quarter_meridian() -> None:
    assert haversine_m(at(0, 45), at(90, 45)) == pytest.approx(math.pi * EARTH_RADIUS_M / 2)


def test_haversine_antipodes_is_half_the_circumference() -> None:
    assert haversine_m(at(0, 0), at(0, 180)) == pytest.approx(math.pi * EARTH_RADIUS_M)
    assert haversine_m(at(31.69, 113.38), at(-31.69, -66.62)) == pytest.approx(
        math.pi * EARTH_RADIUS_M
    )


def test_haversine_paris_to_london() -> None:
    # The textbook figure for the spherical great-circle distance is 343.5 km.
    assert haversine_m(at(48.8566, 2.3522), at(51.5074, -0.1278)) == pytest.approx(343_500, abs=500)


def test_haversine_suizhou_to_xihe_is_about_ten_kilometres() -> None:
    assert haversine_m(at(31.69, 113.38), at(31.74, 113.47)) == pytest.approx(10_170, abs=50)


@given(st.floats(-90, 90), st.floats(-180, 180), st.floats(-90, 90), st.floats(-180, 180))
def test_haversine_is_symmetric_and_bounded(
    lat1: float, lon1: float, lat2: float, lon2: float
) -> None:
    there = haversine_m(at(lat1, lon1), at(lat2, lon2))
    back = haversine_m(at(lat2, lon2), at(lat1, lon1))
    assert there == pytest.approx(back, abs=1e-6)
    assert 0 <= there <= math.pi * EARTH_RADIUS_M + 1e-6


@pytest.mark.parametrize(
    ("lat", "lon", "inside"),
    [
        (0.5, 0.5, True),
        (1.5, 0.5, False),
        (-0.1, 0.5, False),
        (0.5, 1.0000001, False),
        (0.0, 0.5, True),  # on an edge
        (0.5, 1.0, True),  # on the edge the ray runs towards
        (1.0, 1.0, True),  # on a corner
        (0.0, 0.0, True),  # on the first corner
        (1.0, 2.0, False),  # level with the top edge, beyond it
        (0.0, -1.0, False),  # level with the bottom edge, before it
    ],
)
def test_point_in_square(lat: float, lon: float, inside: bool) -> None:
    assert point_in_polygon(at(lat, lon), SQUARE) is inside


def test_closed_and_open_rings_agree() -> None:
    closed = [*SQUARE, SQUARE[0]]
    for lat, lon in [(0.5, 0.5), (1.5, 0.5), (0.0, 0.5), (0.9, 0.1)]:
        assert point_in_polygon(at(lat, lon), closed) == point_in_polygon(at(lat, lon), SQUARE)


@pytest.mark.parametrize(
    ("lat", "lon", "inside"),
    [
        (0.25, 0.75, True),
        (0.75, 0.25, True),
        (0.75, 0.75, False),  # in the notch
        (0.5, 0.75, True),  # on the notch's edge
        (0.5, 0.25, True),  # level with the reflex corner: the ray passes a vertex
        (0.5, -0.5, False),  # level with two corners, outside to the left
    ],
)
def test_point_in_concave_polygon(lat: float, lon: float, inside: bool) -> None:
    assert point_in_polygon(at(lat, lon), L_SHAPE) is inside


def test_point_level_with_a_spike_vertex_is_counted_once() -> None:
    diamond: list[Vertex] = [(0.0, 1.0), (1.0, 2.0), (2.0, 1.0), (1.0, 0.0)]
    assert point_in_polygon(at(1.0, 1.0), diamond)
    assert not point_in_polygon(at(1.0, -0.5), diamond)
    assert not point_in_polygon(at(1.0, 2.5), diamond)


@given(st.floats(0.001, 0.999), st.floats(0.001, 0.999))
def test_every_interior_point_of_the_square_is_inside(lat: float, lon: float) -> None:
    assert point_in_polygon(at(lat, lon), SQUARE)


@given(st.floats(1.001, 89), st.floats(-179, 179))
def test_points_north_of_the_square_are_outside(lat: float, lon: float) -> None:
    assert not point_in_polygon(at(lat, lon), SQUARE)


def test_open_ring_drops_only_a_repeated_first_point() -> None:
    assert open_ring([*SQUARE, SQUARE[0]]) == tuple(SQUARE)
    assert open_ring(SQUARE) == tuple(SQUARE)


def test_area_and_centroid_of_a_square() -> None:
    assert ring_area_deg2(SQUARE) == pytest.approx(1.0)
    assert ring_area_deg2(list(reversed(SQUARE))) == pytest.approx(1.0)
    assert ring_centroid(SQUARE) == pytest.approx((0.5, 0.5))
    assert ring_centroid([*SQUARE, SQUARE[0]]) == pytest.approx((0.5, 0.5))


def test_valid_rings_have_no_problem() -> None:
    assert ring_problem(SQUARE) is None
    assert ring_problem([*SQUARE, SQUARE[0]]) is None
    assert ring_problem(L_SHAPE) is None
    assert ring_problem([(0.0, 0.0), (0.0, 1.0), (1.0, 0.0)]) is None


@pytest.mark.parametrize(
    ("ring", "problem"),
    [
        ([(0.0, 0.0), (0.0, 1.0)], "at least 3 distinct"),
        ([(0.0, 0.0), (0.0, 1.0), (0.0, 0.0)], "at least 3 distinct"),
        ([(0.0, 0.0), (0.0, 1.0), (0.0, 1.0), (1.0, 1.0)], "repeats"),
        ([(0.0, 0.0), (0.0, 1.0), (0.0, 2.0)], "no area"),
        ([(0.0, 0.0), (1.0, 1.0), (0.0, 1.0), (1.0, 0.0)], "crosses"),
        ([(0.0, 0.0), (0.0, 2.0), (1.0, 1.0), (0.0, 1.0), (-1.0, 1.0)], "crosses"),
    ],
    ids=["two points", "closed two points", "repeat", "collinear", "bow tie", "touching"],
)
def test_bad_rings_are_named(ring: list[Vertex], problem: str) -> None:
    found = ring_problem(ring)
    assert found is not None
    assert problem in found
