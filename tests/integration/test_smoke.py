"""The real services answer: Kafka with acks=all, PostgreSQL through asyncpg."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
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
