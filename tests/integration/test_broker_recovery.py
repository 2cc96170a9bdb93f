"""Intake and the push gateway take records again once a broker that restarted or froze is back.

Both run under a steady load: desks raising alarms over HTTP (each re-sending with its key
after a 503, as clients should) and a commander sending commands over the websocket (each
re-sent after `unavailable`). Neither service is restarted. Before the fix, a broker restart
left every idempotent producer failing each send with OutOfOrderSequenceNumber for good.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import astuple

import asyncpg
import httpx
import pytest

from consumers.auth import Role
from consumers.intake import build_app
from consumers.push import PushGateway, PushTopics
from consumers.push.protocol import ErrorCode, ErrorFrame, OkFrame, WelcomeFrame
from dispatch.settings import Settings
from infra.kafka import KafkaBroker
from infra.topics import TopicDecl, ensure_topics
from tests.integration.principals import Caller, enterprise, fresh_store, make_caller
from tests.integration.test_intake_api import ALARM, alarms_on, serving, started_producer
from tests.integration.test_intake_api import private_broker as private_broker
from tests.integration.test_push_gateway import Client, client, command, frozen_broker

WAIT_S = 120.0  # a hang guard, not a performance bound
DESKS = 6
COMMANDERS = 3
PAUSE_S = 0.05  # between one source's requests: a steady load, not a flood
TIMEOUT_S = 2.0  # how long intake and the gateway wait for Kafka before answering 503
UNLIMITED = 100_000  # rate limit per minute: the load must not be refused for its rate


class Sources:
    """What each source last heard: accepted or refused; await a condition over all of them."""

    def __init__(self, names: list[str]) -> None:
        self.names = set(names)
        self.accepted: set[str] = set()
        self.refused: set[str] = set()
        self.unexpected: list[str] = []
        self.stopping = False
        self._changed = asyncio.Condition()

    async def heard(self, name: str, accepted: bool) -> None:
        """Record an answer to source name."""
        (self.accepted if accepted else self.refused).add(name)
        async with self._changed:
            self._changed.notify_all()

    def mark(self) -> None:
        """Forget what was heard so far; the conditions count answers from now on."""
        self.accepted.clear()
        self.refused.clear()

    async def until(self, what: str, seen: Callable[[], set[str]]) -> None:
        """Wait until every source is in seen(); fail naming those that are not."""
        try:
            async with asyncio.timeout(WAIT_S), self._changed:
                await self._changed.wait_for(lambda: seen() >= self.names)
        except TimeoutError:
            pytest.fail(f"not {what} after {WAIT_S:g} s: {sorted(self.names - seen())}")
        assert self.unexpected == [], self.unexpected


async def raise_alarms(http: httpx.AsyncClient, desk: Caller, sources: Sources) -> list[str]:
    """Raise alarms until told to stop, each re-sent with its key until accepted; return keys."""
    keys: list[str] = []
    while not sources.stopping:
        key = f"{desk.id}:{len(keys)}"
        response = await http.post(
            "/v1/alarms", json=ALARM | {"idempotency_key": key}, headers=desk.headers
        )
        if response.status_code == 202:
            keys.append(key)
        elif response.status_code != 503:
            sources.unexpected.append(f"{desk.id}: {response.status_code} {response.text}")
        await sources.heard(desk.id, response.status_code == 202)
        await asyncio.sleep(PAUSE_S)
    return keys


async def command_away(name: str, cmd: Client, sources: Sources) -> None:
    """Cancel incidents until told to stop, each command re-sent until Kafka has it."""
    while not sources.stopping:
        frame = command("cancel", uuid.uuid4())
        while not sources.stopping:
            await cmd.send(**frame)
            answer = await cmd.frame()
            refused = isinstance(answer, ErrorFrame) and answer.code == ErrorCode.UNAVAILABLE
            if not (isinstance(answer, OkFrame) or refused):
                sources.unexpected.append(f"{name}: {answer}")
            await sources.heard(name, isinstance(answer, OkFrame))
            await asyncio.sleep(PAUSE_S)
            if isinstance(answer, OkFrame):
                break


@asynccontextmanager
async def under_load(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[Sources]:
    """Run intake and a gateway on settings' broker, with desks and a commander using them."""
    bootstrap = settings.bootstrap_servers
    topic = f"t.alarms.raw.{uuid.uuid4().hex[:12]}"
    topics = PushTopics.with_prefix(f"t{uuid.uuid4().hex[:10]}.")
    await ensure_topics(bootstrap, [TopicDecl(name, 2) for name in (topic, *astuple(topics))])
    desks = [await make_caller(pool, Role.DESK, enterprise_id=enterprise()) for _ in range(DESKS)]
    commanders = [await make_caller(pool, Role.COMMANDER) for _ in range(COMMANDERS)]
    sources = Sources([caller.id for caller in desks + commanders])
    limits = settings.model_copy(update={"rate_limit_per_minute": UNLIMITED})
    async with AsyncExitStack() as stack:
        producer = await stack.enter_async_context(
            started_producer(bootstrap, request_timeout_ms=2000)
        )
        app = build_app(
            limits, producer=producer, pool=pool, topic=topic, kafka_timeout_s=TIMEOUT_S
        )
        url = await stack.enter_async_context(serving(app))
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=WAIT_S))
        gateway = PushGateway(
            limits,
            pool,
            topics=topics,
            group_id=f"g.{uuid.uuid4().hex[:12]}",
            port=0,
            publish_timeout_s=TIMEOUT_S,
        )
        gw = await stack.enter_async_context(gateway)
        load = [asyncio.create_task(raise_alarms(http, desk, sources)) for desk in desks]
        commanding = []
        for commander in commanders:
            cmd = await stack.enter_async_context(client(gw, commander.secret))
            assert (await cmd.expect(WelcomeFrame)).channel == "commander"
            commanding.append(asyncio.create_task(command_away(commander.id, cmd, sources)))
        try:
            await sources.until("accepted before the fault", lambda: sources.accepted)
            yield sources
        finally:
            sources.stopping = True
            keys = await asyncio.gather(*load)
            await asyncio.gather(*commanding)
        # Whatever was re-sent across the fault, one key stands for one alarm on the topic.
        records = await alarms_on(bootstrap, topic, 2)
        ids_of: dict[str | None, set[uuid.UUID]] = {}
        for _, alarm in records:
            ids_of.setdefault(alarm.idempotency_key, set()).add(alarm.alarm_id)
        assert {key for desk_keys in keys for key in desk_keys} <= set(ids_of)
        assert all(len(ids) == 1 for ids in ids_of.values())


