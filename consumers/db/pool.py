"""Borrow a pooled PostgreSQL connection typed as the Connection the store functions take."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import asyncpg


@asynccontextmanager
async def connection(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """Borrow a connection from pool for the block."""
    async with pool.acquire() as proxy:
        # The pool's proxy forwards every Connection method; the stubs do not relate the types.
        yield cast(asyncpg.Connection, proxy)
