"""A desk's alarm stays at its own enterprise through triage, whatever position it gives.

Intake writes the desk's enterprise into the raw alarm (`raw_alarm_of`), and the classify
stage takes it as the place when the alarm names none (dispatch/locate.py), so a position,
or a text that mentions another enterprise, does not move the incident elsewhere. Naming
another place by place_id or place_name is refused by intake (test_intake_places.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest

from consumers.auth import Principal, Role
from consumers.intake.models import AlarmRequest, raw_alarm_of
from dispatch.classify import Rules, default_rules_path, load_rules
from dispatch.triage import triage
from dispatch.zone import Zone, default_zone_path, load_zone

NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
DESK = Principal(id="desk-hengtong", role=Role.DESK, enterprise_id="ent-hengtong", name="desk")
JINGHUI = {"lat": 31.714, "lon": 113.418}  # ent-jinghui's own reference point


@cache
def shipped() -> tuple[Zone, Rules]:
    return load_zone(default_zone_path()), load_rules(default_rules_path())


@pytest.mark.parametrize(
    "fields",
    [
        {"position": JINGHUI},
        {"position": JINGHUI, "text": "晶辉光电门口有人打架"},
        {"text": "Jinghui Optoelectronics gate: two men fighting"},
        {"place_name": "2号门 / gate 2", "position": JINGHUI},
    ],
)
def test_a_desks_alarm_is_its_own_enterprises_incident(fields: dict[str, Any]) -> None:
    zone, rules = shipped()
    request = AlarmRequest.model_validate({"text": "有人打架 / a fight"} | fields)
    alarm = raw_alarm_of(DESK, request, enterprise_id=DESK.enterprise_id, now=NOW)
    located = triage(zone, rules, alarm, now=NOW)
    assert located.enterprise_id == "ent-hengtong"
    assert located.merge_key.endswith("@ent-hengtong")
    # The position given is kept: it is where the desk says the units are needed.
    if "position" in fields:
        assert (located.position.lat, located.position.lon) == (JINGHUI["lat"], JINGHUI["lon"])
