"""The alarm generator: reproducible from a seed, and every body one intake accepts."""

from __future__ import annotations

import pytest

from consumers.intake.models import AlarmRequest
from dispatch.events import PlaceType
from dispatch.zone import Zone, default_zone_path, load_zone
from simulator.alarms import FROM_DEVICES, AlarmMaker


@pytest.fixture(scope="module")
def zone() -> Zone:
    return load_zone(default_zone_path())


def test_the_same_seed_makes_the_same_alarms(zone: Zone) -> None:
    def made(seed: int) -> list[object]:
        maker = AlarmMaker(zone, seed)
        return [
            (maker.desk_alarm(["ent-hengtong", "ent-qixing"]), maker.hotline_alarm())
            for _ in range(20)
        ]

    assert made(7) == made(7)
    assert made(7) != made(8)


def test_desk_alarms_stay_at_the_desks_own_enterprise(zone: Zone) -> None:
    maker = AlarmMaker(zone, 1)
    for _ in range(200):
        enterprise_id, body = maker.desk_alarm(["ent-hengtong", "ent-jinghui"])
        AlarmRequest.model_validate(body)
        assert body["place_id"] == enterprise_id
        # A caller's own name for the spot names no other place of the zone (intake: 403).
        assert zone.find_place_in_text(body["place_name"]) is None


def test_hotline_alarms_are_valid_and_away_from_enterprises(zone: Zone) -> None:
    maker = AlarmMaker(zone, 2)
    for _ in range(200):
        body = maker.hotline_alarm()
        AlarmRequest.model_validate(body)
        assert zone.place(body["place_id"]).type is not PlaceType.ENTERPRISE


def test_sensor_alarms_come_from_registered_devices(zone: Zone) -> None:
    maker = AlarmMaker(zone, 3)
    for _ in range(50):
        alarm = maker.sensor_alarm()
        device = zone.device(alarm.source_id)
        assert device is not None
        assert alarm.text == FROM_DEVICES[device.kind]
