"""Write events into the record's tables: one transaction per call, idempotent on event ids.

The sink calls `write_records` with each batch it reads; `dispatch seed-history` calls it with
past-dated events, so history goes through the same validation and the same writer as live
events without touching the live topics. Each table gets one COPY into a temp table and one
statement per call (consumers/sink/statements.py), so a batch of thousands costs a few round
trips. Schema and rules: docs/record.md.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

import asyncpg

from consumers.db.faults import DATABASE_DOWN, describe_fault, is_record_fault
from consumers.sink import rows, units
from consumers.sink import statements as sql
from consumers.sink.rows import EventRow, sink_skip
from dispatch.events import (
    ClassifiedAlarm,
    DeadLetter,
    EventModel,
    IncidentStateChange,
    Position,
    RawAlarm,
    UnitStatus,
    encode,
)
from dispatch.zone import Zone

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SinkRecord:
    """One event to record, with where it was read (None: not read from a topic).

    raw, when given, is the event's JSON exactly as read (the timeline keeps it as the event's
    detail, so the sink does not encode what it just decoded); otherwise encode() writes it.
    """

    topic: str
    event: EventModel
    partition: int | None = None
    offset: int | None = None
    raw: bytes | None = None


@dataclass(slots=True)
class WriteResult:
    """How many rows a write added or changed in each table (0 everywhere for a replay)."""

    alarms: int = 0
    incidents: int = 0
    events: int = 0
    units: int = 0
    positions: int = 0
    dead_letters: int = 0
    # How many records the write took, and of them how many were stored as skipped.
    records: int = 0
    skipped: int = 0

    def add(self, other: WriteResult) -> None:
        """Add another write's counts to these."""
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _detail(record: SinkRecord) -> str:
    return (record.raw if record.raw is not None else encode(record.event)).decode("utf-8")


def _count(status: str) -> int:
    # "INSERT 0 12", "UPDATE 3": the last word is the number of rows.
    return int(status.rsplit(" ", 1)[-1])


@dataclass(slots=True)
class _Batch:
    """A call's records sorted by what they become."""

    events: list[EventRow] = field(default_factory=list)
    raw_alarms: dict[uuid.UUID, rows.AlarmRow] = field(default_factory=dict)
    classified: dict[uuid.UUID, rows.AlarmRow] = field(default_factory=dict)
    changes: list[tuple[IncidentStateChange, str]] = field(default_factory=list)
    statuses: list[UnitStatus] = field(default_factory=list)
    dead_letters: list[tuple[object, ...]] = field(default_factory=list)


# What each class of event becomes beyond its timeline row (by class: a pydantic model's
# isinstance goes through ABCMeta, and a batch would ask it tens of thousands of times).
_ROLES: dict[type[Any], str] = {
    RawAlarm: "raw",
    UnitStatus: "unit",
    DeadLetter: "dead_letter",
    ClassifiedAlarm: "classified",
    IncidentStateChange: "change",
}


@cache
def _role(cls: type[EventModel]) -> str:
    return next((_ROLES[base] for base in cls.__mro__ if base in _ROLES), "timeline")


def _sort(records: Sequence[SinkRecord]) -> _Batch:
    batch = _Batch()
    for record in records:
        role = _role(type(record.event))
        event: Any = record.event
        if role == "raw":
            batch.raw_alarms.setdefault(event.alarm_id, rows.raw_alarm_row(event))
            continue
        if role == "unit":
            batch.statuses.append(event)
            continue
        if role == "dead_letter":
            wire = event.model_dump(mode="json")
            wire["errors"] = json.dumps(wire["errors"], ensure_ascii=False)
            batch.dead_letters.append(rows.dead_letter_row(event, wire=wire))
            continue
        detail = _detail(record)
        row = rows.event_row(
            event, detail=detail, topic=record.topic, partition=record.partition,
            offset=record.offset,
        )  # fmt: skip
        if row is not None:
            batch.events.append(row)
        if role == "classified":
            batch.classified[event.alarm_id] = rows.classified_alarm_row(event)
        elif role == "change":
            batch.changes.append((event, detail))
    return batch


def _alarm_rows(batch: _Batch) -> list[rows.AlarmRow]:
    """Return one row per alarm of the batch: its classified row (over its raw row when the
    batch holds both), else its raw row."""
    raw, classified = batch.raw_alarms, batch.classified
    out = [
        row if (first := raw.get(alarm_id)) is None else rows.classified_over_raw(first, row)
        for alarm_id, row in classified.items()
    ]
    out.extend(row for alarm_id, row in raw.items() if alarm_id not in classified)
    return out


def grid_finder(zone: Zone) -> rows.GridOf:
    """Return the function naming the zone's grid at a position (None outside every grid)."""

    def grid_of(position: Position) -> str | None:
        grid = zone.grid_at(position)
        return grid.id if grid is not None else None

    return grid_of


