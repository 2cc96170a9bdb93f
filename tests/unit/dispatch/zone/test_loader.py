"""Tests for reading zone files: the shipped demo zone, and errors that name line and field."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from dispatch.events import PlaceType, Position
from dispatch.zone import (
    DEMO_ZONE_FILE,
    UnitKind,
    Zone,
    ZoneFileError,
    default_zone_path,
    haversine_m,
    load_zone,
)

MINI = """\
schema_version = 1
id = "mini"
name = "迷你区"

[[grids]]
id = "g1"
name = "第一网格"
polygon = [[31.70, 113.40], [31.70, 113.42], [31.72, 113.42], [31.72, 113.40]]
patrol_unit_ids = ["p1"]

[[places]]
id = "school"
name = "城东小学"
type = "school"
position = { lat = 31.71, lon = 113.41 }

[[units]]
id = "p1"
name = "巡逻1号车"
kind = "patrol"
capabilities = ["patrol"]
home_grid_id = "g1"
speed_kmh = 40

[[units]]
id = "officer"
name = "驻校民警"
kind = "school_officer"
capabilities = ["police"]
home_place_id = "school"
speed_kmh = 20
"""


def write(tmp_path: Path, text: str) -> Path:
    """Write a zone file into the test's directory and return its path."""
    path = tmp_path / "zone.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path) -> ZoneFileError:
    """Load a zone file that must fail and return the error."""
    with pytest.raises(ZoneFileError) as caught:
        load_zone(path)
    assert str(caught.value).startswith(f"{path}: ")
    return caught.value


@pytest.fixture(scope="module")
def demo() -> Zone:
    return load_zone(default_zone_path())


def test_mini_zone_loads(tmp_path: Path) -> None:
    zone = load_zone(write(tmp_path, MINI))
    assert zone.school_officers_for("school")[0].id == "officer"


def test_path_may_be_a_string(tmp_path: Path) -> None:
    assert load_zone(str(write(tmp_path, MINI))).id == "mini"


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + MINI.encode("utf-8"))
    assert load_zone(path).id == "mini"


def test_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, MINI.replace("speed_kmh = 40", "speed_kmh = 40 km/h"))
    error = load_error(path)
    assert (error.line, error.column) == (23, 16)
    assert "line 23, column 16: invalid TOML" in str(error)


def test_syntax_error_at_end_of_file_names_the_last_line(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, MINI + 'extra = "unterminated'))
    assert error.line == MINI.count("\n") + 1
    assert f"line {error.line}: invalid TOML" in str(error)


def test_wrong_type_names_dotted_field_and_line(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, MINI.replace("speed_kmh = 20", 'speed_kmh = "fast"')))
    assert error.problems == (
        "line 31: units[1].speed_kmh: Input should be a valid number, unable to parse string "
        "as a number (id 'officer')",
    )
    assert error.line == 31


def test_non_positive_speed_names_the_field(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, MINI.replace("speed_kmh = 40", "speed_kmh = 0")))
    assert "units[0].speed_kmh: Input should be greater than 0 (id 'p1')" in str(error)


def test_bad_enum_names_the_field(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, MINI.replace('kind = "patrol"', 'kind = "police"')))
    assert "line 20: units[0].kind: Input should be 'patrol', 'school_officer'" in str(error)


def test_missing_field_names_the_entry_line(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, MINI.replace('kind = "school_officer"\n', "")))
    assert "line 25: units[1].kind: Field required (id 'officer')" in str(error)


def test_unknown_key_is_named(tmp_path: Path) -> None:
    text = MINI.replace("speed_kmh = 20", 'speed_kmh = 20\ncolour = "blue"')
    error = load_error(write(tmp_path, text))
    assert "line 32: units[1].colour: Extra inputs are not permitted" in str(error)


def test_unknown_top_level_key_is_named(tmp_path: Path) -> None:
    error = load_error(
        write(tmp_path, MINI.replace('name = "迷你区"', 'name = "迷你区"\nowner = 1'))
    )
    assert "line 4: owner: Extra inputs are not permitted" in str(error)


def test_swapped_coordinates_name_the_point(tmp_path: Path) -> None:
    text = MINI.replace("[[31.70, 113.40],", "[[113.40, 31.70],")
    error = load_error(write(tmp_path, text))
    assert "line 8: grids[0].polygon[0][0]: Input should be less than or equal to 90" in str(error)


