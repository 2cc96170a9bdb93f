"""Bundles on the internal hops, and the batch write path that makes them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from datetime import datetime
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from aiokafka.partitioner import DefaultPartitioner

from dispatch.events import ALARMS_CLASSIFIED, ALARMS_DLQ, INCIDENTS_STATE, DeadLetter, decode
from streams.batching import BATCH_MAX, run_batch, send_all
from streams.bundles import MAGIC, MAX_BUNDLE_BYTES, BadBundle, bundle, by_partition, unbundle
from streams.stages import Outbox, Queued


def message(value: bytes, *, topic: str = "alarms.located", offset: int = 7) -> Any:
    return ConsumerRecord(topic, 2, offset, 0, 0, None, value, None, 0, len(value), [])


def pairs(n: int, size: int = 20) -> list[tuple[bytes, bytes]]:
    return [(f"key-{i}".encode(), b"{" + bytes([97 + i % 26]) * size + b"}") for i in range(n)]


def test_a_bundle_gives_back_its_records_in_order_at_the_bundles_place() -> None:
    records = [*pairs(5), (b"", b"{}")]
    (frame,) = bundle(records)
    inner = unbundle(message(frame))
    assert [(r.key, r.value) for r in inner] == records
    assert {(r.topic, r.partition, r.offset) for r in inner} == {("alarms.located", 2, 7)}


def test_a_plain_record_is_one_record() -> None:
    plain = message(b'{"alarm_id": "x"}')
    assert unbundle(plain) == [plain]
    # No value at all (a tombstone) is left to the handler to refuse.
    empty = ConsumerRecord("alarms.located", 0, 1, 0, 0, None, None, None, 0, 0, [])
    assert unbundle(empty) == [empty]


def test_bundles_are_cut_before_they_pass_the_size_limit() -> None:
    records = pairs(40, size=40_000)  # about 1.6 MB in all
    frames = bundle(records)
    assert len(frames) > 1
    assert all(len(frame) <= MAX_BUNDLE_BYTES for frame in frames)
    again = [(r.key, r.value) for frame in frames for r in unbundle(message(frame))]
    assert again == records


def test_a_record_larger_than_the_limit_still_goes_alone() -> None:
    big = [(b"k", b"{" + b"x" * MAX_BUNDLE_BYTES + b"}")]
    (frame,) = bundle(big)
    assert [(r.key, r.value) for r in unbundle(message(frame))] == big


@pytest.mark.parametrize("cut", [1, 3, 10, 25])
def test_a_cut_bundle_is_refused_naming_where(cut: int) -> None:
    (frame,) = bundle(pairs(2))
    with pytest.raises(BadBundle, match="bundle cut short"):
        unbundle(message(frame[:-cut]))


def test_records_are_grouped_by_the_default_partitioners_partition() -> None:
    records = [(uuid.uuid4().bytes, b"{}") for _ in range(200)]
    grouped = by_partition(records, 4)
    partitions = [0, 1, 2, 3]
    for partition, part in grouped.items():
        for key, _ in part:
            assert DefaultPartitioner()(key, partitions, partitions) == partition
    assert sum(len(part) for part in grouped.values()) == len(records)


class FakeTable:
    """A table's queued changelog changes, as ChangelogTable keeps them."""

    changelog_topic = "app-incidents-changelog"

    def __init__(self, changes: list[tuple[bytes, bytes | None, int | None]]) -> None:
        self.changes = changes

    def take_changes(self) -> list[tuple[bytes, bytes | None, int | None]]:
        changes, self.changes = self.changes, []
        return changes


def test_send_all_bundles_internal_hops_and_writes_each_changed_key_once() -> None:
    sent: list[tuple[str, bytes | None, bytes | None, int | None]] = []

    async def send(
        topic: str, key: bytes | None, value: bytes | None, partition: int | None
    ) -> Awaitable[Any]:
        sent.append((topic, key, value, partition))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    out = Queued()
    classified = pairs(30)
    for key, value in classified:
        out.send(ALARMS_CLASSIFIED, key, value)
    out.send(INCIDENTS_STATE, b"incident-1", b'{"state": "classified"}')
    table = FakeTable([(b"a", b"1", None), (b"b", b"1", None), (b"a", b"2", None), (b"b", None, 2)])
    asyncio.run(send_all(send, "p.", out, [table], partitions=4))

    bundles = [s for s in sent if s[0] == "p.alarms.classified"]
    # One bundle per partition the keys fall in, sent to that partition with no key.
    assert sorted(s[3] for s in bundles if s[3] is not None) == sorted(by_partition(classified, 4))
    assert all(s[1] is None and s[2] and s[2].startswith(MAGIC) for s in bundles)
    inner = {(r.key, r.value) for s in bundles for r in unbundle(message(s[2] or b""))}
    assert inner == set(classified)
    # Other topics get their records one by one, keyed, partitioned by key.
    assert ("p.incidents.state", b"incident-1", b'{"state": "classified"}', None) in sent
    # A key changed twice in the batch is written once, with its last value (None: deleted),
    # on the partition the table gave it (None: the partitioner's, from the key).
    changelog = [(s[1], s[2], s[3]) for s in sent if s[0] == "app-incidents-changelog"]
    assert changelog == [(b"a", b"2", None), (b"b", None, 2)]


