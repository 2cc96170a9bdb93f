"""The Faust app built from settings, its topics, and dead-lettering at an agent's edge."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from dispatch.events import TOPICS, DeadLetter, RawAlarm, SourceKind, decode, encode, key_of
from dispatch.settings import Settings
from infra.topics import TopicDecl, ensure_topics
from streams.app import build_app, faust_broker_url
from streams.batching import batch_agent
from streams.stages import Outbox, decoded
from streams.topics import bind_topics
from tests.integration.test_smoke import consume_n


def test_broker_url_lists_every_bootstrap_server() -> None:
    assert faust_broker_url("a:9092, b:9093") == "kafka://a:9092;kafka://b:9093"


async def test_bad_record_goes_to_the_dead_letter_topic_and_the_agent_goes_on(
    running_stack: Settings, group_id: str
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    await ensure_topics(
        running_stack.bootstrap_servers, [TopicDecl(prefix + name, 1) for name in TOPICS]
    )
    app = build_app(running_stack, app_id=f"test-{uuid.uuid4().hex[:8]}")
    topics = bind_topics(app, prefix=prefix)
    passed: asyncio.Queue[RawAlarm] = asyncio.Queue()

    def take_valid(record: Any, out: Outbox, now: datetime) -> None:
        alarm = decoded(RawAlarm, record, out, stage="test")
        if alarm is not None:
            if alarm.text == "crash":
                raise RuntimeError("a bug in the handler")
            passed.put_nowait(alarm)

    batch_agent(
        app, topics.alarms_raw, name="take-valid", stage="test", handle=take_valid, prefix=prefix
    )

    good = RawAlarm(
        alarm_id=uuid.uuid4(),
        received_at=datetime.now(UTC),
        source_kind=SourceKind.DESK,
        source_id="desk-01",
        text="有人翻墙进入厂区",
    )
    poison = b'{"alarm_id": "not-a-uuid", "text": 42}'
    # Valid input that the handler fails on (a bug): that record alone goes to the DLQ.
    crashing = encode(good.model_copy(update={"alarm_id": uuid.uuid4(), "text": "crash"}))
    await app.start()
    try:
        producer = AIOKafkaProducer(bootstrap_servers=running_stack.bootstrap_servers, acks="all")
        await producer.start()
        try:
            raw = prefix + "alarms.raw"
            await producer.send_and_wait(raw, poison, key=b"desk-01")
            await producer.send_and_wait(raw, b"\xff\xfe not even utf-8", key=b"desk-01")
            await producer.send_and_wait(raw, crashing, key=b"desk-01")
            await producer.send_and_wait(raw, encode(good), key=key_of(good))
        finally:
            await producer.stop()
        # The good alarm, sent after three bad records, still gets through.
        assert await asyncio.wait_for(passed.get(), timeout=60) == good
        letters = [
            decode(DeadLetter, value or b"")
            async for _, value in consume_n(
                running_stack.bootstrap_servers, prefix + "alarms.dlq", group_id, 3
            )
        ]
    finally:
        await app.stop()
    assert [letter.value for letter in letters] == [
        poison,
        b"\xff\xfe not even utf-8",
        crashing,
    ]
    assert {letter.source_topic for letter in letters} == {prefix + "alarms.raw"}
    first_fields = {error.field for error in letters[0].errors}
    assert {"alarm_id", "text"} <= first_fields
    assert letters[0].stage == "test"
    assert letters[0].reason.startswith("invalid RawAlarm")
    assert letters[2].reason == "internal error in test: RuntimeError: a bug in the handler"
