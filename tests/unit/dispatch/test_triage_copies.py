"""What triage copies from a raw alarm for the people who act on it, and how."""

from __future__ import annotations

from dispatch.triage import triage
from tests.unit.dispatch.test_triage import T0, raw, shipped


def test_the_desks_gate_is_kept_next_to_the_zones_name_for_the_place() -> None:
    zone, rules = shipped()
    site = zone.place("ent-hengtong")
    alarm = raw(
        "仓库门口有人打架",
        enterprise_id=site.id,
        place_name="2号门",
        reporter_name="王丽",
        reporter_phone="+86 722 333 1234",
    )
    located = triage(zone, rules, alarm, now=T0)
    assert located.place_id == site.id
    assert located.place_name == f"{site.name} · 2号门"
    assert (located.reporter_name, located.reporter_phone) == ("王丽", "+86 722 333 1234")


def test_text_from_any_producer_travels_on_without_control_characters() -> None:
    zone, rules = shipped()
    # Intake refuses a NUL; a producer writing straight to alarms.raw need not.
    alarm = raw("有人打架\x00\x1b[2J 快来", enterprise_id="ent-hengtong")
    located = triage(zone, rules, alarm, now=T0)
    assert located.text == "有人打架\ufffd\ufffd[2J 快来"
