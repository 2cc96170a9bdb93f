"""The sink under a steady load while PostgreSQL is stopped for 30 s and started again, on the
real broker and a PostgreSQL server of the test's own: it waits, commits nothing meanwhile,
catches up by itself, and every event is stored once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from consumers.db import migrate
from consumers.db.pool import connection, open_pool
from dispatch.zone import Zone
from tests.integration import test_sink
from tests.integration.outage import PrivatePostgres, private_postgres
from tests.integration.sink_events import SteadyLoad
from tests.integration.test_sink import WAIT_S, running_sink, until_stored

# The sink tests' fixtures (fresh topics, a producer, the demo zone).
topics = test_sink.topics
producer = test_sink.producer
zone = test_sink.zone

OUTAGE_S = 30.0  # the scenario of the issue: PostgreSQL stopped this long
# Shorter than the service's default, so that a write hung on a connection PostgreSQL's
# stop left half-open has been given up and counted within the outage.
WRITE_DEADLINE_S = 10.0


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[PrivatePostgres]:
    """Yield a PostgreSQL server of this test's own."""
    async with private_postgres(tmp_path / "state") as server:
        yield server


@pytest.fixture
async def own_pool(database: PrivatePostgres) -> AsyncIterator[asyncpg.Pool]:
    """Yield a pool on the test's own server, migrated, as the sink's service opens it."""
    pool = await open_pool(database.url, min_size=1, max_size=4)
    try:
        async with connection(pool) as conn:
            await migrate(conn)
        yield pool
    finally:
        pool.terminate()


async def test_the_sink_waits_out_postgres_stopped_30_s_and_stores_every_event_once(
    bootstrap: str,
    database: PrivatePostgres,
    own_pool: asyncpg.Pool,
    topics: dict[str, str],
    producer: AIOKafkaProducer,
    zone: Zone,
    group_id: str,
) -> None:
    load = SteadyLoad(producer, topics, every_s=0.05)
    async with running_sink(
        bootstrap, own_pool, topics, zone, group_id, batch_max=500,
        write_deadline_s=WRITE_DEADLINE_S,
    ) as sink:  # fmt: skip
        load.start()
        await asyncio.wait_for(sink.wait_commits(3), WAIT_S)
        async with database.stopped():
            committed = sink.status.kafka_records
            written_before = len(load.stories)
            # The outage itself is the scenario: nothing to await but its end.
            await asyncio.sleep(OUTAGE_S)
            # The load went on meanwhile: the sink had records to write and has a backlog.
            assert len(load.stories) > written_before
            # Nothing was committed while no row could be written (one batch at most was
            # being written when the server stopped), and the sink says why it waits: a write
            # refused, or one that had no answer within its deadline, has been counted.
            during = sink.status.kafka_records - committed
            assert during <= 500
            assert sink.failure() is None, repr(sink.failure())
            assert sink.status.retries > 0, sink.status
            assert sink.status.waiting is not None
        # The load goes on after the restart; the sink catches up by itself.
        await asyncio.wait_for(sink.wait_commits(sink.status.batches + 3), WAIT_S)
        await load.stop()
        await until_stored(sink, own_pool, load.stories)
    assert sink.status.waiting is None
    assert sink.status.written.skipped == 0
