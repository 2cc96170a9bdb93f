"""The sink killed outright (SIGKILL) in the middle of a steady load and started again loses
nothing and stores nothing twice: it committed only what it had written, and writing again
what it had written but not committed changes nothing."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer

from consumers.db.pool import connection
from tests.integration import test_sink
from tests.integration.sink_events import SteadyLoad
from tests.integration.test_sink import WAIT_S, counts, expected

# The sink tests' fixtures (fresh topics, a pool on a fresh schema, a producer).
topics = test_sink.topics
pool = test_sink.pool
producer = test_sink.producer

ROOT = Path(__file__).resolve().parents[2]


class ChildSink:
    """A sink process of the test's own, and what it printed."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.committed = 0

    async def next_line(self) -> str:
        """Return the next line the sink printed (it ended: an error)."""
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), WAIT_S)
        if not line:
            raise AssertionError(f"the sink ended (exit {await self.proc.wait()})")
        text = line.decode().strip()
        if text.startswith("committed "):
            self.committed = int(text.split()[1])
        return text

    async def until_committed(self, at_least: int) -> None:
        """Wait until the sink says it committed at least this many records."""
        while self.committed < at_least:
            await self.next_line()


@asynccontextmanager
async def child_sink(config: dict[str, object]) -> AsyncIterator[ChildSink]:
    """Start a sink process; kill it at the end if it still runs."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.sink_child",
        json.dumps(config),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    child = ChildSink(proc)
    try:
        assert await child.next_line() == "started"
        yield child
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_the_sink_killed_mid_load_and_started_again_loses_nothing(
    bootstrap: str,
    postgres_url: str,
    pool: asyncpg.Pool,
    topics: dict[str, str],
    producer: AIOKafkaProducer,
    group_id: str,
) -> None:
    async with connection(pool) as conn:
        schema = await conn.fetchval("SELECT current_schema()")
    config: dict[str, object] = {
        "bootstrap": bootstrap,
        "postgres_url": postgres_url,
        "schema": schema,
        "group_id": group_id,
        "topics": {name: catalog for catalog, name in topics.items()},
        "batch_max": 200,
    }
    load = SteadyLoad(producer, topics, every_s=0.02)
    load.start()
    async with child_sink(config) as first:
        await first.until_committed(1000)
        first.proc.kill()  # SIGKILL: no clean stop, no last commit
        assert await first.proc.wait() == -9
    killed_at = first.committed
    async with child_sink(config) as second:
        # The load went on; the second sink reads from the last commit of the first.
        await second.until_committed(1000)
        await load.stop()
        want = expected(load.stories)
        while await counts(pool) != want:
            await second.next_line()
    async with connection(pool) as conn:
        ids = [r["event_id"] for r in await conn.fetch("SELECT event_id FROM record_events")]
    assert sorted(ids) == sorted(set().union(*(s.timeline_ids for s in load.stories)))
    assert killed_at >= 1000
