"""The real services answer: Kafka with acks=all, PostgreSQL through asyncpg, a Faust agent."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.conftest import NewTopics


async def consume_n(
    bootstrap: str, topic: str, group_id: str, n: int
) -> AsyncIterator[tuple[bytes | None, bytes | None]]:
    """Yield the first n records of topic from the beginning."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group_id, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        seen = 0
        async for record in consumer:
            yield record.key, record.value
            seen += 1
            if seen == n:
                return
    finally:
        await consumer.stop()


async def test_produce_with_acks_all_and_consume_back(
    bootstrap: str, new_topics: NewTopics, group_id: str
) -> None:
    (topic,) = await new_topics("smoke", partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        sent = [(f"k{i}".encode(), f"v{i}".encode()) for i in range(10)]
        for key, value in sent:
            metadata = await producer.send_and_wait(topic, value, key=key)
            assert metadata.offset >= 0
    finally:
        await producer.stop()
    received = [kv async for kv in consume_n(bootstrap, topic, group_id, len(sent))]
    assert sorted(received) == sorted(sent)


async def test_asyncpg_round_trip(pg: asyncpg.Connection) -> None:
    await pg.execute("CREATE TABLE note (id uuid PRIMARY KEY, body text NOT NULL)")
    note_id = uuid.uuid4()
    await pg.execute("INSERT INTO note (id, body) VALUES ($1, $2)", note_id, "第一时间受理")
    row = await pg.fetchrow("SELECT id, body FROM note WHERE id = $1", note_id)
    assert row is not None
    assert (row["id"], row["body"]) == (note_id, "第一时间受理")
    server = await pg.fetchval("SHOW server_version")
    assert int(str(server).split(".")[0]) >= 15


async def test_faust_agent_consumes_and_produces(
    bootstrap: str, new_topics: NewTopics, group_id: str
) -> None:
    source_name, sink_name = await new_topics("faust-in", "faust-out")
    app = faust.App(
        f"smoke-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        topic_replication_factor=1,
        topic_partitions=1,
        consumer_auto_offset_reset="earliest",
    )
    source = app.topic(source_name, key_serializer="raw", value_serializer="raw")
    sink = app.topic(sink_name, key_serializer="raw", value_serializer="raw")

    @app.agent(source)
    async def shout(stream: faust.StreamT[bytes]) -> None:
        async for key, value in stream.items():
            await sink.send(key=key, value=value.upper())

    await app.start()
    try:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for i in range(3):
                await producer.send_and_wait(source_name, f"alarm {i}".encode(), key=b"k")
        finally:
            await producer.stop()
        received = await asyncio.wait_for(_collect(bootstrap, sink_name, group_id, 3), timeout=60)
    finally:
        await app.stop()
    assert received == [(b"k", f"ALARM {i}".encode()) for i in range(3)]


async def _collect(
    bootstrap: str, topic: str, group_id: str, n: int
) -> list[tuple[bytes | None, bytes | None]]:
    return [kv async for kv in consume_n(bootstrap, topic, group_id, n)]
