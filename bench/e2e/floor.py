"""The floor: what the path's Kafka hops and PostgreSQL commits cost at the least, measured on
the very broker and server the system runs on, in the same run.

An alarm reaches a unit over five Kafka hops (`alarms.raw`, `alarms.located`,
`alarms.classified`, `units.reservations`, `dispatch.assignments`), each a produce with
acks=all and a consume, and two PostgreSQL commits: the intake's reservation of the receipt
(before its produce) and the outbox writer's (before the push). A round trip here is one small
record produced with acks=all by an idempotent producer without linger and read back by a
consumer already waiting on the partition; a commit is one INSERT in its own transaction on one
connection.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from infra.topics import TopicDecl, ensure_topics

FLOOR_TOPIC = "bench.e2e.floor"
# alarms.raw, alarms.located, alarms.classified, units.reservations, dispatch.assignments
KAFKA_HOPS = 5
COMMITS = 2  # the intake's reservation, the outbox's rows
PAUSE_S = 0.005  # between two samples, so each is a lone record and not a batch


@dataclass(frozen=True)
class Floor:
    """Round trips and commits in milliseconds, and the path's floor from their medians."""

    kafka_ms: list[float]
    commit_ms: list[float]

    @property
    def kafka_p50_ms(self) -> float:
        """Return the median Kafka round trip."""
        return statistics.median(self.kafka_ms)

    @property
    def commit_p50_ms(self) -> float:
        """Return the median commit."""
        return statistics.median(self.commit_ms)

    @property
    def path_ms(self) -> float:
        """Return the floor of receipt → job frame: every hop's round trip and every commit."""
        return KAFKA_HOPS * self.kafka_p50_ms + COMMITS * self.commit_p50_ms

    @property
    def brief_ms(self) -> float:
        """Return the floor as issue 13 words it: the hops and one commit (the outbox)."""
        return KAFKA_HOPS * self.kafka_p50_ms + self.commit_p50_ms

    def summary(self) -> dict[str, float]:
        """Return the figures for the JSON output."""
        kafka, commit = sorted(self.kafka_ms), sorted(self.commit_ms)
        return {
            "kafka_round_trip_p50_ms": round(self.kafka_p50_ms, 2),
            "kafka_round_trip_p99_ms": round(kafka[int(0.99 * (len(kafka) - 1))], 2),
            "commit_p50_ms": round(self.commit_p50_ms, 2),
            "commit_p99_ms": round(commit[int(0.99 * (len(commit) - 1))], 2),
            "kafka_hops": KAFKA_HOPS,
            "commits": COMMITS,
            "floor_ms": round(self.path_ms, 2),
            "floor_one_commit_ms": round(self.brief_ms, 2),
        }


async def kafka_round_trips(bootstrap: str, count: int) -> list[float]:
    """Produce count records one at a time (acks=all); time each until it is consumed."""
    await ensure_topics(bootstrap, [TopicDecl(FLOOR_TOPIC, 1)])
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=0
    )
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partition = TopicPartition(FLOOR_TOPIC, 0)
    await producer.start()
    await consumer.start()
    times = []
    try:
        consumer.assign([partition])
        await consumer.seek_to_end(partition)
        for n in range(count):
            value = f"{n}:{time.time()}".encode()
            started = time.perf_counter()
            await producer.send_and_wait(FLOOR_TOPIC, value)
            while not any(
                record.value == value
                for records in (await consumer.getmany(partition, timeout_ms=1000)).values()
                for record in records
            ):
                pass
            times.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(PAUSE_S)
    finally:
        await consumer.stop()
        await producer.stop()
    return times


async def commits(postgres_url: str, count: int) -> list[float]:
    """Time count transactions of one INSERT each on one connection."""
    conn = await asyncpg.connect(postgres_url)
    times = []
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_e2e_floor "
            "(id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), note text)"
        )
        for n in range(count):
            started = time.perf_counter()
            async with conn.transaction():
                await conn.execute("INSERT INTO bench_e2e_floor (note) VALUES ($1)", str(n))
            times.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(PAUSE_S)
    finally:
        await conn.close()
    return times


async def measure_floor(bootstrap: str, postgres_url: str, count: int) -> Floor:
    """Measure the round trips and the commits (one after the other, on a quiet system)."""
    kafka = await kafka_round_trips(bootstrap, count)
    return Floor(kafka_ms=kafka, commit_ms=await commits(postgres_url, count))
