"""Schemathesis fuzzes the running intake API from its own OpenAPI document: never a 5xx.

Schemathesis calls the server synchronously (requests) from the test's thread, so the server
runs in a thread of its own with its own event loop, on the session's real Kafka (a fresh
topic) and PostgreSQL (a fresh schema).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error

from consumers.auth import Role
from consumers.intake import build_app
from dispatch.settings import Settings
from infra.topics import TopicDecl, ensure_topics
from tests.integration.test_intake_api import fresh_store, make_caller, serving, started_producer

WAIT_S = 60.0  # a hang guard, not a performance bound
MAX_EXAMPLES = 50  # per operation and phase: enough to find a crash, small enough for CI


@dataclass(frozen=True)
class Target:
    """Where the fuzzed server listens, and a token of a desk and of a commander."""

    url: str
    desk_secret: str
    commander_secret: str


class ServerThread(threading.Thread):
    """Run the intake API, its pool and producer in an event loop of this thread."""

    def __init__(self, *, bootstrap: str, postgres_url: str) -> None:
        super().__init__(name="intake-under-fuzz", daemon=True)
        self.bootstrap = bootstrap
        self.postgres_url = postgres_url
        self.ready = threading.Event()
        self.target: Target | None = None
        self.failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._finish: asyncio.Event | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # handed to the test's thread, which raises it
            self.failure = exc
        finally:
            self.ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._finish = asyncio.Event()
        topic = f"t.alarms.raw.{uuid.uuid4().hex[:12]}"
        await ensure_topics(self.bootstrap, [TopicDecl(topic, 1)])
        # The highest limit settings allow: fuzzing should reach the handlers, not the 429.
        settings = Settings(rate_limit_per_minute=100_000)
        async with (
            fresh_store(self.postgres_url) as pool,
            started_producer(self.bootstrap) as producer,
            serving(build_app(settings, producer=producer, pool=pool, topic=topic)) as url,
        ):
            desk = await make_caller(pool, Role.DESK, enterprise_id="ent-fuzz")
            commander = await make_caller(pool, Role.COMMANDER)
            self.target = Target(url, desk.secret, commander.secret)
            self.ready.set()
            await self._finish.wait()

    def stop(self) -> None:
        """Ask the server to finish and wait for the thread to clean up."""
        if self._loop is not None and self._finish is not None:
            self._loop.call_soon_threadsafe(self._finish.set)
        self.join(WAIT_S)


@pytest.fixture(scope="module")
def target(bootstrap: str, postgres_url: str) -> Iterator[Target]:
    """Run the intake API in its own thread for this module."""
    thread = ServerThread(bootstrap=bootstrap, postgres_url=postgres_url)
    thread.start()
    assert thread.ready.wait(WAIT_S), "the intake API did not start"
    try:
        if thread.failure is not None:
            raise thread.failure
        assert thread.target is not None
        yield thread.target
    finally:
        thread.stop()
    assert not thread.is_alive(), "the intake API did not stop"
    if thread.failure is not None:
        raise thread.failure


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32's from_fixture reads and rewrites Function._nodeid to label each
    # operation, an attribute pytest 9.2 no longer has (it keeps `_id`); give it one to use.
    # Nothing in pytest reads it. Drop this once schemathesis follows pytest.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


def served_schema(url: str, secret: str) -> schemathesis.BaseSchema:
    """Load the OpenAPI document the running service serves, authenticating with secret."""
    config = schemathesis.Config.from_dict(
        {
            # Valid and invalid input alike; the bearer fills the document's HTTPBearer scheme.
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES},
            "auth": {"openapi": {"HTTPBearer": {"bearer": secret}}},
        }
    )
    return schemathesis.openapi.from_url(f"{url}/openapi.json", config=config)


@pytest.fixture
def desk_schema(target: Target) -> schemathesis.BaseSchema:
    """Return the served document, called as a desk (most bodies name another enterprise)."""
    return served_schema(target.url, target.desk_secret)


@pytest.fixture
def commander_schema(target: Target) -> schemathesis.BaseSchema:
    """Return the served document, called as the commander."""
    # The commander may raise for any enterprise, so every valid body goes all the way to
    # Kafka and the receipts table.
    return served_schema(target.url, target.commander_secret)


as_desk = schemathesis.pytest.from_fixture("desk_schema")
as_commander = schemathesis.pytest.from_fixture("commander_schema")


@as_desk.parametrize()
@hypothesis.settings(max_examples=MAX_EXAMPLES, deadline=None)
def test_no_request_of_a_desk_makes_a_server_error(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate(checks=[not_a_server_error], timeout=WAIT_S)


@as_commander.parametrize()
@hypothesis.settings(max_examples=MAX_EXAMPLES, deadline=None)
def test_no_request_of_the_commander_makes_a_server_error(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate(checks=[not_a_server_error], timeout=WAIT_S)
