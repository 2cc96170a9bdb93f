"""Resolving an alarm's place against the demo zone, and the merge key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest

from dispatch.classify import default_rules_path, load_rules
from dispatch.events import PlaceType, Position, RawAlarm, SourceKind
from dispatch.locate import LocationUnresolved, locate, merge_key
from dispatch.triage import triage
from dispatch.zone import Zone, default_zone_path, load_zone


@cache
def demo() -> Zone:
    return load_zone(default_zone_path())


def alarm(**fields: Any) -> RawAlarm:
    base: dict[str, Any] = {
        "alarm_id": uuid.uuid4(),
        "received_at": datetime(2026, 11, 26, tzinfo=UTC),
        "source_kind": SourceKind.DESK,
        "source_id": "desk-1",
        "text": "有情况",
    }
    return RawAlarm(**(base | fields))


def test_known_place_id_gives_the_place_and_its_grid() -> None:
    where = locate(demo(), alarm(place_id="school-cd-primary"))
    assert where.place is not None
    assert where.place.id == "school-cd-primary"
    assert where.place_type is PlaceType.SCHOOL
    assert where.school_id == "school-cd-primary"
    assert where.enterprise_id is None
    assert where.grid_id is not None
    assert where.position == where.place.position


def test_device_position_beats_the_place_reference_point() -> None:
    fix = Position(lat=31.7125, lon=113.4045, accuracy_m=8)
    where = locate(demo(), alarm(place_id="school-cd-primary", position=fix))
    assert where.position == fix
    assert where.school_id == "school-cd-primary"


def test_place_name_and_alias_resolve() -> None:
    assert locate(demo(), alarm(place_name="城东实验小学")).school_id == "school-cd-primary"
    named = locate(demo(), alarm(place_name="Hengtong Auto Parts"))
    assert named.enterprise_id == "ent-hengtong"


def test_desk_identity_gives_its_enterprise() -> None:
    where = locate(demo(), alarm(enterprise_id="ent-hengtong", text="仓库有人抢劫"))
    assert where.enterprise_id == "ent-hengtong"
    assert where.place_type is PlaceType.ENTERPRISE


def test_place_mentioned_in_the_text() -> None:
    where = locate(demo(), alarm(text="恒通零部件门口有人打架"))
    assert where.enterprise_id == "ent-hengtong"


def test_unknown_place_id_falls_through_to_other_clues() -> None:
    where = locate(demo(), alarm(place_id="no-such-place", enterprise_id="ent-hengtong"))
    assert where.enterprise_id == "ent-hengtong"


def test_bare_position_gets_a_grid_and_no_place() -> None:
    where = locate(demo(), alarm(position=Position(lat=31.712, lon=113.404)))
    assert where.place is None
    assert where.place_type is PlaceType.OTHER
    assert where.grid_id is not None


def test_nothing_to_go_on_is_unresolved() -> None:
    with pytest.raises(LocationUnresolved, match="no position"):
        locate(demo(), alarm(text="help, hurry"))


def test_merge_key_by_place_and_category() -> None:
    a = locate(demo(), alarm(place_id="ent-hengtong"))
    b = locate(
        demo(), alarm(enterprise_id="ent-hengtong", position=Position(lat=31.7251, lon=113.4201))
    )
    assert merge_key("intrusion", a) == merge_key("intrusion", b)
    assert merge_key("intrusion", a) != merge_key("fire", a)


def test_merge_key_by_cell_for_bare_positions() -> None:
    near = [Position(lat=31.70000, lon=113.40000), Position(lat=31.70010, lon=113.40010)]
    far = Position(lat=31.71, lon=113.41)
    keys = {merge_key("intrusion", locate(demo(), alarm(position=p))) for p in near}
    assert len(keys) == 1
    assert merge_key("intrusion", locate(demo(), alarm(position=far))) not in keys


def test_an_enterprise_alarm_is_not_moved_to_another_enterprise_its_text_names() -> None:
    zone = load_zone(default_zone_path())
    own, other = zone.places_of_type(PlaceType.ENTERPRISE)[:2]
    # The desk's enterprise is not a place of this zone: the text names another one.
    alarm = RawAlarm(
        alarm_id=uuid.uuid4(),
        received_at=datetime.now(UTC),
        source_kind=SourceKind.DESK,
        source_id="desk-elsewhere",
        enterprise_id="ent-not-in-this-zone",
        text=f"{other.name}门口有人打架",
        position=own.position,
    )
    where = locate(zone, alarm)
    assert where.place is None or where.place.id != other.id
    assert where.enterprise_id != other.id
    # Placed by its position, it stays its own enterprise's.
    located = triage(zone, load_rules(default_rules_path()), alarm, now=datetime.now(UTC))
    assert located.enterprise_id == "ent-not-in-this-zone"