def test_nested_field_names_the_full_path(tmp_path: Path) -> None:
    text = MINI.replace("lat = 31.71, lon = 113.41", "lat = 31.71, lon = 213.41")
    error = load_error(write(tmp_path, text))
    assert "line 15: places[0].position.lon: Input should be less than or equal to 180" in str(
        error
    )


def test_unknown_reference_names_id_and_field(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, MINI.replace('home_grid_id = "g1"', 'home_grid_id = "g9"')))
    assert error.problems == ("line 22: units[0].home_grid_id: no grid 'g9' (id 'p1')",)


def test_wrong_home_kind_names_id_and_field(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, MINI.replace('type = "school"', 'type = "enterprise"')))
    assert "units[1].home_place_id: place 'school' is of type enterprise" in str(error)
    assert "(id 'officer')" in str(error)


def test_duplicate_id_is_named(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, MINI.replace('id = "officer"', 'id = "p1"')))
    assert error.problems == (
        "line 26: units[1].id: duplicate id, first used by units[0] (id 'p1')",
    )


def test_every_problem_is_listed(tmp_path: Path) -> None:
    text = MINI.replace("speed_kmh = 40", "speed_kmh = -1").replace(
        "speed_kmh = 20", "speed_kmh = 0"
    )
    error = load_error(write(tmp_path, text))
    assert str(error).startswith(f"{error.path}: 2 problems:\n  line 23: units[0].speed_kmh")
    assert [problem.split(":")[1].strip() for problem in error.problems] == [
        "units[0].speed_kmh",
        "units[1].speed_kmh",
    ]


def test_inline_arrays_still_name_the_field(tmp_path: Path) -> None:
    text = """\
id = "inline"
name = "inline"
grids = [{ id = "g1", name = "g", polygon = [[0, 0], [0, 1], [1, 1]], patrol_unit_ids = ["p"] }]
units = [{id="p", name="p", kind="patrol", capabilities=["patrol"], home_grid_id="g1", speed_kmh=0}]
"""
    error = load_error(write(tmp_path, text))
    # Entries without [[units]] headers cannot be told apart by line, so only the field is named.
    assert error.problems == ("units[0].speed_kmh: Input should be greater than 0 (id 'p')",)


def test_empty_collections_are_named(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, 'id = "x"\nname = "x"\ngrids = []\nunits = []\n'))
    assert error.problems == (
        "line 3: grids: give at least one",
        "line 4: units: give at least one",
    )


def test_missing_file_is_named(tmp_path: Path) -> None:
    error = load_error(tmp_path / "missing.toml")
    assert "cannot read the zone file" in str(error)


def test_non_utf8_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "gbk.toml"
    path.write_bytes(MINI.replace('name = "迷你区"', "").encode("utf-8") + "# 注释\n".encode("gbk"))
    error = load_error(path)
    assert error.line == MINI.count("\n") + 1
    assert "not UTF-8" in str(error)


def test_default_zone_path_is_the_shipped_file() -> None:
    path = default_zone_path()
    assert path.name == DEMO_ZONE_FILE
    assert path.is_file()


def test_demo_zone_has_two_patrol_teams_over_both_districts(demo: Zone) -> None:
    patrols = demo.units_of_kind(UnitKind.PATROL)
    teams = Counter(unit.team_id for unit in patrols)
    assert set(teams) == {"patrol-chengdong", "patrol-xihe"}
    assert all(count >= 3 for count in teams.values())
    districts = {grid.district for grid in demo.grids}
    assert districts == {"城东新区 Chengdong New District", "淅河镇 Xihe Town"}
    assert 6 <= len(demo.grids) <= 10
    for grid in demo.grids:
        team = "patrol-xihe" if "淅河" in str(grid.district) else "patrol-chengdong"
        assert {unit.team_id for unit in demo.patrols_for_grid(grid.id)} == {team}


def test_demo_zone_has_one_officer_per_school(demo: Zone) -> None:
    schools = demo.places_of_type(PlaceType.SCHOOL)
    assert len(schools) >= 4
    for school in schools:
        assert len(demo.school_officers_for(school.id)) == 1


