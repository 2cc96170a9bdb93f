"""No poison pill in the push gateway: a record PostgreSQL cannot store, or any garbage at all,
is dead-lettered (outbox) or skipped (board feed), and the next good record still flows.

On the real Kafka and PostgreSQL, with real websocket clients (see test_push_gateway).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaProducer

from consumers.auth import Role
from consumers.push import PushTopics
from consumers.push.protocol import IncidentFrame, JobFrame, UnitStatusFrame, WelcomeFrame
from dispatch.events import Assignment, DeadLetter, Position, encode
from dispatch.settings import Settings
from tests.integration import test_push_gateway
from tests.integration.principals import make_caller
from tests.integration.test_push_gateway import (
    Client,
    change_at,
    client,
    gateway,
    job_for,
    outbox,
    read_all,
    unit_client,
)

# The gateway tests' fixtures (a migrated pool, fresh topics, a producer), used as they are.
pool = test_push_gateway.pool
topics = test_push_gateway.topics
producer = test_push_gateway.producer

NUL = "\x00"


def with_summary(unit_id: str, summary: str) -> Assignment:
    """Return a fresh job for a unit whose one-line summary is summary."""
    return job_for(unit_id, summary=summary)


@dataclass(frozen=True)
class Sent:
    """One record written to dispatch.assignments, and where it landed."""

    value: bytes
    offset: int
    assignment_id: uuid.UUID | None  # None: not an Assignment at all


async def write(kafka: AIOKafkaProducer, topic: str, key: bytes, value: bytes) -> Sent:
    """Write one record under key and return it with its offset."""
    meta = await kafka.send_and_wait(topic, value, key=key)
    return Sent(value, meta.offset, None)


async def write_job(kafka: AIOKafkaProducer, topic: str, job: Assignment) -> Sent:
    """Write one assignment keyed by its unit and return it with its offset."""
    sent = await write(kafka, topic, job.unit_id.encode(), encode(job))
    return Sent(sent.value, sent.offset, job.assignment_id)


async def jobs_until(c: Client, last: uuid.UUID) -> list[JobFrame]:
    """Read job frames until the one with assignment id last; return them all."""
    got: list[JobFrame] = []
    while not got or got[-1].assignment.assignment_id != last:
        got.append(await c.expect(JobFrame))
    return got


async def test_a_job_postgres_cannot_store_is_dead_lettered_and_the_next_jobs_flow(
    running_stack: Settings,
    bootstrap: str,
    pool: asyncpg.Pool,
    topics: PushTopics,
    producer: AIOKafkaProducer,
    group_id: str,
) -> None:
    unit = await make_caller(pool, Role.PATROL)
    other = await make_caller(pool, Role.PATROL)
    before = job_for(unit.unit, summary="P2 fight at gate 2")
    # Valid as an event (a NUL is a character), refused by PostgreSQL in text and jsonb.
    poison = with_summary(unit.unit, f"P2 fight{NUL} at gate 2")
    after = job_for(unit.unit, summary="P3 theft at the depot")
    elsewhere = job_for(other.unit)
    async with (
        gateway(running_stack, pool, topics, group_id) as gw,
        unit_client(gw, unit) as (c, _),
        unit_client(gw, other) as (o, _),
    ):
        # One batch, one partition: the bad job sits between two good ones of its unit.
        sent = [await write_job(producer, topics.assignments, j) for j in (before, poison, after)]
        await write_job(producer, topics.assignments, elsewhere)
        jobs = await c.jobs(2)
        assert [(j.seq, j.assignment) for j in jobs] == [(1, before), (2, after)]
        assert (await o.expect(JobFrame)).assignment == elsewhere
    (letter,) = await read_all(bootstrap, topics.dead_letters, DeadLetter)
    assert (letter.stage, letter.source_topic) == ("push-outbox", topics.assignments)
    assert (letter.offset, letter.value) == (sent[1].offset, sent[1].value)
    assert "cannot be stored in the outbox" in letter.reason
    assert "22P05" in letter.reason  # untranslatable character: the record's fault
    assert [r["assignment_id"] for r in await outbox(pool, unit.unit)] == [
        before.assignment_id,
        after.assignment_id,
    ]


def awkward_summaries() -> list[str]:
    """Return summaries with every control character, a character of every Unicode plane,
    noncharacters and the longest allowed text."""
    controls = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
    texts = [f"P2 fight {chr(code)} end" for code in controls]
    # One character from each of the 17 planes (none is a surrogate: those start at U+D800).
    texts += [f"plane {plane}: {chr(plane * 0x10000 + 0x4E2D)}" for plane in range(17)]
    texts += ["\ufffe\uffff noncharacters", "\U0010ffff last", "救命" * 100, "x" * 200]
    return texts


def garbage(rng: random.Random, unit_id: str) -> list[bytes]:
    """Return values that are no Assignment at all, from random bytes to near misses."""
    job = encode(job_for(unit_id)).decode()
    return [
        b"",  # a tombstone
        b"\xff\xfe\x00\x01",  # not UTF-8
        rng.randbytes(300),
        b"null",
        b"[]",
        b'{"schema_version": 1}',
        job.replace(unit_id, f"{unit_id}\\u0000").encode(),  # NUL in the key field
        job.replace('"attempt":1', '"attempt":1e400').encode(),  # an infinite number
        job.replace('"P2 fight"', '"\\ud800"').encode(),  # a lone surrogate
        b"{" * 100_000,  # nesting beyond any parser's patience
        b"x" * 900_000,  # nearly a megabyte: its dead letter must be cut to fit
    ]


def extremes(unit_id: str) -> list[Assignment]:
    """Return valid jobs at the edges of their fields' ranges."""
    far = datetime(9998, 12, 31, tzinfo=UTC)
    early = datetime(1, 1, 1, tzinfo=UTC)
    return [
        job_for(unit_id).model_copy(update={"eta_s": 1.7e308, "attempt": 100}),
        job_for(unit_id).model_copy(
            update={"dispatched_at": far, "ack_deadline": far + timedelta(days=1)}
        ),
        job_for(unit_id).model_copy(
            update={"dispatched_at": early, "ack_deadline": early + timedelta(milliseconds=1)}
        ),
        job_for(unit_id).model_copy(update={"position": Position(lat=-90, lon=180)}),
    ]


