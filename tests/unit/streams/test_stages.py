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
    DISPATCH_TICKS,
    INCIDENTS_STATE,
    UNITS_RESERVATIONS,
    UNITS_STATUS,
    Assignment,
    CommanderAction,
    CommanderCommand,
    DeadLetter,
    IncidentStateChange,
    PlaceType,
    RawAlarm,
    Reservation,
    ResponseAction,
    ResponseEvent,
    SourceKind,
    TopicSpec,
    UnitAvailability,
    UnitStatus,
    decode,
    encode,
)
from dispatch.lifecycle import Incident, LifecyclePolicy
from dispatch.policy import policy_of
from dispatch.routing import RoutingPolicy
from dispatch.settings import Settings
from dispatch.triage import provisional_incident_id
from dispatch.zone import Zone
from streams.batching import handle_each
from streams.pipeline import load_zone_and_rules
from streams.stages import Classifier, Merger, Outbox, Queued, Router
from streams.tables import ChangelogTable
from streams.units_board import UnitBoard

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def zone_and_rules() -> tuple[Zone, Rules]:
    return load_zone_and_rules(Settings())


def record(topic: str, value: bytes, offset: int = 0, key: bytes = b"k") -> Any:
    return ConsumerRecord(topic, 0, offset, 0, 0, key, value, None, len(key), len(value), [])


def of(out: Queued, topic: TopicSpec[Any]) -> list[bytes]:
    return [value for spec, _, value in out.records if spec is topic]


