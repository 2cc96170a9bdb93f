"""The dispatch policy from the zone file: defaults, the shipped values, and refusals."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from dispatch.events import Priority
from dispatch.policy import DispatchPolicy, policy_of
from dispatch.zone import ZoneFileError, default_zone_path, load_zone
from dispatch.zone.policy import PolicyTable


def test_the_shipped_zone_sets_the_policy_a_commander_signed() -> None:
    policy = policy_of(load_zone(default_zone_path()))
    assert policy.merge_window == timedelta(minutes=10)
    assert policy.routing.grid_bonus_for(Priority.P1) == 30.0
    assert policy.routing.grid_bonus_for(Priority.P3) == 120.0
    assert policy.routing.mutual_aid_radius_m == 1000.0
    assert policy.routing.school_backup_priorities == {Priority.P1, Priority.P2}
    assert not policy.routing.school_officers_off_campus
    assert policy.lifecycle.accept_timeout(Priority.P1) == timedelta(seconds=30)
    assert policy.lifecycle.mutual_aid_ack_timeout == timedelta(minutes=5)


def test_a_table_with_nothing_set_gives_the_same_defaults() -> None:
    assert DispatchPolicy.from_table(PolicyTable()) == policy_of(load_zone(default_zone_path()))


def _with_policy(tmp_path: Path, line: str) -> Path:
    text = default_zone_path().read_text(encoding="utf-8")
    start = text.index("merge_window_s = 600")
    path = tmp_path / "zone.toml"
    path.write_text(text[:start] + line + "\n" + text[start:], encoding="utf-8")
    return path


def test_a_deployment_sets_its_own_values(tmp_path: Path) -> None:
    path = _with_policy(tmp_path, "school_officers_off_campus_note = 1")
    with pytest.raises(ZoneFileError, match=r"policy\.school_officers_off_campus_note"):
        load_zone(path)
    text = (
        default_zone_path()
        .read_text(encoding="utf-8")
        .replace("merge_window_s = 600", "merge_window_s = 300")
    )
    (tmp_path / "z.toml").write_text(text, encoding="utf-8")
    assert policy_of(load_zone(tmp_path / "z.toml")).merge_window == timedelta(minutes=5)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("P1 = 30, P2 = 30, P3 = 120", "P1 = 90, P2 = 30, P3 = 120", "exceeds 60 s"),
        ("grid_bonus_s = { P1 = 30, P2 = 30, ", "grid_bonus_s = { P2 = 30, ", "value for P1"),
        (
            "{ P1 = 30, P2 = 60, P3 = 120, P4 = 300 }",
            "{ P1 = 0, P2 = 60, P3 = 120, P4 = 300 }",
            "greater than 0",
        ),
        ('mutual_aid_priorities = ["P1", "P2"]', 'mutual_aid_priorities = ["P0"]', "P1"),
    ],
)
def test_an_unsafe_policy_is_refused_on_load(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    text = default_zone_path().read_text(encoding="utf-8")
    assert text.count(old) == 1
    path = tmp_path / "zone.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(ZoneFileError, match=message) as caught:
        load_zone(path)
    assert "policy" in str(caught.value)
