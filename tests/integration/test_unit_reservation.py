"""Two route workers, more incidents than units: every unit goes to one incident at a time.

Route workers own incidents, not units; each decides from its own board of the units, which
hears of the other worker's choices only when their `assigned` reports come round. Alarms
written in one burst reach both workers at once, so both choose from the same free units. The
reserve stage (the units' single writer) must let each unit go to one incident only, refuse
the other's job before it reaches the unit, and the refused incident must be routed again at
once: to another free unit, or to the commander when none is left.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from dispatch.events import (
    AssignmentKind,
    IncidentState,
    PlaceType,
    Position,
    ResponseAction,
    ResponseEvent,
    decode,
)
from dispatch.settings import Settings
from dispatch.zone import UnitKind
from streams.pipeline import build_pipeline, stage_group_id
from tests.integration.harness import WAIT_S, running_pipeline

UNITS = 3
INCIDENTS = 12


async def settled(settings: Settings, groups: Iterable[str], topics: list[str]) -> None:
    """Wait until every group has committed every record of its topics (nothing in hand)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    probe = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    await probe.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(settings.kafka_partitions)]
        while True:
            ends = await probe.end_offsets(tps)
            behind = 0
            for group in groups:
                committed = await admin.list_consumer_group_offsets(group)
                behind += sum(
                    end - committed[tp].offset if tp in committed else end
                    for tp, end in ends.items()
                    if tp.topic in topics and end and _reads(group, tp.topic)
                )
            if behind == 0:
                return
            await asyncio.sleep(0.2)  # polling the broker's offsets: no event to await
    finally:
        await probe.stop()
        await admin.close()


def _reads(group: str, topic: str) -> bool:
    # Which group reads which topic: route takes incidents' inputs, reserve the units'.
    reserve_topics = ("units.reservations", "units.status")
    return group.endswith("-reserve") == topic.endswith(reserve_topics)


async def read_all(settings: Settings, topic: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.kafka_partitions)]
        ends = await consumer.end_offsets(tps)
        values: list[bytes] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            batch = await consumer.getmany(timeout_ms=500)
            values.extend(r.value or b"" for records in batch.values() for r in records)
        return values
    finally:
        await consumer.stop()


async def test_two_route_workers_never_give_one_unit_two_jobs(running_stack: Settings) -> None:
    app_id = f"test-{uuid.uuid4().hex[:10]}"
    async with running_pipeline(running_stack, app_id=app_id, instance="a") as h:
        second = build_pipeline(
            running_stack, stages=("route",), app_id=app_id, topic_prefix=h.prefix, instance="b"
        )
        await second.start()
        try:
            await asyncio.wait_for(second.wait_ready(), WAIT_S)
            zone = h.pipeline.zone
            places = [p for p in zone.places if p.type is not PlaceType.ENTERPRISE][:INCIDENTS]
            assert len(places) == INCIDENTS
            patrols = zone.units_of_kind(UnitKind.PATROL)[:UNITS]
            # Only these units are on duty (a unit is off duty until it reports in).
            for patrol in patrols:
                home = zone.home_position(patrol)
                await h.report(patrol.id, Position(lat=home.lat, lon=home.lon))
            await h.units_known()
            assert second.board is not None
            await asyncio.wait_for(second.board.wait_for_reports(UNITS), WAIT_S)
            # Both workers own some incidents' partitions, so the burst reaches both at once.
            owned = [
                {tp.partition for tp in w.progress.owned}
                for p in (h.pipeline, second)
                for w in p.workers
                if w.name == "route"
            ]
            assert all(owned)
            assert not set.intersection(*owned)
            for place in places:
                await h.raise_alarm(text="门口有人打架斗殴", place_id=place.id)

            def decided(seen: object) -> bool:
                escalated = {
                    c.incident_id for c in h.seen.states if c.state is IncidentState.ESCALATED
                }
                sent = {a.incident_id for a in h.seen.assignments}
                opened = {
                    c.incident_id for c in h.seen.states if c.state is IncidentState.CLASSIFIED
                }
                return len(opened) == INCIDENTS and opened <= escalated | sent

            await h.wait_for(decided)
            groups = [stage_group_id(s, base=app_id) for s in ("route", "reserve")]
            topics = [
                h.prefix + t
                for t in (
                    "alarms.classified",
                    "responses.events",
                    "commander.commands",
                    "units.reservations",
                    "units.status",
                )
            ]
            await asyncio.wait_for(settled(running_stack, groups, topics), WAIT_S)
        finally:
            await second.stop()

    jobs = [a for a in h.seen.assignments if a.kind is AssignmentKind.ASSIGNMENT]
    # No unit answers or reports free again: each holds its first job, and gets no other.
    per_unit = Counter(a.unit_id for a in jobs)
    assert set(per_unit) <= {p.id for p in patrols}
    assert all(count == 1 for count in per_unit.values()), per_unit
    # Every incident was sent a unit or put before the commander; none waits silently.
    opened = {c.incident_id for c in h.seen.states if c.state is IncidentState.CLASSIFIED}
    escalated = {c.incident_id for c in h.seen.states if c.state is IncidentState.ESCALATED}
    assert opened <= escalated | {a.incident_id for a in jobs}
    # What the reserve stage refused never reached a unit, and was routed again.
    responses = await read_all(running_stack, h.prefix + "responses.events")
    taken = [
        r for r in (decode(ResponseEvent, v) for v in responses) if r.action is ResponseAction.TAKEN
    ]
    delivered = {a.assignment_id for a in h.seen.assignments}
    assert not {t.assignment_id for t in taken} & delivered
    refused_incidents = {t.incident_id for t in taken}
    assert refused_incidents <= escalated | {a.incident_id for a in jobs}
    print(f"jobs {len(jobs)}, refused {len(taken)}, escalated {len(escalated)}")