async def write_records(
    conn: asyncpg.Connection, records: Sequence[SinkRecord], *, zone: Zone | None = None
) -> WriteResult:
    """Write the records in one transaction; a record written before changes nothing.

    With a zone, an incident's grid is the zone's grid at its position; otherwise (and
    outside every grid) the grid of its first classified alarm. Raises what PostgreSQL raises
    (consumers.db.faults tells a record it refuses from a database that is down).
    """
    batch = _sort(records)
    result = WriteResult(records=len(records))
    async with conn.transaction():
        await conn.execute(sql.TEMP_TABLES)
        # Rows no other sink of the group writes first (an event's row is its partition's,
        # a unit's too); the alarm rows, which two sinks may both write (alarms.raw and
        # alarms.classified are keyed apart), last with what reads them: a sink waiting for
        # another's alarm rows waits for a short tail of its transaction, not all of it.
        if batch.events:
            await _copy(conn, "sink_events", EventRow._fields, batch.events)
            result.events = _count(await conn.execute(sql.INSERT_EVENTS))
        if batch.statuses:
            result.units, result.positions = await _write_units(conn, batch.statuses)
        if batch.dead_letters:
            columns = rows.DEAD_LETTER_COLUMNS
            await _copy(conn, "sink_dead_letters", columns, batch.dead_letters)
            result.dead_letters = _count(await conn.execute(sql.INSERT_DEAD_LETTERS))
        if batch.raw_alarms or batch.classified:
            alarms = _alarm_rows(batch)
            await _copy(conn, "sink_alarms", rows.ALARM_COLUMNS, alarms)
            result.alarms = _count(await conn.execute(sql.UPSERT_ALARMS))
        if batch.changes:
            grid_of = grid_finder(zone) if zone is not None else None
            folded = rows.incident_rows(batch.changes, grid_of)
            await _copy(conn, "sink_incidents", rows.INCIDENT_COLUMNS, folded)
            result.incidents = _count(await conn.execute(sql.UPSERT_INCIDENTS))
        if batch.classified:
            await conn.execute(sql.GRID_FROM_ALARMS)
    return result


async def _copy(
    conn: asyncpg.Connection, table: str, columns: Sequence[str], values: Iterable[Any]
) -> None:
    await conn.copy_records_to_table(table, records=values, columns=list(columns))


_UNIT_COLUMNS = (
    "unit_id", "status", "lat", "lon", "accuracy_m", "fix_at", "reported_at", "presence",
    "status_at",
)  # fmt: skip
_FIX_COLUMNS = ("unit_id", "at", "lat", "lon", "status")


async def _write_units(conn: asyncpg.Connection, statuses: list[UnitStatus]) -> tuple[int, int]:
    folded = [
        (u.unit_id, u.status, u.lat, u.lon, u.accuracy_m, u.fix_at, u.reported_at, u.presence,
         u.status_at)
        for u in units.unit_rows(statuses)
    ]  # fmt: skip
    await _copy(conn, "sink_units", _UNIT_COLUMNS, folded)
    added = _count(await conn.execute(sql.INSERT_UNITS))
    changed = _count(await conn.execute(sql.UPDATE_UNITS))
    fixes = units.fixes_of(statuses)
    last: dict[str, units.Fix] = {
        r["unit_id"]: units.Fix(r["unit_id"], r["at"], r["lat"], r["lon"], r["status"])
        for r in await conn.fetch(sql.LAST_KEPT_FIXES, list(fixes))
    }
    kept = [
        (f.unit_id, f.at, f.lat, f.lon, f.status)
        for unit_id, unit_fixes in fixes.items()
        for f in units.thin(last.get(unit_id), unit_fixes)
    ]
    positions = 0
    if kept:
        await _copy(conn, "sink_fixes", _FIX_COLUMNS, kept)
        positions = _count(await conn.execute(sql.INSERT_FIXES))
    return added + changed, positions


async def write_or_skip(
    conn: asyncpg.Connection,
    records: Sequence[SinkRecord],
    *,
    zone: Zone | None = None,
    now: datetime,
) -> WriteResult:
    """Write the records; those PostgreSQL refuses for their own data are stored as dead
    letters of stage `sink` instead, and the rest written all the same.

    A refused batch is halved until the refused record stands alone (each half its own
    transaction), so one bad record costs a few more round trips, not one per record. A
    database that is down raises, for the caller to try the same records again.
    """
    try:
        return await write_records(conn, records, zone=zone)
    except (*DATABASE_DOWN, ValueError) as exc:
        # A ValueError is this record's own (text with no UTF-8 form, a value asyncpg cannot
        # encode): never the database's.
        if not (isinstance(exc, ValueError) or is_record_fault(exc)):
            raise
        if len(records) > 1:
            half = len(records) // 2
            result = await write_or_skip(conn, records[:half], zone=zone, now=now)
            result.add(await write_or_skip(conn, records[half:], zone=zone, now=now))
            return result
        (record,) = records
        why = describe_fault(exc)
        log.error(
            "sink could not store %s[%s]@%s (%s): %s",
            record.topic, record.partition, record.offset, type(record.event).__name__, why,
        )  # fmt: skip
        letter = sink_skip(
            topic=record.topic, partition=record.partition or 0, offset=record.offset or 0,
            index=None, key=None, value=_bytes_of(record),
            reason=f"sink: PostgreSQL refused the record: {why}", at=now,
        )  # fmt: skip
        result = await write_records(conn, [SinkRecord(record.topic, letter)], zone=zone)
        result.records = 1
        result.skipped = 1
        return result


def _bytes_of(record: SinkRecord) -> bytes:
    if record.raw is not None:
        return record.raw
    try:
        return encode(record.event)
    except ValueError:  # a lone surrogate has no UTF-8 form: keep what can be kept
        return record.event.model_dump_json().encode("utf-8", "backslashreplace")