def jobs_of(out: Queued) -> list[bytes]:
    """Return what route sent its units (by their single writer, `units.reservations`)."""
    reservations = [decode(Reservation, value) for value in of(out, UNITS_RESERVATIONS)]
    return [encode(r.job) for r in reservations if r.job is not None]


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
        self.alarms = ChangelogTable("incident-alarms", "t-incident-alarms", partitions=4)
        self.classifier = Classifier(zone=zone, rules=rules)
        self.merger = Merger(merges=self.merges, window=policy_of(zone).merge_window)
        self.router = Router(
            incidents=self.incidents,
            deadlines=self.deadlines,
            alarms=self.alarms,
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
    job, *backups = [decode(Assignment, v) for v in jobs_of(out)]
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
    assert jobs_of(again) == []
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


def raw_at(place_id: str, text: str, *, at: datetime = NOW) -> RawAlarm:
    """Return a hotline alarm at a zone place."""
    return RawAlarm(
        alarm_id=uuid.uuid4(),
        received_at=at,
        source_kind=SourceKind.HOTLINE,
        source_id="hotline-1",
        text=text,
        place_id=place_id,
    )


def changes_of(out: Queued) -> list[IncidentStateChange]:
    return [decode(IncidentStateChange, v) for v in of(out, INCIDENTS_STATE)]


def classified_of(stages: Stages, alarm: RawAlarm) -> bytes:
    """Return the alarms.classified record the first two stages make of an alarm."""
    out = Queued()
    stages.classifier.alarm(record("alarms.raw", encode(alarm)), out, NOW)
    (located,) = of(out, ALARMS_LOCATED)
    stages.merger.located(record("alarms.located", located), out, NOW)
    (classified,) = of(out, ALARMS_CLASSIFIED)
    return classified


def test_a_replayed_alarm_is_recognised_however_many_alarms_merged_after_it(
    zone_and_rules: tuple[Zone, Rules],
) -> None:
    stages = Stages(*zone_and_rules)
    place = zone_and_rules[0].places_of_type(PlaceType.ENTERPRISE)[0].id
    first = classified_of(stages, raw_at(place, "有人翻墙进入厂区"))
    stages.router.classified(record("alarms.classified", first), Queued(), NOW)
    # More alarms than an incident ever kept the ids of (1,000 before issue 9; 21 now).
    repeats = [classified_of(stages, raw_at(place, "有人翻墙进入厂区")) for _ in range(1_010)]
    for n, value in enumerate(repeats):
        stages.router.classified(record("alarms.classified", value, offset=n + 1), Queued(), NOW)
    # Far more alarms than an incident keeps ids of came after these two: both replays are
    # still known, and change nothing.
    replayed = Queued()
    stages.router.classified(record("alarms.classified", repeats[0], offset=99), replayed, NOW)
    stages.router.classified(record("alarms.classified", first, offset=100), replayed, NOW)
    assert replayed.records == []
    (stored,) = stages.incidents.values()
    assert Incident.model_validate_json(stored).alarm_count == 1_011


def test_an_alarm_after_its_incident_closed_opens_a_new_incident_once(
    zone_and_rules: tuple[Zone, Rules],
) -> None:
    stages = Stages(*zone_and_rules)
    place = zone_and_rules[0].places_of_type(PlaceType.ENTERPRISE)[0].id
    out = stages.through(raw_at(place, "厂区门口有人打架"))
    (closed_id,) = {c.incident_id for c in changes_of(out)}
    close = CommanderCommand(
        event_id=uuid.uuid4(),
        incident_id=closed_id,
        action=CommanderAction.CLOSE,
        actor="commander-1",
        issued_at=NOW,
    )
    stages.router.command(record("commander.commands", encode(close)), Queued(), NOW)
    # A new fight at the same gate inside the merge window: the merge step sends it to the
    # closed incident, which sends it back to open an incident of its own.
    later = raw_at(place, "厂区门口又打起来了", at=NOW + timedelta(minutes=1))
    back = Queued()
    stages.router.classified(record("alarms.classified", classified_of(stages, later)), back, NOW)
    assert changes_of(back) == []
    (located,) = of(back, ALARMS_LOCATED)
    reopened = Queued()
    stages.merger.located(record("alarms.located", located), reopened, NOW)
    (classified,) = of(reopened, ALARMS_CLASSIFIED)
    routed = Queued()
    stages.router.classified(record("alarms.classified", classified), routed, NOW)
    opened = changes_of(routed)
    assert {c.incident_id for c in opened} == {provisional_incident_id(later.alarm_id)}
    assert [c.state for c in opened][:2] == ["classified", "dispatched"]
    assert jobs_of(routed)
    # The next alarm of the storm joins the new incident: no second new one, no escalation.
    third = raw_at(place, "打架的人还没走", at=NOW + timedelta(minutes=2))
    merged = Queued()
    stages.router.classified(record("alarms.classified", classified_of(stages, third)), merged, NOW)
    assert [(c.incident_id, c.state) for c in changes_of(merged)] == [
        (provisional_incident_id(later.alarm_id), "merged")
    ]


def test_a_merged_alarm_that_reports_people_trapped_sends_what_the_incident_now_needs(
    zone_and_rules: tuple[Zone, Rules],
) -> None:
    stages = Stages(*zone_and_rules)
    place = zone_and_rules[0].places_of_type(PlaceType.ENTERPRISE)[0].id
    first = stages.through(raw_at(place, "仓库冒烟了"))
    sent = {decode(Assignment, v).unit_id for v in jobs_of(first)}
    out = Queued()
    trapped = raw_at(place, "仓库着火了,有人被困在里面")
    stages.router.classified(record("alarms.classified", classified_of(stages, trapped)), out, NOW)
    merge = changes_of(out)[0]
    assert merge.state == "merged"
    assert merge.priority == "P1"
    added = [decode(Assignment, v) for v in jobs_of(out)]
    # An ambulance now, and nobody sent twice.
    assert any(a.unit_id.startswith("med") for a in added), added
    assert not {a.unit_id for a in added if a.kind == "assignment"} & sent
    # The units already on their way are told what changed, in the caller's words.
    updates = [a for a in added if a.kind == "update"]
    assert {u.unit_id for u in updates} == sent
    assert all(u.text == trapped.text and u.priority == "P1" for u in updates)
    assert all(u.reason and "now P1" in u.reason for u in updates)
    # A replay of the alarm tells nobody again.
    again = Queued()
    replayed = record("alarms.classified", classified_of(stages, trapped))
    stages.router.classified(replayed, again, NOW)


def test_an_alarm_the_zone_cannot_place_goes_to_the_commander_with_its_caller(
    zone_and_rules: tuple[Zone, Rules],
) -> None:
    stages = Stages(*zone_and_rules)
    lost = RawAlarm(
        alarm_id=uuid.uuid4(),
        received_at=NOW,
        source_kind=SourceKind.HOTLINE,
        source_id="hotline-1",
        text="有人打架,我也不知道这是哪里",
        reporter_name="王先生",
        reporter_phone="+86 139 0000 0000",
    )
    out = Queued()
    stages.classifier.alarm(record("alarms.raw", encode(lost)), out, NOW)
    (shown,) = changes_of(out)
    assert shown.state == "escalated"
    assert shown.incident_id == provisional_incident_id(lost.alarm_id)
    assert shown.first_alarm_id == lost.alarm_id
    assert (shown.text, shown.reporter_name, shown.reporter_phone) == (
        lost.text,
        lost.reporter_name,
        lost.reporter_phone,
    )
    assert len(of(out, ALARMS_DLQ)) == 1
