"""Which errors leave a pooled connection that must not go back to the pool (consumers.db.pool).

Under the sink's writes, PostgreSQL stopped mid-statement left a connection half-way through an
exchange; given back, the pool's reset raised asyncpg's InternalClientError ("cannot switch to
state 15; another operation is in progress"), which is no database error: the sink's writer
died instead of waiting for PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from consumers.db.pool import mid_exchange


def postgres_error(sqlstate: str) -> asyncpg.PostgresError:
    # The class asyncpg raises for that SQLSTATE, as the server's error response makes it.
    lookup = getattr(asyncpg.PostgresError, "get_message_class_for_sqlstate")  # noqa: B009
    error_class: type[asyncpg.PostgresError] = lookup(sqlstate)
    error = error_class("from the server")
    assert error.sqlstate == sqlstate
    return error


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionResetError(),
        TimeoutError(),
        asyncio.CancelledError(),
        asyncpg.exceptions.ConnectionDoesNotExistError("closed in the middle of operation"),
        asyncpg.exceptions.InternalClientError("another operation is in progress"),
        postgres_error("57P01"),  # admin shutdown: the server is stopping
        postgres_error("08006"),  # connection failure
    ],
    ids=repr,
)
def test_a_broken_exchange_is_never_given_back(exc: BaseException) -> None:
    assert mid_exchange(exc)


@pytest.mark.parametrize(
    "exc",
    [
        postgres_error("22021"),  # a record the server refused: the connection is ready again
        postgres_error("23505"),
        postgres_error("40P01"),  # a deadlock victim: its transaction rolled back, ready again
        ValueError("the caller's own error"),
    ],
    ids=repr,
)
def test_a_refused_statement_or_the_callers_error_keeps_the_connection(
    exc: BaseException,
) -> None:
    assert not mid_exchange(exc)
