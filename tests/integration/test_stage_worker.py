"""The stage worker on the real broker: dead-lettering at the edge, offsets, restored tables."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from dispatch.events import ALARMS_RAW, DeadLetter, RawAlarm, SourceKind, decode, encode, key_of
from dispatch.settings import Settings
from infra.topics import TopicDecl, ensure_topics
from streams.pipeline import new_producer
from streams.stages import Outbox, decoded
from streams.tables import ChangelogTable
from streams.worker import Membership, StageSpec, StageWorker
from tests.integration.test_smoke import consume_n

WAIT_S = 60.0  # a hang guard, not a performance bound


def alarm(text: str) -> RawAlarm:
    """Return a valid raw alarm with this text."""
    return RawAlarm(
        alarm_id=uuid.uuid4(),
        received_at=datetime.now(UTC),
        source_kind=SourceKind.DESK,
        source_id="desk-01",
        text=text,
    )


@asynccontextmanager
async def running_worker(
    settings: Settings, spec: StageSpec, *, group_id: str, prefix: str
) -> AsyncIterator[StageWorker]:
    """Run one worker of spec in this process until the block ends."""
    await ensure_topics(
        settings.bootstrap_servers,
        [TopicDecl(t.changelog_topic, 1, compacted=True) for t in spec.tables],
    )
    producer = new_producer(settings)
    await producer.start()
    worker = StageWorker(
        spec,
        bootstrap=settings.bootstrap_servers,
        membership=Membership(group_id=group_id),
        producer=producer,
        prefix=prefix,
        partitions=1,
    )
    await worker.start()
    try:
        await asyncio.wait_for(worker.ready.wait(), WAIT_S)
        yield worker
    finally:
        await worker.stop()
        await producer.stop()


async def send(settings: Settings, topic: str, *values: bytes) -> None:
    """Write raw values to topic, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"desk-01")
    finally:
        await producer.stop()


async def committed(settings: Settings, group_id: str, topic: str) -> int | None:
    """Return the group's committed offset on partition 0 of topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group_id)
    finally:
        await admin.close()
    found = offsets.get(TopicPartition(topic, 0))
    return None if found is None else int(found.offset)


async def test_bad_records_are_dead_lettered_and_the_next_good_one_flows(
    running_stack: Settings, group_id: str
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    raw = prefix + ALARMS_RAW.name
    await ensure_topics(
        running_stack.bootstrap_servers, [TopicDecl(raw, 1), TopicDecl(prefix + "alarms.dlq", 1)]
    )
    passed: asyncio.Queue[RawAlarm] = asyncio.Queue()

    def take_valid(record: Any, out: Outbox, now: datetime) -> None:
        valid = decoded(RawAlarm, record, out, stage="test")
        if valid is not None:
            if valid.text == "crash":
                raise RuntimeError("a bug in the handler")
            passed.put_nowait(valid)

    good = alarm("有人翻墙进入厂区")
    poison = b'{"alarm_id": "not-a-uuid", "text": 42}'
    # Valid input that the handler fails on (a bug): that record alone goes to the DLQ.
    crashing = encode(alarm("crash"))
    spec = StageSpec("test", {raw: take_valid})
    async with running_worker(running_stack, spec, group_id=group_id, prefix=prefix):
        await send(running_stack, raw, poison, b"\xff\xfe not even utf-8", crashing, encode(good))
        # The good alarm, sent after three bad records, still gets through.
        assert await asyncio.wait_for(passed.get(), WAIT_S) == good
        letters = [
            decode(DeadLetter, value or b"")
            async for _, value in consume_n(
                running_stack.bootstrap_servers, prefix + "alarms.dlq", f"{group_id}-dlq", 3
            )
        ]
    assert [letter.value for letter in letters] == [poison, b"\xff\xfe not even utf-8", crashing]
    assert {letter.source_topic for letter in letters} == {raw}
    assert {"alarm_id", "text"} <= {error.field for error in letters[0].errors}
    assert letters[0].stage == "test"
    assert letters[0].reason.startswith("invalid RawAlarm")
    assert letters[2].reason == "internal error in test: RuntimeError: a bug in the handler"
    # Everything handled, the dead letters included, is committed; nothing beyond.
    assert await committed(running_stack, group_id, raw) == 4


async def test_a_new_worker_of_the_group_restores_the_table_and_resumes_after_the_commit(
    running_stack: Settings, group_id: str
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    raw = prefix + ALARMS_RAW.name
    await ensure_topics(running_stack.bootstrap_servers, [TopicDecl(raw, 1)])
    seen: asyncio.Queue[tuple[str, int]] = asyncio.Queue()

    def spec() -> StageSpec:
        # Counts alarms per source in a table; each worker gets a fresh, empty table object.
        counts = ChangelogTable("counts", f"{prefix}{group_id}-counts-changelog", partitions=1)

        def count(record: Any, out: Outbox, now: datetime) -> None:
            valid = decoded(RawAlarm, record, out, stage="test")
            if valid is not None:
                key = valid.source_id.encode()
                counts[key] = str(int(counts.get(key, b"0")) + 1).encode()
                seen.put_nowait((valid.text, int(counts[key])))

        return StageSpec("test", {raw: count}, tables=(counts,))

    async with running_worker(running_stack, spec(), group_id=group_id, prefix=prefix):
        await send(running_stack, raw, encode(alarm("one")), encode(alarm("two")))
        assert [await asyncio.wait_for(seen.get(), WAIT_S) for _ in range(2)] == [
            ("one", 1),
            ("two", 2),
        ]
    await send(running_stack, raw, encode(alarm("three")))
    async with running_worker(running_stack, spec(), group_id=group_id, prefix=prefix):
        # Only the record after the commit is handled, on the count restored from the log.
        assert await asyncio.wait_for(seen.get(), WAIT_S) == ("three", 3)
    assert seen.empty()
    assert await committed(running_stack, group_id, raw) == 3


async def test_records_sent_by_key_keep_their_order_within_a_partition(
    running_stack: Settings, group_id: str
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    raw = prefix + ALARMS_RAW.name
    await ensure_topics(running_stack.bootstrap_servers, [TopicDecl(raw, 1)])
    texts: list[str] = []
    done = asyncio.Event()
    alarms = [alarm(f"alarm {n}") for n in range(1200)]

    def keep(record: Any, out: Outbox, now: datetime) -> None:
        valid = decoded(RawAlarm, record, out, stage="test")
        if valid is not None:
            texts.append(valid.text)
            if len(texts) == len(alarms):
                done.set()

    async with running_worker(
        running_stack, StageSpec("test", {raw: keep}), group_id=group_id, prefix=prefix
    ):
        producer = AIOKafkaProducer(bootstrap_servers=running_stack.bootstrap_servers)
        await producer.start()
        try:
            sent = [await producer.send(raw, encode(a), key=key_of(a)) for a in alarms]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()
        await asyncio.wait_for(done.wait(), WAIT_S)
    assert texts == [a.text for a in alarms]