def test_demo_zone_has_dozens_of_enterprises_each_guarded(demo: Zone) -> None:
    enterprises = demo.places_of_type(PlaceType.ENTERPRISE)
    assert len(enterprises) >= 25
    for enterprise in enterprises:
        assert demo.guards_of(enterprise.id), enterprise.id
    assert len(demo.units_of_kind(UnitKind.GUARD)) >= len(enterprises)


def test_demo_zone_has_fire_medical_and_the_mediation_room(demo: Zone) -> None:
    assert len(demo.units_of_kind(UnitKind.FIRE)) == 2
    assert all("fire" in unit.capabilities for unit in demo.units_of_kind(UnitKind.FIRE))
    assert demo.units_of_kind(UnitKind.MEDICAL)
    (mediator,) = demo.units_of_kind(UnitKind.MEDIATOR)
    assert mediator.home_place_id is not None
    assert demo.place(mediator.home_place_id).name == "心连心义务调解室"
    assert "mediation" in mediator.capabilities


def test_demo_zone_has_the_key_places(demo: Zone) -> None:
    roads = demo.places_of_type(PlaceType.ROAD)
    assert len(roads) >= 2
    assert all("316" in road.name for road in roads)
    assert demo.places_of_type(PlaceType.PARK)
    assert demo.places_of_type(PlaceType.PARKING)
    (square,) = demo.places_of_type(PlaceType.STATION_SQUARE)
    assert square.name == "随州站广场"


def test_demo_speeds_follow_the_unit_kind(demo: Zone) -> None:
    speeds = {kind: {unit.speed_kmh for unit in demo.units_of_kind(kind)} for kind in UnitKind}
    assert speeds[UnitKind.GUARD] == {12}
    assert speeds[UnitKind.FIRE] == {45}
    assert speeds[UnitKind.MEDICAL] == {50}
    assert 40 in speeds[UnitKind.PATROL]


def test_demo_places_and_units_lie_in_grids_near_suizhou(demo: Zone) -> None:
    suizhou = Position(lat=31.69, lon=113.38)
    for place in demo.places:
        assert demo.grid_at(place.position) is not None, place.id
        assert haversine_m(suizhou, place.position) < 20_000, place.id
    for unit in demo.units:
        assert demo.grid_at(demo.home_position(unit)) is not None, unit.id


def test_demo_grid_at_known_places(demo: Zone) -> None:
    station = demo.find_place_by_name("随州站广场")
    assert station is not None
    assert demo.grid_at(station.position) == demo.grid("cd-g01")
    mediation = demo.find_place_by_name("心连心义务调解室")
    assert mediation is not None
    grid = demo.grid_at(mediation.position)
    assert grid is not None
    assert grid.district == "淅河镇 Xihe Town"


@pytest.mark.parametrize(
    ("text", "place_id"),
    [
        ("报警:随州站广场有人抢手机,嫌疑人往东跑了", "station-square"),
        ("随州站广场平安停车点有人撬电动车锁", "parking-station"),
        ("316国道淅河镇区段发生两车相撞,有人受伤", "g316-xh-town"),
        ("淅河镇中心小学门口有可疑人员徘徊", "school-xh-primary"),
        ("华鑫专汽厂区仓库冒烟", "ent-huaxin"),
        ("邻里纠纷,请心连心调解室派人", "mediation-room"),
        ("Fight outside the CHENGDONG PARK gate", "park-chengdong"),
    ],
)
def test_demo_place_found_in_alarm_text(demo: Zone, text: str, place_id: str) -> None:
    place = demo.find_place_in_text(text)
    assert place is not None
    assert place.id == place_id


def test_loading_twice_gives_equal_zones(demo: Zone) -> None:
    assert load_zone(default_zone_path()) == demo


DEVICE = """
[[devices]]
id = "smoke-1"
kind = "smoke"
place_id = "{place}"
"""


def test_a_registered_device_is_found_by_its_id(tmp_path: Path) -> None:
    zone = load_zone(write(tmp_path, MINI))
    place = zone.places[0].id
    zone = load_zone(write(tmp_path, MINI + DEVICE.format(place=place)))
    device = zone.device("smoke-1")
    assert device is not None
    assert (device.kind, device.place_id) == ("smoke", place)
    assert zone.device("absent") is None


def test_a_device_at_an_unknown_place_is_refused(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, MINI + DEVICE.format(place="nowhere")))
    assert "devices[0].place_id: no place 'nowhere'" in str(error)
