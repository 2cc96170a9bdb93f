"""Open the services' PostgreSQL pools; borrow a pooled connection typed as the Connection the
store functions take, optionally with a deadline for the whole block.

A PostgreSQL that stops answering (frozen, a half-open socket, a protocol deadlock in the
driver) must look like a PostgreSQL that is down: the caller's retry or its "unavailable"
answer then runs, instead of a task waiting for ever on a socket. Every statement of a
service's pool is bounded (STATEMENT_TIMEOUT_S), and a caller that writes a batch in several
statements bounds the whole block with `within_s`: past it the connection is terminated (not
given back to the pool half-way through a protocol exchange) and TimeoutError raised, which
consumers.db.faults counts as "database down".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import asyncpg

# A statement that has had no answer this long is treated as a database that is away.
STATEMENT_TIMEOUT_S = 30.0


async def open_pool(
    url: str, *, min_size: int, max_size: int, statement_timeout_s: float = STATEMENT_TIMEOUT_S
) -> asyncpg.Pool:
    """Open a service's pool: asyncpg bounds every statement of it (COPY included) by
    statement_timeout_s."""
    return await asyncpg.create_pool(
        url, min_size=min_size, max_size=max_size, command_timeout=statement_timeout_s
    )


@asynccontextmanager
async def connection(
    pool: asyncpg.Pool, *, within_s: float | None = None
) -> AsyncIterator[asyncpg.Connection]:
    """Borrow a connection from pool for the block; with within_s, the borrowing and the block
    together must end within that many seconds, else the connection is terminated and
    TimeoutError raised.

    A block that ends on a broken exchange (a socket error, a timeout, a cancellation, the
    server closing or shutting down) terminates its connection before giving it back: the
    pool's reset of a connection left mid-exchange raises an internal client error instead of
    the database error (seen when PostgreSQL was stopped under the sink's writes)."""
    deadline = None if within_s is None else asyncio.get_running_loop().time() + within_s
    async with pool.acquire(timeout=within_s) as proxy:
        try:
            if deadline is None:
                # The pool's proxy forwards every Connection method; the stubs do not relate
                # them.
                yield cast(asyncpg.Connection, proxy)
            else:
                async with asyncio.timeout_at(deadline):
                    yield cast(asyncpg.Connection, proxy)
        except BaseException as exc:
            if mid_exchange(exc):
                # Its state is unknown: never reuse it.
                proxy.terminate()
            raise


def mid_exchange(exc: BaseException) -> bool:
    """Tell whether an error may have left a connection half-way through a protocol exchange.
    A statement the server refused (an error response of its own) leaves it ready for the
    next; so does an error of the caller's own code."""
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", None)
        # 08: connection exception; 57: operator intervention (the server shutting down).
        return isinstance(sqlstate, str) and sqlstate[:2] in ("08", "57")
    return isinstance(
        exc,
        OSError
        | TimeoutError
        | asyncio.CancelledError
        | asyncpg.InterfaceError
        | asyncpg.exceptions.InternalClientError,
    )
