"""The intake's receipts in PostgreSQL: reserve an alarm id for a request, confirm, read back.

A row is written before the alarm goes to Kafka (a reservation: `confirmed_at` NULL) and
confirmed once Kafka has acknowledged it; only a confirmed row is a receipt. A retry with the
same idempotency key finds the row and re-sends the very alarm it reserved, with the same
alarm_id, so one key never stands for two alarms (see docs/intake.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from consumers.auth import audit
from dispatch.events import RawAlarm, decode, encode

RAISE_ACTION = "alarm.raise"


class KeyReused(Exception):
    """Raise when a principal's idempotency key already stands for a different request."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """The alarm a request stands for, and whether Kafka already acknowledged it."""

    alarm: RawAlarm
    confirmed: bool


@dataclass(frozen=True, slots=True)
class StoredAlarm:
    """A confirmed receipt: the alarm as written to Kafka and the principal that raised it."""

    alarm: RawAlarm
    principal_id: str


def alarm_subject(alarm_id: uuid.UUID) -> str:
    """Return the audit subject of an alarm."""
    return f"alarm:{alarm_id}"


async def reserve(
    conn: asyncpg.Connection, *, alarm: RawAlarm, principal_id: str, request_hash: bytes
) -> Reservation:
    """Store alarm as unconfirmed, or return what its idempotency key already stands for.

    Raise KeyReused when the principal used the key for a request with another hash.
    """
    inserted = await conn.fetchval(
        "INSERT INTO intake_receipts (alarm_id, principal_id, idempotency_key, request_hash, "
        "enterprise_id, received_at, raw) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) "
        "ON CONFLICT (principal_id, idempotency_key) DO NOTHING RETURNING alarm_id",
        alarm.alarm_id,
        principal_id,
        alarm.idempotency_key,
        request_hash,
        alarm.enterprise_id,
        alarm.received_at,
        encode(alarm).decode("utf-8"),
    )
    if inserted is not None:
        return Reservation(alarm, confirmed=False)
    # Only a keyed row can conflict, and keyed rows are never deleted, so this finds it.
    row = await conn.fetchrow(
        "SELECT request_hash, raw::text AS raw, confirmed_at FROM intake_receipts "
        "WHERE principal_id = $1 AND idempotency_key = $2",
        principal_id,
        alarm.idempotency_key,
    )
    if row is None:
        raise LookupError(f"idempotency key of {principal_id!r} conflicted but has no row")
    if bytes(row["request_hash"]) != request_hash:
        raise KeyReused(alarm.idempotency_key)
    stored = decode(RawAlarm, row["raw"].encode("utf-8"))
    return Reservation(stored, confirmed=row["confirmed_at"] is not None)


async def confirm(conn: asyncpg.Connection, *, alarm: RawAlarm, actor: str) -> bool:
    """Turn the reservation into a receipt and audit it; False if it already was one."""
    async with conn.transaction():
        confirmed = await conn.fetchval(
            "UPDATE intake_receipts SET confirmed_at = now() "
            "WHERE alarm_id = $1 AND confirmed_at IS NULL RETURNING alarm_id",
            alarm.alarm_id,
        )
        if confirmed is None:
            # A concurrent retry of the same key confirmed it first and audited it.
            return False
        await audit.record(
            conn,
            actor=actor,
            action=RAISE_ACTION,
            subject=alarm_subject(alarm.alarm_id),
            detail={
                "source_kind": alarm.source_kind.value,
                "enterprise_id": alarm.enterprise_id,
                "idempotency_key": alarm.idempotency_key,
            },
        )
    return True


async def discard(conn: asyncpg.Connection, *, alarm_id: uuid.UUID) -> None:
    """Delete an unconfirmed reservation (one without a key, which no retry can reach)."""
    await conn.execute(
        "DELETE FROM intake_receipts WHERE alarm_id = $1 AND confirmed_at IS NULL", alarm_id
    )


async def fetch(conn: asyncpg.Connection, *, alarm_id: uuid.UUID) -> StoredAlarm | None:
    """Return the confirmed receipt of alarm_id, or None (unknown, or not acknowledged)."""
    row = await conn.fetchrow(
        "SELECT principal_id, raw::text AS raw FROM intake_receipts "
        "WHERE alarm_id = $1 AND confirmed_at IS NOT NULL",
        alarm_id,
    )
    if row is None:
        return None
    return StoredAlarm(decode(RawAlarm, row["raw"].encode("utf-8")), row["principal_id"])
