"""The zone keys the reports read: the zone's time zone and each grid's urban/suburban area."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.zone import GridArea, ZoneFileError, default_zone_path, load_zone

MINI = """\
id = "mini"
name = "迷你区"
{timezone}

[[grids]]
id = "g1"
name = "第一网格"
{area}
polygon = [[31.70, 113.40], [31.70, 113.42], [31.72, 113.42], [31.72, 113.40]]
patrol_unit_ids = ["p1"]

[[units]]
id = "p1"
name = "巡逻1号车"
kind = "patrol"
capabilities = ["patrol"]
home_grid_id = "g1"
speed_kmh = 40
"""


def write(tmp_path: Path, *, timezone: str = "", area: str = "") -> Path:
    """Write the mini zone with the given extra lines and return its path."""
    path = tmp_path / "zone.toml"
    path.write_text(MINI.format(timezone=timezone, area=area), encoding="utf-8")
    return path


def test_unset_keys_mean_utc_and_the_stricter_urban_norm(tmp_path: Path) -> None:
    zone = load_zone(write(tmp_path))
    assert zone.timezone == "UTC"
    assert zone.grid("g1").area is GridArea.URBAN


def test_set_keys_are_read(tmp_path: Path) -> None:
    zone = load_zone(
        write(tmp_path, timezone='timezone = "Asia/Shanghai"', area='area = "suburban"')
    )
    assert zone.timezone == "Asia/Shanghai"
    assert zone.grid("g1").area is GridArea.SUBURBAN


def test_unknown_time_zone_is_refused_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(ZoneFileError) as caught:
        load_zone(write(tmp_path, timezone='timezone = "Asia/Suizhou"'))
    message = str(caught.value)
    assert "timezone" in message
    assert "unknown time zone 'Asia/Suizhou'" in message


def test_unknown_area_is_refused_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ZoneFileError) as caught:
        load_zone(write(tmp_path, area='area = "rural"'))
    assert "grids[0].area" in str(caught.value)


def test_demo_zone_chengdong_is_urban_xihe_suburban_in_china_time() -> None:
    zone = load_zone(default_zone_path())
    assert zone.timezone == "Asia/Shanghai"
    areas = {grid.id: grid.area for grid in zone.grids}
    assert {g for g, a in areas.items() if a is GridArea.URBAN} == {
        "cd-g01",
        "cd-g02",
        "cd-g03",
        "cd-g04",
    }
    assert {g for g, a in areas.items() if a is GridArea.SUBURBAN} == {
        "xh-g01",
        "xh-g02",
        "xh-g03",
        "xh-g04",
    }
