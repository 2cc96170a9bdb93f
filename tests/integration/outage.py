"""A PostgreSQL server of a test's own, which the test may stop and start again.

The session's server is shared by every test, so a test that takes the database down runs
its own: the project's launcher (infra.postgres) on a fresh state directory and free ports.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from infra.postgres import PostgresServer
from infra.stack import private_settings


def _quiet(_line: str) -> None:
    """Swallow the launcher's progress lines."""


class PrivatePostgres:
    """A running PostgreSQL server that a test owns."""

    def __init__(self, server: PostgresServer) -> None:
        self._server = server

    @property
    def url(self) -> str:
        """Return the URL of the app role on this server."""
        return self._server.url()

    async def stop(self) -> None:
        """Stop the server (fast shutdown: every connection is closed)."""
        # The launcher waits for pg_ctl with its own event loop: run it in a thread.
        await asyncio.to_thread(self._server.down, _quiet)

    async def start(self) -> None:
        """Start the server again on the same port and data directory."""
        await asyncio.to_thread(self._server.up, _quiet)

    @asynccontextmanager
    async def stopped(self) -> AsyncIterator[None]:
        """Keep the server stopped for the duration of the block."""
        await self.stop()
        try:
            yield
        finally:
            await self.start()


@asynccontextmanager
async def private_postgres(state_dir: Path) -> AsyncIterator[PrivatePostgres]:
    """Start a PostgreSQL server in state_dir; stop it afterwards."""
    server = PostgresServer(private_settings(state_dir))
    await asyncio.to_thread(server.up, _quiet)
    try:
        yield PrivatePostgres(server)
    finally:
        await asyncio.to_thread(server.down, _quiet)
