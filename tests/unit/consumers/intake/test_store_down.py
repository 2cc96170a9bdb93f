"""A PostgreSQL that is shutting down, starting or full is "store down" (503), not a bug (500).

The app runs as plain ASGI on a pool that raises what asyncpg raises in each case, so no
server is needed: which errors mean "unavailable" is the intake's decision, tested here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
import httpx
import pytest

from consumers.intake import build_app
from consumers.kafka_producer import RecoveringProducer
from dispatch.settings import Settings

TOKEN = {"Authorization": "Bearer dsp_" + "A" * 43}


class RefusingConnection:
    """A connection whose every statement fails with the error given."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def fetchrow(self, *_: Any) -> None:
        raise self.error

    async def fetchval(self, *_: Any) -> None:
        raise self.error

    async def execute(self, *_: Any) -> None:
        raise self.error


class RefusingPool:
    """A pool that fails at acquire (cannot connect) or at the first statement (mid-query)."""

    def __init__(self, error: Exception, *, at_acquire: bool) -> None:
        self.error = error
        self.at_acquire = at_acquire

    @asynccontextmanager
    async def acquire(self, **_: float) -> AsyncIterator[RefusingConnection]:
        if self.at_acquire:
            raise self.error
        yield RefusingConnection(self.error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.CannotConnectNowError("the database system is shutting down"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.CrashShutdownError("terminating connection because of crash of another"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    ],
)
@pytest.mark.parametrize("at_acquire", [True, False])
async def test_a_postgres_that_cannot_answer_now_is_503(error: Exception, at_acquire: bool) -> None:
    pool = cast(asyncpg.Pool, RefusingPool(error, at_acquire=at_acquire))
    # Never started: these requests fail at authentication, before anything is produced.
    producer = RecoveringProducer("127.0.0.1:9")
    app = build_app(Settings(), producer=producer, pool=pool)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as http:
        raised = await http.post("/v1/alarms", json={"text": "fire"}, headers=TOKEN)
        read = await http.get("/v1/alarms/6a01a2c7-e38b-4c2e-88e1-d7c7b66d7719", headers=TOKEN)
    for response in (raised, read):
        assert response.status_code == 503, response.text
        assert "PostgreSQL" in response.json()["error"]
