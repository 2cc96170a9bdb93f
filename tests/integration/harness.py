"""A running pipeline on fresh topics, with a producer and a collector of what it emits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from dispatch.events import (
    TOPICS,
    Assignment,
    DeadLetter,
    EventModel,
    IncidentStateChange,
    Position,
    RawAlarm,
    ResponseAction,
    ResponseEvent,
    SourceKind,
    UnitAvailability,
    UnitStatus,
    decode,
    encode,
    key_of,
)
from dispatch.lifecycle import LifecyclePolicy
from dispatch.settings import Settings
from infra.topics import TopicDecl, ensure_topics
from streams.pipeline import Pipeline, build_pipeline

WAIT_S = 90.0  # a hang guard, not a performance bound


@dataclass
class Seen:
    """Everything the pipeline emitted so far, in arrival order."""

    assignments: list[Assignment] = field(default_factory=list)
    states: list[IncidentStateChange] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


class Harness:
    """Drive a pipeline the way intake and devices would, and watch what it sends."""

    def __init__(self, pipeline: Pipeline, prefix: str, producer: AIOKafkaProducer) -> None:
        self.pipeline = pipeline
        self.prefix = prefix
        self.producer = producer
        self.seen = Seen()
        self.changed = asyncio.Condition()
        self.reports = 0

    async def send(self, topic: str, event: EventModel, key: bytes | None = None) -> None:
        """Produce an event (acks=all) to one of the pipeline's topics."""
        value = encode(event)
        await self.producer.send_and_wait(self.prefix + topic, value, key=key or key_of(event))

    async def send_raw(self, topic: str, value: bytes, key: bytes) -> None:
        """Produce arbitrary bytes, as a broken client would."""
        await self.producer.send_and_wait(self.prefix + topic, value, key=key)

    async def raise_alarm(self, **fields: Any) -> RawAlarm:
        """Send an alarm to alarms.raw and return it."""
        base: dict[str, Any] = {
            "alarm_id": uuid.uuid4(),
            "received_at": datetime.now(UTC),
            "source_kind": SourceKind.DESK,
            "source_id": "desk-test",
        }
        alarm = RawAlarm(**(base | fields))
        await self.send("alarms.raw", alarm)
        return alarm

    async def report(
        self,
        unit_id: str,
        position: Position | None,
        status: UnitAvailability = UnitAvailability.AVAILABLE,
    ) -> None:
        """Report a unit's status and position on units.status."""
        update = UnitStatus(
            event_id=uuid.uuid4(),
            unit_id=unit_id,
            status=status,
            position=position,
            reported_at=datetime.now(UTC),
        )
        await self.send("units.status", update)
        self.reports += 1

    async def units_known(self) -> None:
        """Wait until the route stage's board has applied every report sent so far."""
        assert self.pipeline.board is not None, "the harness runs every stage"
        await asyncio.wait_for(self.pipeline.board.wait_for_reports(self.reports), WAIT_S)

    async def respond(
        self, job: Assignment, action: ResponseAction, reason: str | None = None
    ) -> None:
        """Send a unit's response to one of its assignments."""
        event = ResponseEvent(
            event_id=uuid.uuid4(),
            assignment_id=job.assignment_id,
            incident_id=job.incident_id,
            unit_id=job.unit_id,
            action=action,
            occurred_at=datetime.now(UTC),
            reason=reason,
            actor=job.unit_id,
        )
        await self.send("responses.events", event)

    async def wait_for(self, condition: Callable[[Seen], bool]) -> Seen:
        """Wait until what was seen satisfies condition."""
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: condition(self.seen)), WAIT_S)
        return self.seen

    async def collect(self, consumer: AIOKafkaConsumer) -> None:
        """Read the output topics into `seen` until cancelled."""
        async for record in consumer:
            value = record.value or b""
            topic = record.topic.removeprefix(self.prefix)
            if topic == "dispatch.assignments":
                self.seen.assignments.append(decode(Assignment, value))
            elif topic == "incidents.state":
                self.seen.states.append(decode(IncidentStateChange, value))
            else:
                self.seen.dead_letters.append(decode(DeadLetter, value))
            async with self.changed:
                self.changed.notify_all()


def fast_lifecycle(accept_s: float) -> LifecyclePolicy:
    """Return a lifecycle policy whose accept timeout is accept_s for every priority."""
    timeouts = {p: timedelta(seconds=accept_s) for p in LifecyclePolicy().accept_timeouts}
    return LifecyclePolicy(accept_timeouts=timeouts)


@asynccontextmanager
async def running_pipeline(
    settings: Settings, *, app_id: str | None = None, prefix: str | None = None, **options: Any
) -> AsyncIterator[Harness]:
    """Start a pipeline on fresh topics (or given ones, to restart); stop it afterwards."""
    prefix = prefix or f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(
        settings.bootstrap_servers,
        [TopicDecl(prefix + name, settings.kafka_partitions) for name in TOPICS],
    )
    pipeline = build_pipeline(
        settings,
        app_id=app_id or f"test-{uuid.uuid4().hex[:10]}",
        topic_prefix=prefix,
        **options,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, acks="all", enable_idempotence=True
    )
    consumer = AIOKafkaConsumer(
        prefix + "dispatch.assignments",
        prefix + "incidents.state",
        prefix + "alarms.dlq",
        bootstrap_servers=settings.bootstrap_servers,
        group_id=f"watch-{uuid.uuid4().hex[:10]}",
        auto_offset_reset="earliest",
    )
    await producer.start()
    await consumer.start()
    harness = Harness(pipeline, prefix, producer)
    collector = asyncio.create_task(harness.collect(consumer))
    await pipeline.start()
    try:
        await asyncio.wait_for(pipeline.wait_ready(), WAIT_S)
        yield harness
    finally:
        await pipeline.stop()
        collector.cancel()
        await asyncio.gather(collector, return_exceptions=True)
        await consumer.stop()
        await producer.stop()
