"""The push gateway while PostgreSQL is down, on the real Kafka and a PostgreSQL server of the
test's own that it stops and starts again.

What is answered is true (a command refused as `unavailable` was not sent; once sent, it is on
record), and the outbox writer waits for the database instead of dropping or dead-lettering.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from consumers.auth import Role, history
from consumers.db import migrate
from consumers.push import PushTopics
from consumers.push.actions import command_event_id
from consumers.push.protocol import ErrorCode, ErrorFrame, JobFrame, OkFrame, WelcomeFrame
from dispatch.events import CommanderCommand, DeadLetter
from dispatch.settings import Settings
from tests.integration import test_push_gateway
from tests.integration.outage import PrivatePostgres, private_postgres
from tests.integration.principals import connection, make_caller
from tests.integration.test_push_gateway import (
    client,
    command,
    eventually,
    gateway,
    job_for,
    produce,
    read_all,
    read_keyed,
    unit_client,
)

# The gateway tests' fixtures (a pool on the session's server, fresh topics, a producer).
pool = test_push_gateway.pool
topics = test_push_gateway.topics
producer = test_push_gateway.producer


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[PrivatePostgres]:
    """Yield a PostgreSQL server of this test's own."""
    async with private_postgres(tmp_path / "state") as server:
        yield server


@pytest.fixture
async def own_pool(database: PrivatePostgres) -> AsyncIterator[asyncpg.Pool]:
    """Yield a pool on the test's own server, migrated (the whole server is the test's)."""
    pool = await asyncpg.create_pool(database.url, min_size=1, max_size=10)
    try:
        async with connection(pool) as conn:
            await migrate(conn)
        yield pool
    finally:
        await pool.close()


async def test_a_command_refused_while_postgres_is_down_was_not_sent_and_its_resend_is_once(
    running_stack: Settings,
    database: PrivatePostgres,
    own_pool: asyncpg.Pool,
    topics: PushTopics,
    group_id: str,
) -> None:
    commander = await make_caller(own_pool, Role.COMMANDER)
    incident = uuid.uuid4()
    cancel = command("cancel", incident, reason="false alarm", ref="c-1")
    event_id = command_event_id(commander.id, cancel["command_id"])
    async with (
        gateway(running_stack, own_pool, topics, group_id) as gw,
        client(gw, commander.secret) as cmd,
    ):
        assert (await cmd.expect(WelcomeFrame)).channel == "commander"
        async with database.stopped():
            await cmd.send(**cancel)
            down = await cmd.expect(ErrorFrame)
            assert (down.code, down.ref) == (ErrorCode.UNAVAILABLE, "c-1")
            # True: it is not on Kafka (a command is sent only once it is on record).
            assert (
                await read_all(running_stack.bootstrap_servers, topics.commands, CommanderCommand)
                == []
            )
            assert "nothing was sent" in down.message
        # The same frame once PostgreSQL is back: recorded, audited, sent, answered ok.
        await cmd.send(**cancel)
        ok = await cmd.expect(OkFrame)
        assert (ok.of, ok.ref, ok.event_id) == ("command", "c-1", event_id)
        # Sent again (the ok was lost, say): the same record, already on Kafka.
        await cmd.send(**cancel)
        assert (await cmd.expect(OkFrame)).event_id == event_id
    published = await read_keyed(running_stack.bootstrap_servers, topics.commands, CommanderCommand)
    assert [(key, c.event_id, c.reason) for key, c in published] == [
        (str(incident).encode(), event_id, "false alarm")
    ]
    async with connection(own_pool) as conn:
        entries = await history(conn, subject=f"incident:{incident}")
        sent_at = await conn.fetchval(
            "SELECT published_at FROM published_events WHERE event_id = $1", event_id
        )
    assert [(e.action, e.actor, e.detail["event_id"]) for e in entries] == [
        ("incident.cancel", commander.id, str(event_id))
    ]
    assert sent_at is not None


async def test_a_command_id_reused_for_another_decision_is_refused_naming_it(
    running_stack: Settings, pool: asyncpg.Pool, topics: PushTopics, group_id: str
) -> None:
    commander = await make_caller(pool, Role.COMMANDER)
    incident = uuid.uuid4()
    cancel = command("cancel", incident, ref="c-1")
    async with (
        gateway(running_stack, pool, topics, group_id) as gw,
        client(gw, commander.secret) as cmd,
    ):
        await cmd.expect(WelcomeFrame)
        await cmd.send(**cancel)
        await cmd.expect(OkFrame)
        await cmd.send(**{**cancel, "action": "close", "ref": "c-2"})
        refused = await cmd.expect(ErrorFrame)
        assert (refused.code, refused.ref) == (ErrorCode.BAD_FRAME, "c-2")
        assert [e.field for e in refused.errors] == ["command_id"]
    published = await read_all(running_stack.bootstrap_servers, topics.commands, CommanderCommand)
    assert [c.action for c in published] == ["cancel"]


async def test_the_outbox_writer_waits_for_postgres_and_then_delivers_the_job_once(
    running_stack: Settings,
    database: PrivatePostgres,
    own_pool: asyncpg.Pool,
    topics: PushTopics,
    producer: AIOKafkaProducer,
    group_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="consumers.push.outbox")
    unit = await make_caller(own_pool, Role.PATROL)
    job = job_for(unit.unit)
    async with (
        gateway(running_stack, own_pool, topics, group_id) as gw,
        unit_client(gw, unit) as (c, _),
    ):
        async with database.stopped():
            await produce(producer, topics.assignments, job)

            async def retrying() -> bool:
                return any("retrying in" in r.getMessage() for r in caplog.records)

            # The database is down, not the record at fault: the writer says so and waits.
            await eventually(retrying)
        shown = await c.expect(JobFrame)
        assert (shown.seq, shown.assignment) == (1, job)
        await c.nothing_more()
    assert await read_all(running_stack.bootstrap_servers, topics.dead_letters, DeadLetter) == []
