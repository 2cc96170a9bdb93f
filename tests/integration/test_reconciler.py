"""The reconciler on the real broker and database: an alarm nobody decided is caught."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from consumers.kafka_producer import RecoveringProducer
from consumers.reconciler.service import Reconciler, Timing
from dispatch.events import (
    TOPICS,
    Category,
    IncidentState,
    IncidentStateChange,
    IncidentTiming,
    Priority,
    RawAlarm,
    SourceKind,
    decode,
    encode,
    key_of,
)
from dispatch.settings import Settings
from dispatch.triage import provisional_incident_id
from infra.topics import TopicDecl, ensure_topics
from streams.pipeline import load_zone_and_rules
from tests.integration.principals import fresh_store

WAIT_S = 60.0  # a hang guard, not a performance bound


def alarm(text: str, *, ago_s: float) -> RawAlarm:
    """Return a hotline alarm received ago_s seconds ago at a zone enterprise."""
    return RawAlarm(
        alarm_id=uuid.uuid4(),
        received_at=datetime.now(UTC) - timedelta(seconds=ago_s),
        source_kind=SourceKind.HOTLINE,
        source_id="hotline-1",
        text=text,
        enterprise_id="ent-hengtong",
    )


def decided(raw: RawAlarm, *, merged: tuple[uuid.UUID, ...] = ()) -> IncidentStateChange:
    """Return the pipeline's first change of the incident a raw alarm opened."""
    return IncidentStateChange(
        event_id=uuid.uuid4(),
        incident_id=provisional_incident_id(raw.alarm_id),
        state=IncidentState.CLASSIFIED if not merged else IncidentState.MERGED,
        actor="system",
        at=datetime.now(UTC),
        priority=Priority.P2,
        category=Category.FIGHT,
        timing=IncidentTiming(received_at=raw.received_at),
        first_alarm_id=raw.alarm_id,
        merged_alarm_ids=merged,
    )


@pytest.fixture
async def pool(postgres_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh, migrated schema."""
    async with fresh_store(postgres_url) as store:
        yield store


async def test_an_alarm_without_a_decision_is_published_again_and_shown_once(
    running_stack: Settings, pool: asyncpg.Pool, group_id: str
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    bootstrap = running_stack.bootstrap_servers
    await ensure_topics(bootstrap, [TopicDecl(prefix + name, 2) for name in TOPICS])
    opened = alarm("厂区门口有人打架", ago_s=120)
    merged = alarm("厂区门口又有人打架", ago_s=110)
    lost = alarm("仓库有人翻墙", ago_s=100)
    fresh = alarm("有人偷电动车", ago_s=0)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        # The decisions are written before the alarms: the ledger meets them in either order.
        for change in (decided(opened), decided(opened, merged=(merged.alarm_id,))):
            await producer.send_and_wait(prefix + "incidents.state", encode(change), key_of(change))
        for raw in (opened, merged, lost, fresh):
            await producer.send_and_wait(prefix + "alarms.raw", encode(raw), key_of(raw))
    finally:
        await producer.stop()
    zone, rules = load_zone_and_rules(running_stack)
    sending = RecoveringProducer(bootstrap)
    await sending.start()
    reconciler = Reconciler(
        bootstrap=bootstrap,
        pool=pool,
        producer=sending,
        zone=zone,
        rules=rules,
        prefix=prefix,
        group_id=group_id,
        timing=Timing(bound_s=30.0, every_s=0.2, report_every_s=3600.0),
    )
    await reconciler.start()
    try:
        await asyncio.wait_for(reconciler.wait_for_looks(1), WAIT_S)
        assert reconciler.status.republished == 1
        # Looking again soon after reminds nobody: the alarm was reported once.
        await asyncio.wait_for(reconciler.wait_for_looks(reconciler.status.looks + 3), WAIT_S)
        assert reconciler.status.reported == 1
        assert reconciler.status.counts == {"seen": 4, "decided": 2, "overdue": 1, "republished": 1}
    finally:
        await reconciler.stop()
        await sending.stop()
    raws = await _read(bootstrap, prefix + "alarms.raw", 5)
    assert [decode(RawAlarm, v).alarm_id for v in raws].count(lost.alarm_id) == 2
    state = await _read(bootstrap, prefix + "incidents.state", 3)
    changes = [decode(IncidentStateChange, v) for v in state]
    (shown,) = [c for c in changes if c.actor == "reconciler"]
    assert shown.state is IncidentState.ESCALATED
    assert shown.incident_id == provisional_incident_id(lost.alarm_id)
    assert shown.first_alarm_id == lost.alarm_id
    assert shown.reason is not None
    assert shown.reason.startswith("overdue")
    # Urgent by now, whatever its text: P2 at the least.
    assert shown.priority <= Priority.P2


async def _read(bootstrap: str, topic: str, n: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        values: list[bytes] = []
        async with asyncio.timeout(WAIT_S):
            async for record in consumer:
                values.append(record.value or b"")
                if len(values) == n:
                    return values
    finally:
        await consumer.stop()
    return values
