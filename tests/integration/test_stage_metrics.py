"""A stage worker's `/metrics` on its probe port: records, dead letters, batches, lag."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx

from consumers.probe_server import serve_probes
from dispatch.events import ALARMS_RAW, RawAlarm, encode
from dispatch.settings import Settings
from infra.processes import free_port
from infra.topics import TopicDecl, ensure_topics
from streams.stages import Outbox, decoded
from streams.worker import StageSpec
from tests.integration.scrape import scrape
from tests.integration.test_push_gateway import eventually
from tests.integration.test_stage_worker import WAIT_S, alarm, running_worker, send


@asynccontextmanager
async def metrics_client() -> AsyncIterator[httpx.AsyncClient]:
    """Serve the probe server (no probes but /metrics) on a free port; yield a client of it."""
    port = free_port()
    server, task = serve_probes({}, host="127.0.0.1", port=port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=WAIT_S) as c:
            await eventually(lambda: _answers(c))
            yield c
    finally:
        server.should_exit = True
        await task


async def _answers(client: httpx.AsyncClient) -> bool:
    try:
        return (await client.get("/metrics")).status_code == 200
    except httpx.TransportError:
        return False


async def test_a_workers_metrics_count_records_dead_letters_and_show_its_partitions(
    running_stack: Settings, group_id: str
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    raw = prefix + ALARMS_RAW.name
    await ensure_topics(
        running_stack.bootstrap_servers, [TopicDecl(raw, 1), TopicDecl(prefix + "alarms.dlq", 1)]
    )
    stage = f"metrics-{uuid.uuid4().hex[:6]}"

    def take_valid(record: Any, out: Outbox, now: datetime) -> None:
        decoded(RawAlarm, record, out, stage=stage)

    spec = StageSpec(stage, {raw: take_valid})
    async with (
        metrics_client() as http,
        running_worker(running_stack, spec, group_id=group_id, prefix=prefix),
    ):
        await send(running_stack, raw, b"not json", encode(alarm("a")), encode(alarm("b")))

        async def all_committed() -> bool:
            committed = await scrape(
                http,
                "dispatch_consumer_committed_offset",
                group=group_id,
                topic=raw,
                partition="0",
            )
            return committed == 3

        await eventually(all_committed)
        assert await scrape(http, "dispatch_stage_records_total", stage=stage) == 3
        assert await scrape(http, "dispatch_stage_dead_letters_total", stage=stage) == 1
        assert await scrape(http, "dispatch_stage_batch_seconds_count", stage=stage) >= 1
        lag = await scrape(http, "dispatch_consumer_lag", group=group_id, topic=raw, partition="0")
        assert lag == 0
    # A stopped worker's partitions leave the exposition.
    async with metrics_client() as http:
        assert (
            await scrape(http, "dispatch_consumer_committed_offset", group=group_id, topic=raw) == 0
        )
