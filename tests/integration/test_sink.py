"""The sink on the real broker and database: every event lands once, a replay adds nothing,
and a record that cannot be stored is set aside without stopping the rest."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from consumers.db.pool import connection
from consumers.sink.reading import catalog_topics
from consumers.sink.service import Sink
from dispatch.events import (
    ALARMS_CLASSIFIED,
    ALARMS_RAW,
    TOPICS,
    DeadLetter,
    RawAlarm,
    encode,
)
from dispatch.zone import Zone, default_zone_path, load_zone
from infra.topics import TopicDecl, ensure_topics
from tests.integration.principals import fresh_store
from tests.integration.sink_events import GRID, Story, produce, produce_bundles, story

WAIT_S = 120.0  # a hang guard, not a performance bound
TABLES = (
    "record_alarms", "record_incidents", "record_events", "record_units",
    "record_unit_positions", "record_dead_letters",
)  # fmt: skip


@pytest.fixture(scope="module")
def zone() -> Zone:
    """Return the shipped demo zone."""
    return load_zone(default_zone_path())


@pytest.fixture
async def topics(bootstrap: str) -> dict[str, str]:
    """Create the sink's topics under a fresh prefix, two partitions each; return catalog
    name -> the test's name."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    names = {name: prefix + name for name in catalog_topics()}
    await ensure_topics(bootstrap, [TopicDecl(name, 2) for name in names.values()])
    return names


@pytest.fixture
async def pool(postgres_url: str) -> AsyncIterator[asyncpg.Pool]:
    """Yield a pool on a fresh, migrated schema."""
    async with fresh_store(postgres_url) as store:
        yield store


@pytest.fixture
async def producer(bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    """Yield a producer that writes as the stages do (acks=all, idempotent)."""
    kafka = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await kafka.start()
    try:
        yield kafka
    finally:
        await kafka.stop()


@asynccontextmanager
async def running_sink(
    bootstrap: str,
    pool: asyncpg.Pool,
    topics: Mapping[str, str],
    zone: Zone,
    group_id: str,
    **options: Any,
) -> AsyncIterator[Sink]:
    """Run a sink on the test's topics until the block ends."""
    specs = {name: TOPICS[catalog] for catalog, name in topics.items()}
    sink = Sink(
        bootstrap=bootstrap, pool=pool, zone=zone, topics=specs, group_id=group_id, **options
    )
    await sink.start()
    try:
        yield sink
    finally:
        await sink.stop()


async def until_read(sink: Sink, kafka_records: int) -> None:
    """Wait until the sink has written and committed at least this many Kafka records."""
    while sink.status.kafka_records < kafka_records:
        await _next_commit(sink)


async def _next_commit(sink: Sink) -> None:
    await asyncio.wait_for(sink.wait_commits(sink.status.batches + 1), WAIT_S)


async def counts(pool: asyncpg.Pool) -> dict[str, int]:
    """Return how many rows each record table holds."""
    async with connection(pool) as conn:
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}  # noqa: S608


def expected(stories: list[Story]) -> dict[str, int]:
    """Return the rows the stories make in each table (each unit's fixes are all kept)."""
    return {
        "record_alarms": len(stories),
        "record_incidents": len(stories),
        "record_events": sum(s.timeline for s in stories),
        "record_units": len({s.unit_id for s in stories}),
        "record_unit_positions": 2 * len(stories),
        "record_dead_letters": 0,
    }


async def until_stored(sink: Sink, pool: asyncpg.Pool, stories: list[Story]) -> None:
    """Wait until the tables hold exactly what the stories make, checking after each commit;
    then check every timeline event is there, each once (its id is the key)."""
    want = expected(stories)
    while True:
        seen = sink.status.batches
        if await counts(pool) == want:
            break
        await asyncio.wait_for(sink.wait_commits(seen + 1), WAIT_S)
    async with connection(pool) as conn:
        ids = [r["event_id"] for r in await conn.fetch("SELECT event_id FROM record_events")]
        alarms = {r["alarm_id"] for r in await conn.fetch("SELECT alarm_id FROM record_alarms")}
    assert sorted(ids) == sorted(set().union(*(s.timeline_ids for s in stories)))
    assert alarms == {s.alarm_id for s in stories}


