"""The outbox tables: store jobs with per-unit seqs, read them back, stamp acknowledgements.

Schema: consumers/db/migrations/0003_push.sql; design: docs/protocol.md ("Durability").
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

# Re-exported: the outbox, the sessions and the actions tell record faults from outages.
from consumers import metrics
from consumers.db.faults import DATABASE_DOWN as DATABASE_DOWN
from consumers.db.faults import describe_fault as describe_fault
from consumers.db.faults import is_record_fault as is_record_fault
from consumers.db.pool import connection as connection
from dispatch.events import Assignment, AssignmentKind

NOTIFY_CHANNEL = "unit_outbox"


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One stored job of one unit: its seq and the assignment as JSON text."""

    unit_id: str
    seq: int
    assignment_id: uuid.UUID
    incident_id: uuid.UUID
    payload: str


@dataclass(frozen=True, slots=True)
class JobRef:
    """Which unit, incident and seq a stored job belongs to, and what became of it."""

    unit_id: str
    seq: int
    assignment_id: uuid.UUID
    incident_id: uuid.UUID
    kind: AssignmentKind = AssignmentKind.ASSIGNMENT
    # The seq of the stand-down that withdrew this job, if one is stored.
    withdrawn_by: int | None = None

    @property
    def is_stand_down(self) -> bool:
        """Tell whether this row withdraws a job rather than being one."""
        return self.kind is AssignmentKind.STAND_DOWN

    @property
    def is_update(self) -> bool:
        """Tell whether this row tells what changed about a job rather than being one."""
        return self.kind is AssignmentKind.UPDATE


def _job_ref(row: asyncpg.Record, unit_id: str) -> JobRef:
    withdrawn_by = row.get("withdrawn_by")
    return JobRef(
        unit_id,
        row["seq"],
        row["assignment_id"],
        row["incident_id"],
        AssignmentKind(row["kind"]),
        withdrawn_by,
    )


async def append_assignments(
    conn: asyncpg.Connection, assignments: Sequence[Assignment]
) -> list[OutboxRow]:
    """Store the assignments not stored yet, each with its unit's next seq; return those stored.

    Order per unit is kept. Notifies `unit_outbox` with each unit id on commit.
    """
    if not assignments:
        return []
    units = sorted({a.unit_id for a in assignments})
    async with conn.transaction():
        # Lock every counter of the batch first, in one order (no deadlock with a second writer
        # during a rebalance). Copies of one assignment share its unit, so under this lock the
        # check below sees any copy another writer committed, and no seq is used up twice.
        counters = await conn.fetch(
            "INSERT INTO unit_sequences (unit_id) SELECT u FROM unnest($1::text[]) AS u ORDER BY u "
            "ON CONFLICT (unit_id) DO UPDATE SET last_seq = unit_sequences.last_seq "
            "RETURNING unit_id, last_seq",
            units,
        )
        last_seq: dict[str, int] = {row["unit_id"]: row["last_seq"] for row in counters}
        known = {
            row["assignment_id"]
            for row in await conn.fetch(
                "SELECT assignment_id FROM unit_outbox WHERE assignment_id = ANY($1::uuid[])",
                [a.assignment_id for a in assignments],
            )
        }
        fresh: list[tuple[Assignment, OutboxRow]] = []
        for assignment in assignments:
            if assignment.assignment_id in known:
                continue
            known.add(assignment.assignment_id)
            last_seq[assignment.unit_id] += 1
            row = OutboxRow(
                unit_id=assignment.unit_id,
                seq=last_seq[assignment.unit_id],
                assignment_id=assignment.assignment_id,
                incident_id=assignment.incident_id,
                payload=assignment.model_dump_json(),
            )
            fresh.append((assignment, row))
        if not fresh:
            return []
        await conn.execute(
            "INSERT INTO unit_outbox "
            "(unit_id, seq, assignment_id, incident_id, kind, payload, dispatched_at, withdraws) "
            "SELECT * FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::uuid[], $5::text[], "
            "$6::jsonb[], $7::timestamptz[], $8::uuid[]) ON CONFLICT (assignment_id) DO NOTHING",
            [row.unit_id for _, row in fresh],
            [row.seq for _, row in fresh],
            [row.assignment_id for _, row in fresh],
            [row.incident_id for _, row in fresh],
            [a.kind.value for a, _ in fresh],
            [row.payload for _, row in fresh],
            [a.dispatched_at for a, _ in fresh],
            [a.withdraws for a, _ in fresh],
        )
        changed = sorted({row.unit_id for _, row in fresh})
        await conn.execute(
            "UPDATE unit_sequences AS s SET last_seq = v.last_seq "
            "FROM unnest($1::text[], $2::bigint[]) AS v (unit_id, last_seq) "
            "WHERE s.unit_id = v.unit_id",
            changed,
            [last_seq[unit] for unit in changed],
        )
        # Delivered on commit, once per unit however many rows it got.
        await conn.execute(
            "SELECT pg_notify($1, u) FROM unnest($2::text[]) AS u", NOTIFY_CHANNEL, changed
        )
    return [row for _, row in fresh]


