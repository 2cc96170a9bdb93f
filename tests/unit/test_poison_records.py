"""No poison pill: whatever a record holds, every consumer handles it or sets it aside with its
reason, never crashes on it, and the next good record still flows.

The stages' handlers, the route stage's unit board, the gateway's board feed and the
reconciler's reading of both topics, each fed the records of tests/poison.py. The consumers
that store into PostgreSQL are tested on the real server in
tests/integration/test_poison_records.py.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.push.board_feed import BoardFeed
from consumers.push.sessions import Hub
from consumers.reconciler.service import decisions_in, seen_alarms
from dispatch.classify import Rules
from dispatch.events import (
    ALARMS_DLQ,
    ALARMS_LOCATED,
    DISPATCH_ASSIGNMENTS,
    UNITS_RESERVATIONS,
    DeadLetter,
    IncidentStateChange,
    RawAlarm,
    SourceKind,
    UnitAvailability,
    UnitStatus,
    decode,
    encode,
)
from dispatch.settings import Settings
from dispatch.zone import Zone
from streams.batching import handle_each, open_bundles
from streams.pipeline import load_zone_and_rules
from streams.stages import Queued, Reserver
from streams.tables import ChangelogTable
from streams.units_board import UnitBoard
from tests.poison import nasty_record
from tests.unit.dispatch.test_events import example
from tests.unit.streams.test_stages import NOW, Stages, classified_of, jobs_of, of, raw_at, record

# Each example is cheap; enough of them to meet each kind of nastiness several times.
PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SITE = "ent-hengtong"


@pytest.fixture(scope="module")
def zone_and_rules() -> tuple[Zone, Rules]:
    return load_zone_and_rules(Settings())


def internal_errors(out: Queued) -> list[str]:
    """Return the reasons of dead letters that say a handler crashed (a bug, not bad input)."""
    letters = [decode(DeadLetter, value) for value in of(out, ALARMS_DLQ)]
    return [d.reason for d in letters if d.reason.startswith("internal error")]


def run_stage(handler: Any, topic: str, bad: bytes, stage: str) -> Queued:
    """Run a stage's handler on a bad record the way a worker does (bundles opened)."""
    out = Queued()
    records = open_bundles([record(topic, bad, offset=7)], out, stage=stage)
    handle_each(handler, records, out, stage=stage)
    return out


@PROPERTY
@given(bad=nasty_record("alarms.raw"))
def test_classify_survives_any_record(bad: bytes, zone_and_rules: tuple[Zone, Rules]) -> None:
    stages = Stages(*zone_and_rules)
    out = run_stage(stages.classifier.alarm, "alarms.raw", bad, "classify")
    assert internal_errors(out) == []
    good = Queued()
    stages.classifier.alarm(record("alarms.raw", encode(raw_at(SITE, "有人打架"))), good, NOW)
    assert len(of(good, ALARMS_LOCATED)) == 1


@PROPERTY
@given(bad=nasty_record("alarms.located"))
def test_merge_survives_any_record(bad: bytes, zone_and_rules: tuple[Zone, Rules]) -> None:
    stages = Stages(*zone_and_rules)
    out = run_stage(stages.merger.located, "alarms.located", bad, "merge")
    assert internal_errors(out) == []
    assert classified_of(stages, raw_at(SITE, "有人打架"))


@PROPERTY
@given(
    topic=st.sampled_from(
        ["alarms.classified", "responses.events", "commander.commands", "dispatch.ticks"]
    ),
    data=st.data(),
)
def test_route_survives_any_record_on_any_input(
    topic: str, data: st.DataObject, zone_and_rules: tuple[Zone, Rules]
) -> None:
    stages = Stages(*zone_and_rules)
    bad = data.draw(nasty_record(topic))
    handlers = {
        "alarms.classified": stages.router.classified,
        "responses.events": stages.router.response,
        "commander.commands": stages.router.command,
        "dispatch.ticks": stages.router.tick,
    }
    out = run_stage(handlers[topic], topic, bad, "route")
    assert internal_errors(out) == []
    good = Queued()
    alarm = raw_at(SITE, "有人打架")
    stages.router.classified(record("alarms.classified", classified_of(stages, alarm)), good, NOW)
    assert jobs_of(good)


