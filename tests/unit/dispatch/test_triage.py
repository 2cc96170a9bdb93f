"""Triage (locate + classify) and the merge decision, on the shipped zone and rules."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest

from dispatch.classify import Rules, default_rules_path, load_rules
from dispatch.events import Priority, RawAlarm, SensorKind, SourceKind
from dispatch.locate import LocationUnresolved
from dispatch.triage import OpenMerge, merge_into, provisional_incident_id, triage
from dispatch.zone import Zone, default_zone_path, load_zone

T0 = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)


@cache
def shipped() -> tuple[Zone, Rules]:
    return load_zone(default_zone_path()), load_rules(default_rules_path())


def raw(text: str, received_at: datetime = T0, **fields: object) -> RawAlarm:
    return RawAlarm.model_validate(
        {
            "alarm_id": uuid.uuid4(),
            "received_at": received_at,
            "source_kind": SourceKind.DESK,
            "source_id": "desk-1",
            "text": text,
            **fields,
        }
    )


def test_triage_locates_classifies_and_keys_the_merge() -> None:
    zone, rules = shipped()
    alarm = raw("仓库有人持刀抢劫", enterprise_id="ent-hengtong")
    located = triage(zone, rules, alarm, now=T0)
    assert located.category == "robbery"
    assert located.priority is Priority.P1
    assert located.enterprise_id == "ent-hengtong"
    assert located.merge_key == "robbery@ent-hengtong"
    assert located.incident_id == provisional_incident_id(alarm.alarm_id)


def test_sensor_alarm_without_keywords_is_an_intrusion() -> None:
    zone, rules = shipped()
    alarm = raw(
        "报警",
        source_kind=SourceKind.SENSOR,
        sensor_kind=SensorKind.ANTI_CLIMB,
        enterprise_id="ent-hengtong",
    )
    assert triage(zone, rules, alarm, now=T0).category == "intrusion"


def test_unplaceable_alarm_raises() -> None:
    zone, rules = shipped()
    with pytest.raises(LocationUnresolved):
        triage(zone, rules, raw("help!"), now=T0)


def test_merge_decisions() -> None:
    zone, rules = shipped()
    first = triage(zone, rules, raw("有人翻墙", enterprise_id="ent-hengtong"), now=T0)
    out, opened = merge_into(first, None, window=WINDOW)
    assert opened is not None
    assert out.incident_id == first.incident_id
    assert out.merged_into is None
    # The opener replayed: same answer, nothing to store.
    again, stored = merge_into(first, opened, window=WINDOW)
    assert (again, stored) == (out, None)
    # A repeat inside the window joins the open incident.
    later = raw("又有人翻墙", T0 + timedelta(minutes=9), enterprise_id="ent-hengtong")
    repeat = triage(zone, rules, later, now=T0)
    joined, stored = merge_into(repeat, opened, window=WINDOW)
    assert (joined.incident_id, joined.merged_into, stored) == (
        first.incident_id,
        first.incident_id,
        None,
    )
    # Past the window a repeat opens an incident of its own.
    late = raw("有人翻墙", T0 + timedelta(minutes=11), enterprise_id="ent-hengtong")
    fresh = triage(zone, rules, late, now=T0)
    own, stored = merge_into(fresh, opened, window=WINDOW)
    assert own.incident_id == fresh.incident_id
    assert stored is not None
    assert stored.incident_id == fresh.incident_id


def test_a_placed_alarm_keeps_the_incident_its_escalation_showed() -> None:
    zone, rules = shipped()
    hotline: dict[str, object] = {"source_kind": SourceKind.HOTLINE, "source_id": "hotline"}
    lost = raw("有人打架,快来", T0, **hotline)
    with pytest.raises(LocationUnresolved):
        triage(zone, rules, lost, now=T0)
    # Placed by the commander: the same alarm with a position, near a fight already open.
    spot = zone.place("ent-hengtong").position
    placed = lost.model_copy(update={"position": spot, "placed_by": "commander-duty"})
    located = triage(zone, rules, placed, now=T0 + timedelta(minutes=2))
    assert (located.incident_id, located.placed_by) == (
        provisional_incident_id(lost.alarm_id),
        "commander-duty",
    )
    nearby = raw("有人打架", T0 + timedelta(minutes=1), position=spot, **hotline)
    other = triage(zone, rules, nearby, now=T0)
    assert other.merge_key == located.merge_key
    _, open_entry = merge_into(other, None, window=WINDOW)
    assert open_entry is not None
    # Not merged into the open one: its own incident, routed; the key stays the other's.
    out, stored = merge_into(located, open_entry, window=WINDOW)
    assert (out.incident_id, out.merged_into, out.placed_by, stored) == (
        located.incident_id,
        None,
        "commander-duty",
        None,
    )
    # With no other incident of the key open, later alarms of the key join the placed one.
    out, stored = merge_into(located, None, window=WINDOW)
    assert stored == OpenMerge(incident_id=located.incident_id, opened_at=lost.received_at)
    # Replayed, the same answer again.
    assert merge_into(located, stored, window=WINDOW) == (out, None)


def test_open_merge_round_trips() -> None:
    entry = OpenMerge(incident_id=uuid.uuid4(), opened_at=T0)
    assert OpenMerge.model_validate_json(entry.model_dump_json()) == entry


def test_a_sensor_alarm_without_a_kind_takes_its_registered_device_kind_and_place() -> None:
    zone, rules = shipped()
    alarm = raw("ALM ZONE 12 DET 0x3F", source_kind=SourceKind.SENSOR, source_id="smoke-qixing-w2")
    located = triage(zone, rules, alarm, now=T0)
    assert (located.category, located.priority) == ("fire", Priority.P1)
    assert located.place_id == "ent-qixing"
    assert located.needs == (("fire", 2),)


def test_an_unregistered_sensor_without_a_kind_goes_unclassified_to_the_commander() -> None:
    zone, rules = shipped()
    alarm = raw("ALM 3", source_kind=SourceKind.SENSOR, source_id="s-9", place_id="ent-qixing")
    located = triage(zone, rules, alarm, now=T0)
    assert (located.category, located.priority) == ("unclassified", Priority.P2)


def test_counted_needs_travel_with_the_alarm() -> None:
    zone, rules = shipped()
    alarm = raw("公司仓库着火了,有人被困", enterprise_id="ent-hengtong")
    located = triage(zone, rules, alarm, now=T0)
    assert located.needs == (("fire", 2), ("medical", 1))
    assert located.units_needed == 3
    assert located.required_capabilities == ("fire", "medical")