async def rows_after(
    conn: asyncpg.Connection, *, unit_id: str, after_seq: int, limit: int
) -> list[OutboxRow]:
    """Return up to limit of the unit's jobs with seq > after_seq, in seq order."""
    rows = await conn.fetch(
        "SELECT seq, assignment_id, incident_id, payload::text AS payload FROM unit_outbox "
        "WHERE unit_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        unit_id,
        after_seq,
        limit,
    )
    return [
        OutboxRow(unit_id, row["seq"], row["assignment_id"], row["incident_id"], row["payload"])
        for row in rows
    ]


async def resume_point(conn: asyncpg.Connection, *, unit_id: str) -> tuple[int, int]:
    """Return (last acknowledged seq, last stored seq) of a unit; (0, 0) for a new one."""
    row = await conn.fetchrow(
        "SELECT coalesce((SELECT last_seq FROM unit_sequences WHERE unit_id = $1), 0) AS last, "
        "(SELECT min(seq) FROM unit_outbox WHERE unit_id = $1 AND acked_at IS NULL) AS unacked",
        unit_id,
    )
    assert row is not None  # a SELECT without FROM returns one row
    last: int = row["last"]
    # Acknowledgements are cumulative: everything before the oldest unacknowledged job is acked.
    acked = last if row["unacked"] is None else row["unacked"] - 1
    return acked, last


async def unacked_through(conn: asyncpg.Connection, *, unit_id: str, seq: int) -> list[JobRef]:
    """Return the unit's jobs with seq ≤ seq that are not acknowledged yet, in seq order."""
    rows = await conn.fetch(
        "SELECT seq, assignment_id, incident_id, kind FROM unit_outbox "
        "WHERE unit_id = $1 AND seq <= $2 AND acked_at IS NULL ORDER BY seq",
        unit_id,
        seq,
    )
    return [_job_ref(row, unit_id) for row in rows]


async def mark_acked(
    conn: asyncpg.Connection, *, unit_id: str, seqs: Sequence[int], at: datetime
) -> list[JobRef]:
    """Stamp delivered_at and acked_at on the jobs not stamped yet; return those stamped."""
    rows = await conn.fetch(
        "UPDATE unit_outbox SET delivered_at = coalesce(delivered_at, $3), "
        "acked_at = coalesce(acked_at, $3) "
        "WHERE unit_id = $1 AND seq = ANY($2::bigint[]) AND acked_at IS NULL "
        "RETURNING seq, assignment_id, incident_id, kind, "
        "extract(epoch FROM $3 - dispatched_at)::float8 AS ack_s",
        unit_id,
        list(seqs),
        at,
    )
    for row in rows:
        # From the route stage's decision to this acknowledgement (docs/operations.md).
        metrics.ACK_SECONDS.observe(max(0.0, row["ack_s"]))
    refs = [_job_ref(row, unit_id) for row in rows]
    return sorted(refs, key=lambda ref: ref.seq)


async def find_job(
    conn: asyncpg.Connection,
    *,
    unit_id: str,
    seq: int | None = None,
    assignment_id: uuid.UUID | None = None,
) -> JobRef | None:
    """Return a stored job by the unit's seq, or by assignment id (any unit's); None if none."""
    # The stand-down that withdrew it, if any, comes along: an answer to it must be refused.
    select = (
        "SELECT o.unit_id, o.seq, o.assignment_id, o.incident_id, o.kind, "
        "(SELECT w.seq FROM unit_outbox AS w WHERE w.withdraws = o.assignment_id) AS withdrawn_by "
        "FROM unit_outbox AS o "
    )
    if seq is not None:
        row = await conn.fetchrow(select + "WHERE o.unit_id = $1 AND o.seq = $2", unit_id, seq)
    else:
        row = await conn.fetchrow(select + "WHERE o.assignment_id = $1", assignment_id)
    return None if row is None else _job_ref(row, row["unit_id"])
