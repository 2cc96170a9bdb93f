"""The reconciler's ledger in PostgreSQL: alarms seen, alarms and incidents decided, overdue.

Schema: consumers/db/migrations/0010_reconciler.sql. Every write is idempotent (a replayed
topic writes nothing twice), so the reconciler commits its offsets only after its rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from dispatch.events import IncidentStateChange, RawAlarm
from dispatch.triage import provisional_incident_id

# A change the reconciler itself published (an overdue alarm shown to the commander) decides
# nothing: only the pipeline's own changes do.
RECONCILER = "reconciler"


@dataclass(frozen=True, slots=True)
class SeenAlarm:
    """One valid alarm read from alarms.raw, with its exact bytes."""

    alarm: RawAlarm
    partition: int
    offset: int
    raw: bytes


@dataclass(frozen=True, slots=True)
class Decision:
    """What one change on incidents.state decides: its incident, and the alarms it names."""

    incident_id: uuid.UUID
    alarm_ids: tuple[uuid.UUID, ...]
    how: str


@dataclass(frozen=True, slots=True)
class Overdue:
    """An alarm with no decision past the bound."""

    alarm_id: uuid.UUID
    received_at: datetime
    raw: bytes
    republished: bool
    reports: int


def decision_of(change: IncidentStateChange) -> Decision | None:
    """Return what a change decides, or None for the reconciler's own changes."""
    if change.actor == RECONCILER:
        return None
    named = ((change.first_alarm_id,) if change.first_alarm_id else ()) + change.merged_alarm_ids
    return Decision(change.incident_id, tuple(dict.fromkeys(named)), f"{change.state}")


async def record(
    conn: asyncpg.Connection, alarms: Sequence[SeenAlarm], decisions: Sequence[Decision]
) -> None:
    """Store a batch's alarms and decisions in one transaction; a replay changes nothing."""
    async with conn.transaction():
        if alarms:
            await conn.execute(
                "INSERT INTO ledger_alarms (alarm_id, own_incident_id, received_at, "
                "source_partition, source_offset, raw) SELECT * FROM unnest($1::uuid[], "
                "$2::uuid[], $3::timestamptz[], $4::integer[], $5::bigint[], $6::bytea[]) "
                "ON CONFLICT (alarm_id) DO NOTHING",
                [a.alarm.alarm_id for a in alarms],
                [provisional_incident_id(a.alarm.alarm_id) for a in alarms],
                [a.alarm.received_at for a in alarms],
                [a.partition for a in alarms],
                [a.offset for a in alarms],
                [a.raw for a in alarms],
            )
        named = {(alarm_id, d.how) for d in decisions for alarm_id in d.alarm_ids}
        if named:
            await conn.execute(
                "INSERT INTO ledger_decided_alarms (alarm_id, decided_at, how) "
                "SELECT a, now(), h FROM unnest($1::uuid[], $2::text[]) AS x (a, h) "
                "ON CONFLICT (alarm_id) DO NOTHING",
                [alarm_id for alarm_id, _ in named],
                [how for _, how in named],
            )
        incidents = {d.incident_id: d.how for d in decisions}
        if incidents:
            await conn.execute(
                "INSERT INTO ledger_decided_incidents (incident_id, decided_at, how) "
                "SELECT i, now(), h FROM unnest($1::uuid[], $2::text[]) AS x (i, h) "
                "ON CONFLICT (incident_id) DO NOTHING",
                list(incidents),
                list(incidents.values()),
            )
        # A decision may be read before its alarm, or after: mark whichever rows it touches.
        touched_alarms = [a.alarm.alarm_id for a in alarms] + [alarm_id for alarm_id, _ in named]
        touched_incidents = [provisional_incident_id(a.alarm.alarm_id) for a in alarms]
        touched_incidents += list(incidents)
        if touched_alarms or touched_incidents:
            await conn.execute(
                "UPDATE ledger_alarms a SET decided_at = now() WHERE a.decided_at IS NULL "
                "AND (a.alarm_id = ANY($1::uuid[]) OR a.own_incident_id = ANY($2::uuid[])) "
                "AND (EXISTS (SELECT 1 FROM ledger_decided_alarms d WHERE d.alarm_id = a.alarm_id)"
                " OR EXISTS (SELECT 1 FROM ledger_decided_incidents i "
                "WHERE i.incident_id = a.own_incident_id))",
                touched_alarms,
                touched_incidents,
            )


async def overdue(
    conn: asyncpg.Connection, *, received_before: datetime, reported_before: datetime, limit: int
) -> list[Overdue]:
    """Return the oldest alarms received before the bound with no decision, not reported
    since reported_before."""
    rows = await conn.fetch(
        "SELECT alarm_id, received_at, raw, republished_at, reports FROM ledger_alarms "
        "WHERE decided_at IS NULL AND received_at < $1 "
        "AND (last_reported_at IS NULL OR last_reported_at < $2) "
        "ORDER BY received_at LIMIT $3",
        received_before,
        reported_before,
        limit,
    )
    return [
        Overdue(
            alarm_id=r["alarm_id"],
            received_at=r["received_at"],
            raw=bytes(r["raw"]),
            republished=r["republished_at"] is not None,
            reports=r["reports"],
        )
        for r in rows
    ]


async def mark_reported(
    conn: asyncpg.Connection, alarm_ids: Sequence[uuid.UUID], *, republished: bool, at: datetime
) -> None:
    """Record that these overdue alarms were shown to the commander (and published again)."""
    await conn.execute(
        "UPDATE ledger_alarms SET last_reported_at = $2, reports = reports + 1, "
        "republished_at = CASE WHEN $3 THEN coalesce(republished_at, $2) ELSE republished_at END "
        "WHERE alarm_id = ANY($1::uuid[])",
        list(alarm_ids),
        at,
        republished,
    )


async def counts(
    conn: asyncpg.Connection, *, since: datetime, received_before: datetime
) -> dict[str, int]:
    """Return, of the alarms received since `since`, how many the ledger holds, how many are
    decided, overdue (received before the bound and undecided) and published again."""
    row = await conn.fetchrow(
        "SELECT count(*) AS seen, count(decided_at) AS decided, "
        "count(*) FILTER (WHERE decided_at IS NULL AND received_at < $2) AS overdue, "
        "count(republished_at) AS republished FROM ledger_alarms WHERE received_at >= $1",
        since,
        received_before,
    )
    assert row is not None  # an aggregate without GROUP BY returns one row
    return {name: int(row[name]) for name in ("seen", "decided", "overdue", "republished")}