def kafka_records(stories: list[Story]) -> int:
    """Return how many Kafka records produce() writes for the stories (bundles of five)."""
    classified = len(stories)
    return sum(len(s.events) - 1 for s in stories) + -(-classified // 5)


async def test_every_event_lands_once_and_completes_the_rows(
    bootstrap: str,
    pool: asyncpg.Pool,
    topics: dict[str, str],
    producer: AIOKafkaProducer,
    zone: Zone,
    group_id: str,
) -> None:
    start = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    stories = [story(n, start + timedelta(minutes=n)) for n in range(7)]
    await produce(producer, topics, [e for s in stories for e in s.events])
    async with running_sink(bootstrap, pool, topics, zone, group_id) as sink:
        await until_read(sink, kafka_records(stories))
    assert sink.status.written.skipped == 0
    assert await counts(pool) == {
        "record_alarms": 7,
        "record_incidents": 7,
        "record_events": sum(s.timeline for s in stories),
        # Units u-0 .. u-6, each with its two fixes 10 s apart but 550 m apart: both kept.
        "record_units": 7,
        "record_unit_positions": 14,
        "record_dead_letters": 0,
    }
    async with connection(pool) as conn:
        ids = {r["event_id"] for r in await conn.fetch("SELECT event_id FROM record_events")}
        assert ids == set().union(*(s.timeline_ids for s in stories))
        first = stories[0]
        incident = await conn.fetchrow(
            "SELECT * FROM record_incidents WHERE incident_id = $1", first.incident_id
        )
        alarm = await conn.fetchrow(
            "SELECT * FROM record_alarms WHERE alarm_id = $1", first.alarm_id
        )
        kinds = await conn.fetch(
            "SELECT kind, count(*) AS n FROM record_events WHERE incident_id = $1 "
            "GROUP BY kind ORDER BY kind",
            first.incident_id,
        )
        ack = await conn.fetchrow(
            "SELECT * FROM record_events WHERE incident_id = $1 AND detail->>'action' = 'ack'",
            first.incident_id,
        )
    assert incident is not None
    assert alarm is not None
    assert ack is not None
    assert (incident["state"], incident["is_open"], incident["grid_id"]) == (
        "resolved",
        False,
        GRID,
    )
    assert incident["closed_at"] == incident["updated_at"] == start + timedelta(seconds=301)
    assert incident["opened_at"] == start + timedelta(seconds=0.05)
    assert incident["delivered_at"] == start + timedelta(seconds=2)
    assert [p["unit_id"] for p in json.loads(incident["parties"])] == [first.unit_id]
    assert alarm["incident_id"] == first.incident_id
    assert (alarm["category"], alarm["priority"], alarm["grid_id"]) == ("fight", "P2", GRID)
    assert alarm["reporter_name"] == "张三"
    assert {r["kind"]: r["n"] for r in kinds} == {
        "alarm": 1, "assignment": 1, "command": 1, "command_outcome": 1, "response": 4,
        "state": 4,
    }  # fmt: skip
    # The delivery receipt is the unit's ack, with its unit and job.
    assert (ack["kind"], ack["unit_id"]) == ("response", first.unit_id)
    assert ack["at"] == start + timedelta(seconds=2)


async def test_a_replayed_topic_writes_nothing_twice(
    bootstrap: str,
    pool: asyncpg.Pool,
    topics: dict[str, str],
    producer: AIOKafkaProducer,
    zone: Zone,
    group_id: str,
) -> None:
    start = datetime.now(UTC) - timedelta(hours=2)
    stories = [story(n, start + timedelta(minutes=n)) for n in range(12)]
    await produce(producer, topics, [e for s in stories for e in s.events])
    async with running_sink(bootstrap, pool, topics, zone, group_id) as first:
        await until_read(first, kafka_records(stories))
    before = await counts(pool)
    async with connection(pool) as conn:
        rows_before = await conn.fetch("SELECT * FROM record_incidents ORDER BY incident_id")
    # A second group reads every topic again from its start, in smaller batches.
    async with running_sink(
        bootstrap, pool, topics, zone, group_id + "-again", batch_max=7
    ) as again:
        await until_read(again, kafka_records(stories))
    assert await counts(pool) == before
    written = again.status.written
    assert (written.alarms, written.incidents, written.events) == (0, 0, 0)
    assert (written.units, written.positions, written.dead_letters) == (0, 0, 0)
    async with connection(pool) as conn:
        rows_after = await conn.fetch("SELECT * FROM record_incidents ORDER BY incident_id")
    assert rows_after == rows_before


async def test_a_record_postgres_refuses_is_set_aside_and_the_next_stored(
    bootstrap: str,
    pool: asyncpg.Pool,
    topics: dict[str, str],
    producer: AIOKafkaProducer,
    zone: Zone,
    group_id: str,
) -> None:
    # pydantic accepts a NUL in text; PostgreSQL's text refuses it (issue 9's first point).
    poisoned = story(0, datetime.now(UTC) - timedelta(minutes=30), text="有人打架\x00 fight")
    clean = [story(n, datetime.now(UTC) - timedelta(minutes=20 - n)) for n in range(1, 4)]
    await produce(producer, topics, poisoned.events[:1])
    await produce(producer, topics, [e for s in clean for e in s.events])
    async with running_sink(bootstrap, pool, topics, zone, group_id) as sink:
        await until_read(sink, 1 + kafka_records(clean))
    assert sink.status.written.skipped == 1
    async with connection(pool) as conn:
        letter = await conn.fetchrow("SELECT * FROM record_dead_letters")
        alarms = {r["alarm_id"] for r in await conn.fetch("SELECT alarm_id FROM record_alarms")}
    assert letter is not None
    assert (letter["stage"], letter["source_topic"]) == ("sink", topics[ALARMS_RAW.name])
    assert "PostgreSQL refused" in letter["reason"]
    assert "22" in letter["reason"]
    # The original bytes, whole, for an operator to look at or replay once fixed.
    assert RawAlarm.model_validate_json(base64.b64decode(letter["value"])) == poisoned.events[0]
    assert alarms == {s.alarm_id for s in clean}
    assert await counts(pool) | {"record_dead_letters": 0} == {
        "record_alarms": 3, "record_incidents": 3,
        "record_events": sum(s.timeline for s in clean), "record_units": 3,
        "record_unit_positions": 6, "record_dead_letters": 0,
    }  # fmt: skip


async def test_a_record_that_does_not_decode_is_a_dead_letter_and_the_rest_go_on(
    bootstrap: str,
    pool: asyncpg.Pool,
    topics: dict[str, str],
    producer: AIOKafkaProducer,
    zone: Zone,
    group_id: str,
) -> None:
    later = story(1, datetime.now(UTC) - timedelta(minutes=5))
    raw_topic, classified_topic = topics[ALARMS_RAW.name], topics[ALARMS_CLASSIFIED.name]
    await (await producer.send(raw_topic, b"\xff not json", key=b"k", partition=0))
    # A bundle holding one good and one bad alarm: the good one is stored.
    good = later.events[1]
    bad = (b"x", b'{"alarm_id": "nope"}')
    for sent in await produce_bundles(producer, classified_topic, [(b"x", encode(good)), bad]):
        await sent  # type: ignore[misc]
    stage_letter = DeadLetter.capture(
        source_topic="alarms.raw", partition=0, offset=9, key=None, value=b"\x00\x01",
        reason="invalid RawAlarm: $: Invalid JSON", stage="classify", failed_at=datetime.now(UTC),
    )  # fmt: skip
    await produce(producer, topics, [stage_letter, *later.events[2:]])
    async with running_sink(bootstrap, pool, topics, zone, group_id) as sink:
        await until_read(sink, 3 + len(later.events) - 2)
    async with connection(pool) as conn:
        letters = await conn.fetch(
            "SELECT stage, source_topic, bundle_index, reason, errors FROM record_dead_letters "
            "ORDER BY stage, source_topic"
        )
        alarm = await conn.fetchrow("SELECT incident_id FROM record_alarms")
        events = await conn.fetchval("SELECT count(*) FROM record_events")
    assert [(r["stage"], r["source_topic"], r["bundle_index"]) for r in letters] == [
        ("classify", "alarms.raw", None),
        ("sink", classified_topic, 1),
        ("sink", raw_topic, None),
    ]
    assert "invalid ClassifiedAlarm" in letters[1]["reason"]
    assert any(e["field"] == "alarm_id" for e in json.loads(letters[1]["errors"]))
    assert alarm is not None
    assert alarm["incident_id"] == later.incident_id
    assert events == later.timeline
    assert sink.status.written.skipped == 0  # read-time skips are dead letters like any other
