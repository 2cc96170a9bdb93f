"""The reconciler's and the sink's figures on `/metrics`: overdue alarms, events stored."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from consumers.kafka_producer import RecoveringProducer
from consumers.metrics import render
from consumers.reconciler.service import Reconciler, Timing
from consumers.sink.__main__ import watch_sink
from dispatch.events import TOPICS, encode, key_of
from dispatch.settings import Settings
from dispatch.triage import provisional_incident_id
from dispatch.zone import Zone
from infra.topics import TopicDecl, ensure_topics
from streams.pipeline import load_zone_and_rules
from tests.integration.scrape import sample
from tests.integration.sink_events import produce, story
from tests.integration.test_reconciler import WAIT_S, alarm
from tests.integration.test_reconciler import pool as pool
from tests.integration.test_sink import producer as producer
from tests.integration.test_sink import running_sink, until_read
from tests.integration.test_sink import topics as topics
from tests.integration.test_sink import zone as zone


async def metric(name: str, **labels: str) -> float:
    """Return one sample of this process's registry, as `/metrics` would show it."""
    return sample((await render()).decode(), name, **labels)


async def test_the_reconcilers_overdue_alarms_show_on_metrics_and_in_its_log(
    running_stack: Settings, pool: asyncpg.Pool, group_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    bootstrap = running_stack.bootstrap_servers
    await ensure_topics(bootstrap, [TopicDecl(prefix + name, 2) for name in TOPICS])
    lost = alarm("仓库有人翻墙", ago_s=100)
    kafka = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await kafka.start()
    try:
        await kafka.send_and_wait(prefix + "alarms.raw", encode(lost), key_of(lost))
    finally:
        await kafka.stop()
    reported_before = await metric("dispatch_reconciler_overdue_reported_total")
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
        assert reconciler.status.reported == 1
        assert await metric("dispatch_reconciler_overdue") == 1
        assert await metric("dispatch_reconciler_overdue_reported_total") == reported_before + 1
        # The log line about it carries its ids as fields (JSON lines: consumers/logs.py).
        (line,) = [r for r in caplog.records if getattr(r, "alarm_id", None) == str(lost.alarm_id)]
        assert vars(line)["incident_id"] == str(provisional_incident_id(lost.alarm_id))
    finally:
        await reconciler.stop()
        await sending.stop()


async def test_the_sinks_events_stored_and_delay_show_on_metrics(
    bootstrap: str,
    pool: asyncpg.Pool,
    topics: dict[str, str],
    producer: AIOKafkaProducer,
    zone: Zone,
    group_id: str,
) -> None:
    told = story(1, datetime.now(UTC) - timedelta(minutes=5))
    await produce(producer, topics, told.events)
    async with running_sink(bootstrap, pool, topics, zone, group_id) as sink:
        watch_sink(sink)
        assert await metric("dispatch_sink_events_stored_total") == 0
        await until_read(sink, len(told.events))
        assert await metric("dispatch_sink_events_stored_total") == sink.status.kafka_records
        assert sink.status.kafka_records >= len(told.events)
        # From the Kafka timestamp of the batch's oldest record to its commit.
        delay = sink.status.last_delay_s
        assert delay is not None
        assert delay > 0
        assert await metric("dispatch_sink_delay_seconds") == pytest.approx(delay)
