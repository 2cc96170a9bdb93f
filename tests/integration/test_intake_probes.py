"""Intake's probes and its Swagger page: /healthz, /readyz with each dependency down, /docs.

Kafka and PostgreSQL are really stopped: each test that stops one has a private one of its
own, so the session's services stay up for the other tests.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest

from consumers.intake import build_app
from dispatch.settings import Settings
from infra.kafka import KafkaBroker
from infra.postgres import PostgresServer
from infra.stack import private_settings
from infra.topics import TopicDecl, ensure_topics
from tests.integration.scrape import scrape
from tests.integration.test_intake_api import ALARM, Service, desk, serving, started_producer
from tests.integration.test_intake_api import http as http
from tests.integration.test_intake_api import private_broker as private_broker
from tests.integration.test_intake_api import service as service

WAIT_S = 60.0  # a hang guard, not a performance bound
READY = {"status": "ready", "checks": {"kafka": "ok", "postgres": "ok"}, "not_ready": []}


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[PostgresServer]:
    """Return (unstarted) a PostgreSQL server of this test's own, which it may stop."""
    server = PostgresServer(private_settings(tmp_path / "state"))
    yield server
    server.down(print)


@asynccontextmanager
async def intake_on(bootstrap: str, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    """Serve intake on this broker and pool; yield an HTTP client of it."""
    async with (
        started_producer(bootstrap, request_timeout_ms=2000) as producer,
        serving(build_app(Settings(), producer=producer, pool=pool)) as url,
        httpx.AsyncClient(base_url=url, timeout=WAIT_S) as client,
    ):
        yield client


async def until_ready(http: httpx.AsyncClient) -> None:
    """Ask /readyz until it answers 200 (a probe is what a load balancer would poll)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            if (await http.get("/readyz")).status_code == 200:
                return
            await asyncio.sleep(0.2)


async def test_healthz_and_readyz_need_no_token(http: httpx.AsyncClient) -> None:
    health = await http.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = await http.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, READY)


async def test_readyz_names_kafka_while_the_broker_is_down(
    postgres_url: str, private_broker: KafkaBroker
) -> None:
    await asyncio.to_thread(private_broker.up, print)
    bootstrap = private_broker.settings.local_kafka_bootstrap
    await ensure_topics(bootstrap, [TopicDecl(f"t.alarms.raw.{uuid.uuid4().hex[:8]}", 1)])
    async with (
        asyncpg.create_pool(postgres_url, min_size=1, max_size=2) as pool,
        intake_on(bootstrap, pool) as http,
    ):
        assert (await http.get("/readyz")).json() == READY
        await asyncio.to_thread(private_broker.down, print)
        down = await http.get("/readyz")
        assert down.status_code == 503
        assert down.json()["not_ready"] == ["kafka"]
        assert down.json()["checks"]["postgres"] == "ok"
        assert (await http.get("/healthz")).status_code == 200  # alive all the same
        await asyncio.to_thread(private_broker.up, print)
        await until_ready(http)


async def test_readyz_names_postgres_while_it_is_down(
    bootstrap: str, private_postgres: PostgresServer
) -> None:
    await asyncio.to_thread(private_postgres.up, print)
    async with (
        asyncpg.create_pool(private_postgres.url(), min_size=1, max_size=2) as pool,
        intake_on(bootstrap, pool) as http,
    ):
        assert (await http.get("/readyz")).json() == READY
        await asyncio.to_thread(private_postgres.down, print)
        down = await http.get("/readyz")
        assert down.status_code == 503
        assert down.json()["not_ready"] == ["postgres"]
        assert down.json()["checks"]["kafka"] == "ok"
        await asyncio.to_thread(private_postgres.up, print)
        await until_ready(http)


async def test_the_swagger_page_loads_every_asset_from_the_service(
    http: httpx.AsyncClient,
) -> None:
    page = await http.get("/docs")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    # Nothing from another host: the page works on a network without Internet access.
    assert not re.search(r"""(src|href|url)\s*[=:]\s*["']?(https?:)?//""", page.text)
    assets = re.findall(r"""(?:src|href)="([^"]+)\"""", page.text)
    assert len(assets) == 4, assets
    for asset in assets:
        response = await http.get(asset)
        assert response.status_code == 200, asset
        assert response.content, asset
    assert "SwaggerUIBundle" in (await http.get("/docs/assets/swagger-ui-bundle.js")).text
    assert (await http.get("/docs/assets/index.html")).status_code == 404
    assert (await http.get("/docs/assets/..%2Fpyproject.toml")).status_code == 404
    document = (await http.get("/openapi.json")).json()
    assert "/readyz" in document["paths"]
    assert "/docs" not in document["paths"]


async def test_metrics_need_no_token_and_count_alarms_in_and_refusals(
    service: Service, http: httpx.AsyncClient
) -> None:
    alarms_before = await scrape(http, "dispatch_intake_alarms_total", source_kind="desk")
    refused_before = await scrape(http, "dispatch_intake_refusals_total", status="401")
    caller, _ = await desk(service)
    accepted = await http.post("/v1/alarms", json=ALARM, headers=caller.headers)
    assert accepted.status_code == 202, accepted.text
    assert (await http.post("/v1/alarms", json=ALARM)).status_code == 401
    assert await scrape(http, "dispatch_intake_alarms_total", source_kind="desk") == (
        alarms_before + 1
    )
    assert await scrape(http, "dispatch_intake_refusals_total", status="401") == (
        refused_before + 1
    )
