"""The stages' handlers without a broker: records in, tables and queued records out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from dispatch.classify import Rules
from dispatch.events import (
    ALARMS_CLASSIFIED,
    ALARMS_DLQ,
    ALARMS_LOCATED,
    DISPATCH_ASSIGNMENTS,
    DISPATCH_TICKS,
    INCIDENTS_STATE,
    UNITS_STATUS,
    Assignment,
    DeadLetter,
    IncidentStateChange,
    PlaceType,
    RawAlarm,
    ResponseAction,
    ResponseEvent,
    SourceKind,
    TopicSpec,
    UnitAvailability,
    UnitStatus,
    decode,
    encode,
)
from dispatch.lifecycle import LifecyclePolicy
from dispatch.routing import RoutingPolicy
from dispatch.settings import Settings
from dispatch.zone import Zone
from streams.batching import handle_each
from streams.pipeline import load_zone_and_rules
from streams.stages import Classifier, Merger, Outbox, Queued, Router
from streams.units_board import UnitBoard

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def zone_and_rules() -> tuple[Zone, Rules]:
    return load_zone_and_rules(Settings())


def record(topic: str, value: bytes, offset: int = 0, key: bytes = b"k") -> Any:
    return ConsumerRecord(topic, 0, offset, 0, 0, key, value, None, len(key), len(value), [])


def of(out: Queued, topic: TopicSpec[Any]) -> list[bytes]:
    return [value for spec, _, value in out.records if spec is topic]


class Stages:
    """The three handlers with dict tables and every zone unit available."""

    def __init__(self, zone: Zone, rules: Rules) -> None:
        self.merges: dict[bytes, Any] = {}
        self.incidents: dict[bytes, Any] = {}
        self.deadlines: dict[bytes, Any] = {}
        self.board = UnitBoard(zone)
        for n, unit in enumerate(zone.units):
            position = zone.home_position(unit)
            status = UnitStatus(
                event_id=uuid.uuid4(),
                unit_id=unit.id,
                status=UnitAvailability.AVAILABLE,
                position=position,
                reported_at=NOW - timedelta(milliseconds=n),
            )
            assert self.board.apply(status)
        self.classifier = Classifier(zone=zone, rules=rules)
        self.merger = Merger(merges=self.merges)
        self.router = Router(
            incidents=self.incidents,
            deadlines=self.deadlines,
            board=self.board,
            routing=RoutingPolicy(),
            lifecycle=LifecyclePolicy(),
        )

    def through(self, alarm: RawAlarm) -> Queued:
        """Run one raw alarm through classify, merge and route; return everything queued."""
        out = Queued()
        self.classifier.alarm(record("alarms.raw", encode(alarm)), out, NOW)
        (located,) = of(out, ALARMS_LOCATED)
        self.merger.located(record("alarms.located", located), out, NOW)
        (classified,) = of(out, ALARMS_CLASSIFIED)
        self.router.classified(record("alarms.classified", classified), out, NOW)
        return out


def school_fight(zone: Zone) -> tuple[RawAlarm, str]:
    school = zone.places_of_type(PlaceType.SCHOOL)[0]
    (officer,) = [u.id for u in zone.units if u.home_place_id == school.id]
    alarm = RawAlarm(
        alarm_id=uuid.uuid4(),
        received_at=NOW,
        source_kind=SourceKind.HOTLINE,
        source_id="hotline-1",
        text="两个学生在门口打架",
        place_id=school.id,
    )
    return alarm, officer


def test_a_school_alarm_goes_through_all_three_handlers_to_the_school_officer(
    zone_and_rules: tuple[Zone, Rules],
) -> None:
    stages = Stages(*zone_and_rules)
    alarm, officer = school_fight(zone_and_rules[0])
    out = stages.through(alarm)
    # A fight at a school is P1: the school's officer leads and the nearest patrols (two for
    # a P1 fight) go too.
    job, *backups = [decode(Assignment, v) for v in of(out, DISPATCH_ASSIGNMENTS)]
    assert job.unit_id == officer
    assert len(backups) == 2
    assert all(b.unit_id.startswith(("cd-patrol", "xh-patrol")) for b in backups)
    changes = [decode(IncidentStateChange, v) for v in of(out, INCIDENTS_STATE)]
    assert [c.state for c in changes][:2] == ["classified", "dispatched"]
    held = [decode(UnitStatus, v) for v in of(out, UNITS_STATUS)]
    assert [(h.unit_id, h.status) for h in held] == [
        (u, UnitAvailability.ASSIGNED) for u in [officer, *(b.unit_id for b in backups)]
    ]
    assert list(stages.incidents) == [str(job.incident_id).encode()]
    assert list(stages.deadlines) == [str(job.incident_id).encode()]
    assert of(out, ALARMS_DLQ) == []


def test_a_replayed_classified_record_gives_no_second_job(
    zone_and_rules: tuple[Zone, Rules],
) -> None:
    stages = Stages(*zone_and_rules)
    alarm, _ = school_fight(zone_and_rules[0])
    first = stages.through(alarm)
    (classified,) = of(first, ALARMS_CLASSIFIED)
    again = Queued()
    stages.router.classified(record("alarms.classified", classified), again, NOW)
    assert of(again, DISPATCH_ASSIGNMENTS) == []
    assert of(again, UNITS_STATUS) == []


def test_a_response_for_an_unknown_incident_is_dead_lettered_and_a_tick_is_ignored(
    zone_and_rules: tuple[Zone, Rules],
) -> None:
    stages = Stages(*zone_and_rules)
    response = ResponseEvent(
        event_id=uuid.uuid4(),
        assignment_id=uuid.uuid4(),
        incident_id=uuid.uuid4(),
        unit_id="unit-x",
        action=ResponseAction.ACCEPT,
        occurred_at=NOW,
        actor="unit-x",
    )
    out = Queued()
    stages.router.response(record("responses.events", encode(response)), out, NOW)
    (letter,) = [decode(DeadLetter, v) for v in of(out, ALARMS_DLQ)]
    assert letter.reason == f"no incident {response.incident_id}"
    assert letter.value == encode(response)
    assert len(out.records) == 1


def test_a_passed_deadline_is_ticked_once(zone_and_rules: tuple[Zone, Rules]) -> None:
    stages = Stages(*zone_and_rules)
    alarm, _ = school_fight(zone_and_rules[0])
    stages.through(alarm)
    early = Queued()
    stages.router.due_ticks(early, NOW)
    assert early.records == []  # nothing is due yet
    later = NOW + timedelta(hours=1)
    out = Queued()
    stages.router.due_ticks(out, later)
    stages.router.due_ticks(out, later)
    assert len(of(out, DISPATCH_TICKS)) == 1


def test_a_handler_bug_costs_only_its_own_record(zone_and_rules: tuple[Zone, Rules]) -> None:
    def handler(rec: Any, out: Outbox, now: datetime) -> None:
        out.send(ALARMS_LOCATED, rec.key, rec.value)
        if rec.value == b"bad":
            raise ValueError("boom")

    records = [record("alarms.raw", v, offset=n) for n, v in enumerate([b"a", b"bad", b"c"])]
    out = Queued()
    handle_each(handler, records, out, stage="classify")
    assert of(out, ALARMS_LOCATED) == [b"a", b"c"]
    (letter,) = [decode(DeadLetter, v) for v in of(out, ALARMS_DLQ)]
    assert (letter.offset, letter.value) == (1, b"bad")
    assert letter.reason == "internal error in classify: ValueError: boom"
