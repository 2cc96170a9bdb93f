"""Tests for the zone model: validation of entities and references, and the zone's queries."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from dispatch.events import PlaceType, Position
from dispatch.zone import Unit, UnitKind, UnknownZoneId, Zone, ZoneIntegrityError, ZoneProblem


def small_zone() -> dict[str, Any]:
    """Return a valid two-grid zone as the plain data a zone file parses to."""
    return {
        "id": "test-zone",
        "name": "测试区 Test zone",
        "teams": [{"id": "patrol-a", "name": "A队"}],
        "grids": [
            {
                "id": "g1",
                "name": "第一网格",
                "polygon": [[31.70, 113.40], [31.70, 113.42], [31.72, 113.42], [31.72, 113.40]],
                "patrol_unit_ids": ["p1"],
            },
            {
                "id": "g2",
                "name": "第二网格",
                "polygon": [[31.70, 113.42], [31.70, 113.44], [31.72, 113.44], [31.72, 113.42]],
                "patrol_unit_ids": ["p2", "p1"],
            },
        ],
        "places": [
            _place("square", "随州站广场", "station_square", 31.71, 113.41, ["火车站广场"]),
            _place("parking", "随州站广场平安停车点", "parking", 31.711, 113.411),
            _place("school", "城东小学", "school", 31.705, 113.43, ["Chengdong Primary"]),
            _place("factory", "华鑫专汽", "enterprise", 31.715, 113.43),
        ],
        "units": [
            _unit("p1", "patrol", home_grid_id="g1", team_id="patrol-a"),
            _unit("p2", "patrol", home_grid_id="g2", base={"lat": 31.71, "lon": 113.43}),
            _unit("officer", "school_officer", home_place_id="school"),
            _unit("guard", "guard", home_place_id="factory"),
            _unit("guard-2", "guard", home_place_id="factory"),
        ],
    }


def _place(
    place_id: str, name: str, kind: str, lat: float, lon: float, aliases: list[str] | None = None
) -> dict[str, Any]:
    return {
        "id": place_id,
        "name": name,
        "aliases": aliases or [],
        "type": kind,
        "position": {"lat": lat, "lon": lon},
    }


def _unit(unit_id: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": unit_id,
        "name": f"unit {unit_id}",
        "kind": kind,
        "capabilities": [kind if kind != "school_officer" else "police"],
        "speed_kmh": 40,
        **fields,
    }


@pytest.fixture
def zone() -> Zone:
    return Zone.model_validate(small_zone())


def integrity_problems(data: dict[str, Any]) -> list[str]:
    """Validate data that must fail the cross-reference checks; return the problems."""
    with pytest.raises(ValidationError) as caught:
        Zone.model_validate(data)
    cause = caught.value.errors()[0]["ctx"]["error"]
    assert isinstance(cause, ZoneIntegrityError)
    return [str(problem) for problem in cause.problems]


def test_small_zone_is_valid(zone: Zone) -> None:
    assert [grid.id for grid in zone.grids] == ["g1", "g2"]
    assert zone.unit("p1").kind is UnitKind.PATROL
    assert zone.place("square").type is PlaceType.STATION_SQUARE


def test_zone_is_frozen(zone: Zone) -> None:
    with pytest.raises(ValidationError):
        zone.id = "other"  # type: ignore[misc]  # assigning is the point of the test


def test_equal_data_gives_equal_zones(zone: Zone) -> None:
    assert Zone.model_validate(small_zone()) == zone


def test_polygon_is_stored_open() -> None:
    data = small_zone()
    ring = data["grids"][0]["polygon"]
    data["grids"][0]["polygon"] = [*ring, ring[0]]
    assert len(Zone.model_validate(data).grids[0].polygon) == 4


def test_unknown_field_is_refused() -> None:
    data = small_zone()
    data["units"][0]["colour"] = "blue"
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Zone.model_validate(data)


@pytest.mark.parametrize(
    "homes",
    [{}, {"home_grid_id": "g1", "home_place_id": "school"}],
    ids=["none", "both"],
)
def test_a_unit_has_exactly_one_home(homes: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="exactly one of home_grid_id and home_place_id"):
        Unit.model_validate(_unit("x", "fire") | homes)


@pytest.mark.parametrize("speed", [0, -5, float("inf")])
def test_speed_must_be_positive_and_finite(speed: float) -> None:
    with pytest.raises(ValidationError):
        Unit.model_validate(_unit("x", "fire", home_grid_id="g1", speed_kmh=speed))


def test_degenerate_polygon_is_refused() -> None:
    data = small_zone()
    data["grids"][0]["polygon"] = [[31.70, 113.40], [31.71, 113.41], [31.72, 113.42]]
    with pytest.raises(ValidationError, match="no area"):
        Zone.model_validate(data)


def test_one_character_name_is_refused() -> None:
    data = small_zone()
    data["places"][0]["aliases"] = ["站"]
    with pytest.raises(ValidationError, match="'站' is too short"):
        Zone.model_validate(data)


def test_duplicate_ids_are_named() -> None:
    data = small_zone()
    data["units"].append(_unit("p1", "patrol", home_grid_id="g1"))
    assert integrity_problems(data) == [
        "units[5].id: duplicate id, first used by units[0] (id 'p1')"
    ]


def test_unknown_references_name_the_entity_and_field() -> None:
    data = small_zone()
    data["units"][0]["home_grid_id"] = "g9"
    data["units"][0]["team_id"] = "nobody"
    data["grids"][1]["patrol_unit_ids"] = ["p2", "ghost"]
    data["units"][2]["home_place_id"] = "nowhere"
    assert integrity_problems(data) == [
        "grids[1].patrol_unit_ids[1]: no unit 'ghost' (id 'g2')",
        "units[0].team_id: no team 'nobody' (id 'p1')",
        "units[0].home_grid_id: no grid 'g9' (id 'p1')",
        "units[2].home_place_id: no place 'nowhere' (id 'officer')",
    ]


def test_school_officer_must_live_at_a_school() -> None:
    data = small_zone()
    data["units"][2]["home_place_id"] = "factory"
    assert integrity_problems(data) == [
        "units[2].home_place_id: place 'factory' is of type enterprise; "
        "a school_officer needs one of type school (id 'officer')"
    ]


def test_guard_must_live_at_an_enterprise() -> None:
    data = small_zone()
    data["units"][3] = _unit("guard", "guard", home_grid_id="g1")
    data["units"][4]["home_place_id"] = "school"
    problems = integrity_problems(data)
    assert problems == [
        "units[3].home_place_id: a guard unit lives at a place of type enterprise: "
        "set home_place_id (id 'guard')",
        "units[4].home_place_id: place 'school' is of type school; "
        "a guard needs one of type enterprise (id 'guard-2')",
    ]


def test_patrol_must_live_in_a_grid() -> None:
    data = small_zone()
    data["units"][1] = _unit("p2", "patrol", home_place_id="square")
    assert integrity_problems(data) == [
        "units[1].home_grid_id: a patrol unit lives in a grid: set home_grid_id (id 'p2')"
    ]


def test_grid_patrols_must_be_patrol_units_listed_once() -> None:
    data = small_zone()
    data["grids"][0]["patrol_unit_ids"] = ["guard", "p1", "p1"]
    assert integrity_problems(data) == [
        "grids[0].patrol_unit_ids[0]: unit 'guard' is a guard, not a patrol (id 'g1')",
        "grids[0].patrol_unit_ids[2]: unit 'p1' listed twice (id 'g1')",
    ]


def test_a_name_may_belong_to_one_place_only() -> None:
    data = small_zone()
    data["places"][2]["aliases"] = ["火车站 广场"]
    assert integrity_problems(data) == [
        "places[2].aliases[0]: '火车站 广场' already names place 'square'; "
        "alarm text would be ambiguous (id 'school')"
    ]


def test_zone_problem_renders_its_path() -> None:
    assert (
        str(ZoneProblem(("units", 12, "speed_kmh"), "too slow")) == "units[12].speed_kmh: too slow"
    )
    assert str(ZoneProblem((), "bad", "z")) == "bad (id 'z')"


def test_grid_at(zone: Zone) -> None:
    assert zone.grid_at(Position(lat=31.71, lon=113.41)) == zone.grid("g1")
    assert zone.grid_at(Position(lat=31.71, lon=113.43)) == zone.grid("g2")
    assert zone.grid_at(Position(lat=31.80, lon=113.41)) is None


def test_shared_edge_belongs_to_the_first_grid(zone: Zone) -> None:
    grid = zone.grid_at(Position(lat=31.71, lon=113.42))
    assert grid is not None
    assert grid.id == "g1"


def test_find_place_by_name_ignores_case_spaces_and_width(zone: Zone) -> None:
    assert zone.find_place_by_name("随州站广场") == zone.place("square")
    assert zone.find_place_by_name(" 火车站 广场 ") == zone.place("square")
    full_width = "".join(chr(ord(letter) + 0xFEE0) for letter in "CHENGDONG")
    assert zone.find_place_by_name(f"{full_width} primary") == zone.place("school")
    assert zone.find_place_by_name("随州站") is None


def test_find_place_in_text_prefers_the_longest_name(zone: Zone) -> None:
    found = zone.find_place_in_text("随州站广场平安停车点有人撬车")
    assert found == zone.place("parking")
    assert zone.find_place_in_text("随州站广场东侧有人打架") == zone.place("square")


def test_find_place_in_text_prefers_the_first_of_equal_length(zone: Zone) -> None:
    assert zone.find_place_in_text("城东小学门口,华鑫专汽的车") == zone.place("school")
    assert zone.find_place_in_text("华鑫专汽的车停在城东小学门口") == zone.place("factory")


def test_find_place_in_text_without_a_known_name(zone: Zone) -> None:
    assert zone.find_place_in_text("有人在路边吵架") is None


def test_unit_queries(zone: Zone) -> None:
    assert [u.id for u in zone.units_of_kind(UnitKind.GUARD)] == ["guard", "guard-2"]
    assert [u.id for u in zone.units_of_team("patrol-a")] == ["p1"]
    assert [u.id for u in zone.school_officers_for("school")] == ["officer"]
    assert [u.id for u in zone.guards_of("factory")] == ["guard", "guard-2"]
    assert zone.guards_of("school") == ()
    assert [u.id for u in zone.patrols_for_grid("g2")] == ["p2", "p1"]
    assert [p.id for p in zone.places_of_type(PlaceType.SCHOOL)] == ["school"]


@pytest.mark.parametrize(
    "query",
    [
        lambda z: z.place("nope"),
        lambda z: z.grid("nope"),
        lambda z: z.unit("nope"),
        lambda z: z.guards_of("nope"),
        lambda z: z.school_officers_for("nope"),
        lambda z: z.patrols_for_grid("nope"),
    ],
)
def test_unknown_ids_raise(zone: Zone, query: Any) -> None:
    with pytest.raises(UnknownZoneId, match="'nope'"):
        query(zone)


def test_home_position(zone: Zone) -> None:
    assert zone.home_position(zone.unit("p2")) == Position(lat=31.71, lon=113.43)
    assert zone.home_position(zone.unit("guard")) == zone.place("factory").position
    centre = zone.home_position(zone.unit("p1"))
    assert (centre.lat, centre.lon) == pytest.approx((31.71, 113.41))


def test_validation_does_not_change_the_input() -> None:
    data = small_zone()
    before = copy.deepcopy(data)
    Zone.model_validate(data)
    assert data == before