async def test_any_record_is_either_stored_or_dead_lettered_and_never_stops_the_outbox(
    running_stack: Settings,
    bootstrap: str,
    pool: asyncpg.Pool,
    topics: PushTopics,
    producer: AIOKafkaProducer,
    group_id: str,
) -> None:
    unit = await make_caller(pool, Role.PATROL)
    key = unit.unit.encode()
    rng = random.Random(20261126)  # fixed: a failure can be reproduced
    records = [with_summary(unit.unit, text) for text in awkward_summaries()]
    records += extremes(unit.unit)
    last = job_for(unit.unit, summary="the next good job")
    async with gateway(running_stack, pool, topics, group_id) as gw:
        sent = [await write_job(producer, topics.assignments, job) for job in records]
        sent += [await write(producer, topics.assignments, key, v) for v in garbage(rng, unit.unit)]
        sent.append(await write_job(producer, topics.assignments, last))
        async with unit_client(gw, unit) as (c, _):
            shown = await jobs_until(c, last.assignment_id)
    # Gap-free, in the order written, and the good job after all that got through.
    assert [job.seq for job in shown] == list(range(1, len(shown) + 1))
    stored = [job.assignment.assignment_id for job in shown]
    letters = {d.offset: d for d in await read_all(bootstrap, topics.dead_letters, DeadLetter)}
    # Every record is accounted for exactly once: stored, or dead-lettered with its reason.
    for record in sent:
        if record.assignment_id in stored:
            assert record.offset not in letters
        else:
            letter = letters.pop(record.offset)
            assert letter.stage == "push-outbox"
            assert letter.value == record.value[: len(letter.value)]
            assert letter.value_truncated == (len(letter.value) < len(record.value))
    assert letters == {}
    assert stored == [r.assignment_id for r in sent if r.assignment_id in stored]
    # What had a NUL in it is exactly what PostgreSQL refused among the valid jobs.
    refused = {j.assignment_id for j in records} - set(stored)
    assert refused == {j.assignment_id for j in records if NUL in j.summary}
    assert last.assignment_id in stored


async def test_the_board_feed_skips_garbage_and_shows_the_next_change(
    running_stack: Settings,
    pool: asyncpg.Pool,
    topics: PushTopics,
    producer: AIOKafkaProducer,
    group_id: str,
) -> None:
    commander = await make_caller(pool, Role.COMMANDER)
    rng = random.Random(7)
    good = change_at(None)
    nul_change = change_at(None).model_copy(update={"reason": f"a{NUL}b"})
    async with (
        gateway(running_stack, pool, topics, group_id) as gw,
        client(gw, commander.secret) as cmd,
    ):
        assert (await cmd.expect(WelcomeFrame)).channel == "commander"
        for topic in (topics.incidents_state, topics.units_status):
            for value in garbage(rng, "u-1"):
                await producer.send_and_wait(topic, value, key=b"garbage")
        await producer.send_and_wait(topics.incidents_state, encode(nul_change), key=b"garbage")
        await producer.send_and_wait(topics.incidents_state, encode(good), key=b"garbage")
        # A NUL is a valid character of an event: the board shows it as JSON escapes it.
        assert (await cmd.expect(IncidentFrame)).change == nul_change
        assert (await cmd.expect(IncidentFrame)).change == good
        unit = await make_caller(pool, Role.PATROL)
        status = UnitStatusFrame.model_validate(
            {
                "status": {
                    "event_id": str(uuid.uuid4()),
                    "unit_id": unit.unit,
                    "status": "available",
                    "reported_at": "2026-11-26T03:04:05.000Z",
                }
            }
        ).status
        await producer.send_and_wait(topics.units_status, encode(status), key=b"garbage")
        assert (await cmd.expect(UnitStatusFrame)).status == status
