"""A PostgreSQL that stops answering looks like one that is down: a block borrowed with a
deadline ends in TimeoutError (which consumers.db.faults counts as "database down"), its
connection is terminated instead of going back to the pool, and the pool goes on serving."""

from __future__ import annotations

import asyncio

import pytest

from consumers.db.faults import DATABASE_DOWN, is_record_fault
from consumers.db.pool import STATEMENT_TIMEOUT_S, connection, open_pool


async def test_a_block_past_its_deadline_raises_and_its_connection_is_not_reused(
    postgres_url: str,
) -> None:
    pool = await open_pool(postgres_url, min_size=1, max_size=1)
    try:
        held: list[int] = []

        async def slow_block() -> None:
            async with connection(pool, within_s=0.5) as conn:
                held.append(await conn.fetchval("SELECT pg_backend_pid()"))
                # A statement the server takes far longer to answer than the block may last.
                await conn.execute("SELECT pg_sleep(30)")

        with pytest.raises(TimeoutError) as raised:
            await slow_block()
        assert isinstance(raised.value, DATABASE_DOWN)
        assert not is_record_fault(raised.value)
        # The pool's only connection was terminated; the next borrower gets a fresh one.
        async with connection(pool, within_s=10.0) as conn:
            assert await conn.fetchval("SELECT pg_backend_pid()") not in held
            assert await conn.fetchval("SELECT 1") == 1
    finally:
        await asyncio.wait_for(pool.close(), 10.0)


async def test_a_block_within_its_deadline_returns_its_connection_to_the_pool(
    postgres_url: str,
) -> None:
    pool = await open_pool(postgres_url, min_size=1, max_size=1)
    try:
        async with connection(pool, within_s=10.0) as conn:
            first = await conn.fetchval("SELECT pg_backend_pid()")
        async with connection(pool, within_s=10.0) as conn:
            assert await conn.fetchval("SELECT pg_backend_pid()") == first
    finally:
        await asyncio.wait_for(pool.close(), 10.0)


async def test_every_statement_of_a_service_pool_is_bounded(postgres_url: str) -> None:
    assert STATEMENT_TIMEOUT_S > 0  # what the services' pools use; a short one here
    pool = await open_pool(postgres_url, min_size=1, max_size=1, statement_timeout_s=0.5)
    try:
        async with connection(pool) as conn:
            with pytest.raises(TimeoutError):
                await conn.execute("SELECT pg_sleep(30)")
        # The statement was cancelled on the server: the connection serves the next one.
        async with connection(pool) as conn:
            assert await conn.fetchval("SELECT 1") == 1
    finally:
        await asyncio.wait_for(pool.close(), 10.0)
