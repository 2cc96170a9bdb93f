"""The gateway's probes over plain HTTP, without a token: /healthz and /readyz."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from consumers.auth import Role
from consumers.push import PushTopics
from dispatch.settings import Settings
from tests.integration.principals import make_caller
from tests.integration.scrape import scrape
from tests.integration.test_push_gateway import (
    eventually,
    frozen_broker,
    gateway,
    job_for,
    produce,
    stamped,
    unit_client,
)
from tests.integration.test_push_gateway import pool as pool
from tests.integration.test_push_gateway import producer as producer
from tests.integration.test_push_gateway import topics as topics


async def test_the_gateway_answers_health_and_readiness_without_a_token(
    running_stack: Settings, pool: asyncpg.Pool, topics: PushTopics, group_id: str
) -> None:
    async with (
        gateway(running_stack, pool, topics, group_id) as gw,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.port}", timeout=30) as plain,
    ):
        health = await plain.get("/healthz")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        ready = await plain.get("/readyz")
        assert ready.status_code == 200
        assert ready.headers["Content-Type"] == "application/json"
        assert ready.json() == {
            "status": "ready",
            "checks": {"kafka": "ok", "postgres": "ok"},
            "not_ready": [],
        }
        # The pages are open (they hold no data: docs/pages.md); nothing else is served over
        # plain HTTP, with a token or without.
        index = await plain.get("/")
        assert index.status_code == 200
        assert "Content-Security-Policy" in index.headers
        assert (await plain.get("/jobs")).status_code == 426
        bad = await plain.get("/jobs", headers={"Authorization": "Bearer dsp_unknown"})
        assert bad.status_code == 401


async def test_the_gateway_is_not_ready_while_kafka_does_not_answer(
    running_stack: Settings, pool: asyncpg.Pool, topics: PushTopics, group_id: str
) -> None:
    async with (
        gateway(running_stack, pool, topics, group_id) as gw,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.port}", timeout=30) as plain,
    ):
        with frozen_broker(running_stack):
            frozen = await plain.get("/readyz")
            health = await plain.get("/healthz")
        assert frozen.status_code == 503
        assert frozen.json()["not_ready"] == ["kafka"]
        assert frozen.json()["checks"]["postgres"] == "ok"
        assert health.status_code == 200
        # Thawed, it is ready again without a restart (polled, as a load balancer would).
        async with asyncio.timeout(60):
            while True:
                if (await plain.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.2)


async def test_the_gateway_metrics_show_connections_jobs_backlog_and_ack_times(
    running_stack: Settings,
    pool: asyncpg.Pool,
    topics: PushTopics,
    producer: AIOKafkaProducer,
    group_id: str,
) -> None:
    unit = await make_caller(pool, Role.PATROL)
    async with (
        gateway(running_stack, pool, topics, group_id) as gw,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.port}", timeout=30) as plain,
    ):
        assert await scrape(plain, "dispatch_push_connected", channel="unit") == 0
        sent_before = await scrape(plain, "dispatch_push_jobs_sent_total")
        acks_before = await scrape(plain, "dispatch_push_ack_seconds_count")
        async with unit_client(gw, unit) as (c, _):
            assert await scrape(plain, "dispatch_push_connected", channel="unit") == 1
            await produce(producer, topics.assignments, job_for(unit.unit), job_for(unit.unit))
            await c.jobs(2)
            # Both jobs stored, none acknowledged: the backlog holds at least these two.
            assert await scrape(plain, "dispatch_push_outbox_backlog") >= 2
            assert await scrape(plain, "dispatch_push_jobs_sent_total") == sent_before + 2
            await c.send(type="ack", seq=2)
            await eventually(lambda: stamped(pool, unit.unit, 2))
            assert await scrape(plain, "dispatch_push_ack_seconds_count") == acks_before + 2
        await eventually(lambda: _scraped_is(plain, "dispatch_push_connected", 0.0, channel="unit"))


async def _scraped_is(client: httpx.AsyncClient, name: str, value: float, **labels: str) -> bool:
    return await scrape(client, name, **labels) == value