def test_no_table_change_is_sent_before_every_record_of_its_batch_is_acknowledged() -> None:
    # A worker killed between the two must leave its tables as they were before the batch:
    # otherwise the next owner finds the alarm marked as taken and never writes its job.
    log: list[str] = []
    acks: list[asyncio.Future[None]] = []

    async def send(
        topic: str, key: bytes | None, value: bytes | None, partition: int | None
    ) -> Awaitable[Any]:
        unacknowledged = sum(not ack.done() for ack in acks)
        log.append(f"{topic} sent, {unacknowledged} unacknowledged")
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        acks.append(ack)
        return ack

    async def acknowledge_later() -> None:
        # The broker acknowledges each record a moment after it was sent.
        while True:
            await asyncio.sleep(0)
            for ack in acks:
                if not ack.done():
                    log.append("acknowledged")
                    ack.set_result(None)
                    break

    async def batch() -> None:
        out = Queued()
        out.send(INCIDENTS_STATE, b"incident-1", b'{"state": "dispatched"}')
        out.send(INCIDENTS_STATE, b"incident-2", b'{"state": "dispatched"}')
        table = FakeTable([(b"incident-1:alarm-1", b"taken", None)])
        broker = asyncio.create_task(acknowledge_later())
        try:
            await send_all(send, "p.", out, [table], partitions=4)
        finally:
            broker.cancel()

    asyncio.run(batch())
    assert log[:2] == [
        "p.incidents.state sent, 0 unacknowledged",
        "p.incidents.state sent, 1 unacknowledged",
    ]
    changelog = log.index("app-incidents-changelog sent, 0 unacknowledged")
    assert log[:changelog].count("acknowledged") == 2


def test_each_record_of_a_bundle_is_handled_and_a_broken_bundle_is_dead_lettered() -> None:
    handled: list[bytes] = []
    writes: list[Queued] = []

    def handler(record: Any, out: Outbox, now: datetime) -> None:
        handled.append(record.value)

    async def write(out: Queued) -> None:
        writes.append(out)

    (frame,) = bundle(pairs(3))
    broken = frame[:-4]
    plain = message(b'{"plain": 1}', offset=9)
    messages = [message(frame), message(broken, offset=8), plain]
    asyncio.run(run_batch(handler, messages, stage="merge", write=write))
    assert handled == [value for _, value in pairs(3)] + [b'{"plain": 1}']
    ((spec, _, value),) = [record for out in writes for record in out.records]
    assert spec is ALARMS_DLQ
    letter = decode(DeadLetter, value)
    assert letter.offset == 8
    assert letter.stage == "merge"
    assert "bundle cut short" in letter.reason


def test_a_batch_of_many_bundled_records_is_handled_and_written_in_slices() -> None:
    handled: list[bytes] = []
    written: list[int] = []

    def handler(record: Any, out: Outbox, now: datetime) -> None:
        handled.append(record.value)
        out.send(INCIDENTS_STATE, record.key, record.value)

    async def write(out: Queued) -> None:
        written.append(len(out.records))

    records = pairs(2 * BATCH_MAX + 7)
    messages = [message(frame) for frame in bundle(records)]
    asyncio.run(run_batch(handler, messages, stage="route", write=write))
    assert handled == [value for _, value in records]
    # Written BATCH_MAX records at a time: one batch never holds the loop for long.
    assert written == [BATCH_MAX, BATCH_MAX, 7]


def test_bad_records_of_one_bundle_get_dead_letters_of_their_own() -> None:
    def handler(record: Any, out: Outbox, now: datetime) -> None:
        raise ValueError("a bug")

    letters: list[DeadLetter] = []

    async def write(out: Queued) -> None:
        letters.extend(decode(DeadLetter, value) for _, _, value in out.records)

    (frame,) = bundle(pairs(3))
    asyncio.run(run_batch(handler, [message(frame)], stage="merge", write=write))
    again: list[DeadLetter] = []
    letters, again = again, letters
    asyncio.run(run_batch(handler, [message(frame)], stage="merge", write=write))
    # One each, told apart by their place in the bundle, the same ids on a replay.
    assert [letter.bundle_index for letter in again] == [0, 1, 2]
    assert len({letter.event_id for letter in again}) == 3
    assert [letter.event_id for letter in letters] == [letter.event_id for letter in again]
    assert [letter.value for letter in again] == [value for _, value in pairs(3)]
    # A plain record keeps the id it always had.
    plain = DeadLetter.capture(
        source_topic="alarms.located",
        partition=2,
        offset=7,
        key=None,
        value=b"{}",
        reason="x",
        stage="merge",
        failed_at=again[0].failed_at,
    )
    assert plain.bundle_index is None
    assert plain.event_id not in {letter.event_id for letter in again}