@PROPERTY
@given(topic=st.sampled_from(["units.reservations", "units.status"]), data=st.data())
def test_reserve_survives_any_record_on_any_input(
    topic: str, data: st.DataObject, zone_and_rules: tuple[Zone, Rules]
) -> None:
    stages = Stages(*zone_and_rules)
    units = Reserver(
        holds={}, decisions=ChangelogTable("unit-decisions", "t-unit-decisions", partitions=4)
    )
    bad = data.draw(nasty_record(topic))
    handlers = {"units.reservations": units.reservation, "units.status": units.status}
    out = run_stage(handlers[topic], topic, bad, "reserve")
    assert internal_errors(out) == []
    # The next good job still goes to its unit.
    routed = Queued()
    alarm = raw_at(SITE, "有人打架")
    stages.router.classified(record("alarms.classified", classified_of(stages, alarm)), routed, NOW)
    passed = Queued()
    for value in of(routed, UNITS_RESERVATIONS):
        units.reservation(record("units.reservations", value), passed, NOW)
    assert of(passed, DISPATCH_ASSIGNMENTS) == jobs_of(routed)


@PROPERTY
@given(bad=nasty_record("units.status"))
def test_the_unit_board_survives_any_report(bad: bytes, zone_and_rules: tuple[Zone, Rules]) -> None:
    zone = zone_and_rules[0]
    board = UnitBoard(zone)
    letters: list[str] = []

    async def dead_letter(_: Any, why: str) -> None:
        letters.append(why)

    async def feed() -> None:
        await board._consume(kafka_record("units.status", bad), dead_letter)
        unit = zone.units[0]
        good = UnitStatus(
            event_id=uuid.uuid4(),
            unit_id=unit.id,
            status=UnitAvailability.AVAILABLE,
            position=zone.home_position(unit),
            reported_at=datetime.now(UTC),
        )
        await board._consume(kafka_record("units.status", encode(good)), dead_letter)

    applied = board.applied
    asyncio.run(feed())
    record_of = board.index.get(zone.units[0].id)
    assert record_of is not None
    assert record_of.availability is UnitAvailability.AVAILABLE
    # The bad report was applied as a valid one, or set aside with its reason.
    assert board.applied - applied + len(letters) == 2


class RecordingHub(Hub):
    """A hub that remembers what the feed handed it."""

    def __init__(self) -> None:
        super().__init__()
        self.incidents: list[IncidentStateChange] = []

    def publish_incident(self, change: IncidentStateChange) -> None:
        self.incidents.append(change)
        super().publish_incident(change)


@PROPERTY
@given(
    topic=st.sampled_from(["incidents.state", "units.status", "commander.outcomes"]),
    data=st.data(),
)
def test_the_board_feed_survives_any_record(topic: str, data: st.DataObject) -> None:
    bad = data.draw(nasty_record(topic))
    good = decode(IncidentStateChange, _good_change())

    async def feed() -> RecordingHub:
        hub = RecordingHub()
        feed = BoardFeed(
            bootstrap="127.0.0.1:1",
            incidents_topic="incidents.state",
            units_topic="units.status",
            outcomes_topic="commander.outcomes",
            hub=hub,
        )
        try:
            feed._publish(kafka_record(topic, bad))
            feed._publish(kafka_record("incidents.state", encode(good)))
        finally:
            await feed.stop()  # never started: closes its clients without the network
        return hub

    hub = asyncio.run(feed())
    assert hub.incidents[-1] == good


@PROPERTY
@given(
    raw=nasty_record("alarms.raw"),
    state=nasty_record("incidents.state"),
)
def test_the_reconciler_reads_any_record(raw: bytes, state: bytes) -> None:
    seen = seen_alarms(kafka_record("alarms.raw", raw))
    # Only a valid alarm is waited for, with its exact bytes to publish again.
    assert all(s.raw == raw for s in seen)
    for decision in decisions_in(kafka_record("incidents.state", state)):
        assert decision.how
    good = RawAlarm(
        alarm_id=uuid.uuid4(),
        received_at=datetime.now(UTC) - timedelta(seconds=1),
        source_kind=SourceKind.HOTLINE,
        source_id="hotline-1",
        text="有人打架",
    )
    assert [s.alarm for s in seen_alarms(kafka_record("alarms.raw", encode(good)))] == [good]


def kafka_record(topic: str, value: bytes) -> Any:
    """Return a consumer record as aiokafka hands one over."""
    return ConsumerRecord(topic, 0, 3, 0, 0, b"k", value, None, 1, len(value), [])


def _good_change() -> bytes:
    return json.dumps(example("incidents.state")).encode()
