"""The audit log: one append-only row per state change, naming who made it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime

import asyncpg

from consumers.auth.models import AuditEntry


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"audit detail value of type {type(value).__name__} is not JSON")


async def record(
    conn: asyncpg.Connection,
    *,
    actor: str,
    action: str,
    subject: str,
    detail: Mapping[str, object] | None = None,
) -> int:
    """Append one audit row and return its id; call it in the transaction of the change."""
    entry_id: int = await conn.fetchval(
        "INSERT INTO audit_log (actor, action, subject, detail) "
        "VALUES ($1, $2, $3, $4::jsonb) RETURNING id",
        actor,
        action,
        subject,
        json.dumps(dict(detail or {}), default=_json_default, ensure_ascii=False),
    )
    return entry_id


async def history(conn: asyncpg.Connection, *, subject: str) -> list[AuditEntry]:
    """Return every audit row about subject, oldest first."""
    rows = await conn.fetch(
        "SELECT id, at, actor, action, subject, detail::text AS detail FROM audit_log "
        "WHERE subject = $1 ORDER BY at, id",
        subject,
    )
    return [
        AuditEntry(
            id=row["id"],
            at=row["at"],
            actor=row["actor"],
            action=row["action"],
            subject=row["subject"],
            detail=json.loads(row["detail"]),
        )
        for row in rows
    ]
