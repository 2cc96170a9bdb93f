"""No poison pill where records meet PostgreSQL: the outbox and the reconciler's ledger either
store a record or say it is the record's fault (never "database down", which would be retried
for ever), and the next good record is stored.

Valid events whose text holds what PostgreSQL refuses (NUL, lone surrogates) or dates at the
ends of the calendar, on the real server; each example on a connection of its own.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from consumers.db import migrate
from consumers.db.faults import DATABASE_DOWN, is_record_fault
from consumers.push.store import append_assignments
from consumers.reconciler import ledger
from consumers.reconciler.ledger import SeenAlarm
from dispatch.events import (
    Assignment,
    AssignmentKind,
    AssignmentRole,
    Category,
    Position,
    Priority,
    RawAlarm,
    SourceKind,
    encode,
)
from tests.poison import nasty_text

PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
words = nasty_text.filter(lambda t: 0 < len(t) <= 200)
# Alarms from any moment up to now (one from the future is refused before it gets here).
past = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime.now(), timezones=st.just(UTC))


def job(unit_id: str, *, text: str = "有人打架", place: str = "恒通 · 2号门") -> Assignment:
    """Return a job for unit_id with these words in it."""
    now = datetime.now(UTC)
    return Assignment(
        assignment_id=uuid.uuid4(),
        incident_id=uuid.uuid4(),
        unit_id=unit_id,
        kind=AssignmentKind.ASSIGNMENT,
        role=AssignmentRole.PRIMARY,
        attempt=1,
        priority=Priority.P2,
        category=Category.FIGHT,
        position=Position(lat=31.7, lon=113.4),
        place_name=place,
        dispatched_at=now,
        ack_deadline=now + timedelta(seconds=60),
        summary=text,
        text=text,
    )


async def on_fresh_schema(postgres_url: str) -> asyncpg.Connection:
    """Return a connection whose search_path is a fresh, migrated schema."""
    conn = await asyncpg.connect(postgres_url)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    # Schema names cannot be bind parameters; this one is generated here, never user input.
    await conn.execute(f'CREATE SCHEMA "{schema}"; SET search_path TO "{schema}"')
    await migrate(conn)
    return conn


async def dropped(conn: asyncpg.Connection) -> None:
    schema = await conn.fetchval("SELECT current_schema()")
    await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await conn.close()


@PROPERTY
@given(text=words, place=words)
def test_the_outbox_stores_any_job_or_blames_the_record(
    postgres_url: str, text: str, place: str
) -> None:
    try:
        hostile = job("cd-patrol-1", text=text, place=place)
    except ValidationError:
        assume(False)  # not an Assignment at all: refused at decode, before any store
        return

    async def check() -> None:
        conn = await on_fresh_schema(postgres_url)
        try:
            refused = await stored_or_refusal(conn, hostile)
            assert refused is None or is_record_fault(refused), refused
            # The next good job of the same unit is stored, after whatever came before.
            good = await append_assignments(conn, [job("cd-patrol-1")])
            assert [row.unit_id for row in good] == ["cd-patrol-1"]
        finally:
            await dropped(conn)

    asyncio.run(check())


async def stored_or_refusal(conn: asyncpg.Connection, assignment: Assignment) -> Exception | None:
    """Store one job; return the store's error, or None once it is stored."""
    try:
        stored = await append_assignments(conn, [assignment])
    except (*DATABASE_DOWN, UnicodeError) as exc:
        return exc
    assert len(stored) == 1
    return None


@PROPERTY
@given(received=past)
def test_the_ledger_keeps_an_alarm_from_any_moment_and_the_next_one(
    postgres_url: str, received: datetime
) -> None:
    def seen(at: datetime) -> SeenAlarm:
        alarm = RawAlarm(
            alarm_id=uuid.uuid4(),
            received_at=at,
            source_kind=SourceKind.HOTLINE,
            source_id="hotline-1",
            text="有人打架",
        )
        return SeenAlarm(alarm, partition=0, offset=1, raw=encode(alarm))

    async def check() -> None:
        conn = await on_fresh_schema(postgres_url)
        try:
            refused: Exception | None = None
            try:
                await ledger.record(conn, [seen(received)], [])
            except DATABASE_DOWN as exc:
                refused = exc
            assert refused is None or is_record_fault(refused), refused
            await ledger.record(conn, [seen(datetime.now(UTC))], [])
            assert await conn.fetchval("SELECT count(*) FROM ledger_alarms") >= 1
        finally:
            await dropped(conn)

    asyncio.run(check())
