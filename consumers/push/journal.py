"""Events the gateway publishes on a person's behalf, recorded with their audit entry first.

A commander's command, a unit's answer and a unit's change of availability take effect once
they are on Kafka. Each is written to `published_events` together with its audit row, in one
transaction, before it is published, and marked published once Kafka has it. So no event can
take effect without its audit entry, and an `unavailable` answer is true: either nothing was
recorded (and nothing sent), or it was recorded and the client's resend publishes the very
same record. See docs/protocol.md ("Audit").
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

from consumers.auth import audit
from dispatch.events import EventModel, encode, key_of


@dataclass(frozen=True, slots=True)
class Recorded:
    """An event as first recorded (JSON), and whether Kafka is known to have it."""

    event_json: str
    published: bool


async def record(
    conn: asyncpg.Connection,
    *,
    topic: str,
    event: EventModel,
    event_id: uuid.UUID,
    actor: str,
    action: str,
    subject: str,
    detail: Mapping[str, object],
) -> Recorded:
    """Record event and its audit entry, unless its id is recorded already; return the record.

    A resend of the same event id finds the first record and audits nothing again.
    """
    value = encode(event).decode()
    async with conn.transaction():
        inserted = await conn.fetchval(
            "INSERT INTO published_events (event_id, topic, event_key, event, actor) "
            "VALUES ($1, $2, $3, $4::jsonb, $5) ON CONFLICT (event_id) DO NOTHING RETURNING true",
            event_id,
            topic,
            key_of(event).decode(),
            value,
            actor,
        )
        if inserted:
            await audit.record(conn, actor=actor, action=action, subject=subject, detail=detail)
            return Recorded(value, published=False)
        row = await conn.fetchrow(
            "SELECT event::text AS event, published_at FROM published_events WHERE event_id = $1",
            event_id,
        )
    assert row is not None  # the INSERT found it, and records are never deleted
    return Recorded(row["event"], published=row["published_at"] is not None)


async def mark_published(conn: asyncpg.Connection, *, event_id: uuid.UUID) -> None:
    """Note that Kafka has acknowledged the recorded event (the first time only)."""
    await conn.execute(
        "UPDATE published_events SET published_at = now() "
        "WHERE event_id = $1 AND published_at IS NULL",
        event_id,
    )
