"""Tell a record PostgreSQL cannot store from a PostgreSQL that is down.

A consumer that copies Kafka records into PostgreSQL must never retry for ever a record the
database refuses (a NUL in text: the partition behind it would wait for good), nor drop a
record because the database was away for a moment. Every store error is one of the two.
"""

from __future__ import annotations

import asyncio

import asyncpg

# Every error a store call can raise. Most mean "the database is not there right now" (retry,
# or answer "unavailable"); is_record_fault tells apart those that mean "not this data".
# asyncpg's InternalClientError (and its ProtocolError) is the driver's state for a connection
# the server broke mid-exchange ("another operation is in progress"): the connection is
# terminated (consumers.db.pool.connection) and the next try opens a fresh one.
DATABASE_DOWN = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)
# SQLSTATE classes that blame the data, not the server: 22 data exception (a NUL in text, an
# untranslatable character, a value out of range or too long; asyncpg's own encoding errors
# are 22000 too), 23 integrity constraint violation (a check, a foreign or unique key that is
# not our idempotency, which the queries absorb with ON CONFLICT), 54 program limit exceeded
# (an index row too large for this value). Every other class, 08 connection, 57P shutdown,
# 53 resources, 40001 serialization, 40P01 deadlock, 42 a missing table, is the database's
# or the deployment's and is retried: it heals without touching the record.
RECORD_FAULT_CLASSES = frozenset({"22", "23", "54"})


def is_record_fault(exc: BaseException) -> bool:
    """Tell whether a store error means "this record cannot be stored" (not "database down")."""
    if isinstance(exc, UnicodeError):
        return True  # text that has no UTF-8 form (a lone surrogate) never will
    if not isinstance(exc, asyncpg.PostgresError):
        return False
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in RECORD_FAULT_CLASSES


def describe_fault(exc: BaseException) -> str:
    """Return one line naming a store error, its SQLSTATE and its message, for a reason."""
    sqlstate = getattr(exc, "sqlstate", None)
    code = f" ({sqlstate})" if isinstance(sqlstate, str) else ""
    # asyncpg puts the server's DETAIL on a line of its own: one line reads better in a log.
    return f"{type(exc).__name__}{code}: {' '.join(str(exc).split())}"