async def test_intake_and_the_gateway_send_again_after_the_broker_restarts(
    running_stack: Settings, postgres_url: str, private_broker: KafkaBroker
) -> None:
    await asyncio.to_thread(private_broker.up, print)
    bootstrap = private_broker.settings.local_kafka_bootstrap
    settings = running_stack.model_copy(update={"kafka_bootstrap": bootstrap})
    async with fresh_store(postgres_url) as pool, under_load(settings, pool) as sources:
        sources.mark()
        # A clean stop (SIGTERM) while records are in flight, then a start on the same data.
        await asyncio.to_thread(private_broker.down, print)
        await sources.until("refused while the broker is down", lambda: sources.refused)
        await asyncio.to_thread(private_broker.up, print)
        sources.mark()
        await sources.until("accepted again after the broker's return", lambda: sources.accepted)


async def test_intake_and_the_gateway_send_again_after_the_broker_was_frozen(
    running_stack: Settings, postgres_url: str
) -> None:
    async with fresh_store(postgres_url) as pool, under_load(running_stack, pool) as sources:
        sources.mark()
        # Frozen (SIGSTOP) until every source has been refused: connections stay open, and
        # requests in flight time out on the client's side.
        with frozen_broker(running_stack):
            await sources.until("refused while the broker is frozen", lambda: sources.refused)
        sources.mark()
        await sources.until("accepted again after the broker thawed", lambda: sources.accepted)
