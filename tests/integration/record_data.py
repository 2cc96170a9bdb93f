"""Incidents in the record for the read API's tests, written by the sink's own writer.

`incident(...)` returns the events one incident leaves on the topics (its alarm raw and
classified, its state changes with their parties, the jobs with their ETAs, optionally its
close); `record(pool, events)` writes them with consumers.sink.writer.write_records, the very
code the sink runs, so the API reads what the sink writes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from consumers.db.pool import connection
from consumers.sink.writer import SinkRecord, write_records
from dispatch.events import (
    Assignment,
    AssignmentKind,
    AssignmentRole,
    Category,
    ClassifiedAlarm,
    EventModel,
    IncidentState,
    IncidentStateChange,
    IncidentTiming,
    Party,
    PartyState,
    PlaceType,
    Position,
    Priority,
    RawAlarm,
    SourceKind,
    UnitAvailability,
    UnitStatus,
    spec_for,
)

PLACE = Position(lat=31.7, lon=113.402)
CALLER, PHONE = "王丽", "+86 722 333 1234"


@dataclass(frozen=True)
class Made:
    """One incident's events, and what a test checks them by."""

    incident_id: uuid.UUID
    alarm_id: uuid.UUID
    received_at: datetime
    events: tuple[EventModel, ...]
    # The last change: what the incident's current row shows.
    last: IncidentStateChange
    # Every job by unit id.
    jobs: dict[str, Assignment]


def incident(
    at: datetime,
    *,
    enterprise_id: str | None = None,
    parties: Sequence[tuple[str, AssignmentKind]] = (),
    priority: Priority = Priority.P2,
    category: Category = Category.FIGHT,
    grid_id: str = "cd-g03",
    closed: bool = False,
    source_id: str = "hotline-1",
) -> Made:
    """Return one incident received at `at`, sent to parties, resolved a minute later if closed."""
    alarm_id, incident_id = uuid.uuid4(), uuid.uuid4()
    classified_at, dispatched_at = at + timedelta(milliseconds=60), at + timedelta(seconds=1)
    text = "仓库门口有人打架 / two men fighting at the warehouse gate"
    raw = RawAlarm(
        alarm_id=alarm_id, received_at=at, source_kind=SourceKind.HOTLINE, source_id=source_id,
        enterprise_id=enterprise_id, text=text, position=PLACE, reporter_name=CALLER,
        reporter_phone=PHONE,
    )  # fmt: skip
    alarm = ClassifiedAlarm(
        alarm_id=alarm_id, incident_id=incident_id, category=category, priority=priority,
        required_capabilities=("patrol",), position=PLACE, grid_id=grid_id,
        place_type=PlaceType.ENTERPRISE if enterprise_id else PlaceType.ROAD,
        enterprise_id=enterprise_id, received_at=at, classified_at=classified_at, text=text,
        source_kind=SourceKind.HOTLINE, source_id=source_id, reporter_name=CALLER,
        reporter_phone=PHONE,
    )  # fmt: skip
    jobs = {
        unit_id: job(incident_id, unit_id, kind, dispatched_at, priority, category, eta_s=120.0 + n)
        for n, (unit_id, kind) in enumerate(parties)
    }
    party_list = tuple(
        Party(
            unit_id=job.unit_id,
            assignment_id=job.assignment_id,
            role=job.role,
            kind=job.kind,
            state=PartyState.DISPATCHED,
            dispatched_at=dispatched_at,
        )
        for job in jobs.values()
    )

    def change(state: IncidentState, when: datetime, **timing: datetime) -> IncidentStateChange:
        return IncidentStateChange(
            event_id=uuid.uuid4(), incident_id=incident_id, state=state, actor="system",
            at=when, priority=priority, category=category, position=PLACE,
            enterprise_id=enterprise_id, first_alarm_id=alarm_id, alarm_count=1,
            text=text, reporter_name=CALLER, reporter_phone=PHONE,
            timing=IncidentTiming(received_at=at, classified_at=classified_at, **timing),
            parties=party_list if state is not IncidentState.CLASSIFIED else (),
        )  # fmt: skip

    changes = [change(IncidentState.CLASSIFIED, classified_at)]
    if jobs:
        changes.append(change(IncidentState.DISPATCHED, dispatched_at, dispatched_at=dispatched_at))
    if closed:
        done = at + timedelta(minutes=1)
        changes.append(change(IncidentState.RESOLVED, done, resolved_at=done))
    events = (raw, alarm, *jobs.values(), *changes)
    return Made(incident_id, alarm_id, at, events, changes[-1], jobs)


def job(
    incident_id: uuid.UUID,
    unit_id: str,
    kind: AssignmentKind,
    at: datetime,
    priority: Priority,
    category: Category,
    *,
    eta_s: float,
) -> Assignment:
    """Return a job offered to unit_id at `at`; a unit sent hears who called, a guard alerted
    for mutual aid does not."""
    sent = kind is AssignmentKind.ASSIGNMENT
    return Assignment(
        assignment_id=uuid.uuid4(), incident_id=incident_id, unit_id=unit_id, kind=kind,
        role=AssignmentRole.PRIMARY if sent else AssignmentRole.MUTUAL_AID, attempt=1,
        priority=priority, category=category, position=PLACE, eta_s=eta_s, dispatched_at=at,
        ack_deadline=at + timedelta(seconds=30), summary=f"{priority} {category}",
        reporter_name=CALLER if sent else None, reporter_phone=PHONE if sent else None,
    )  # fmt: skip


def unit_report(unit_id: str, at: datetime, lat_offset: float = 0.0) -> UnitStatus:
    """Return a unit's report: available, at a fix made at `at`."""
    return UnitStatus(
        event_id=uuid.uuid4(),
        unit_id=unit_id,
        status=UnitAvailability.AVAILABLE,
        position=Position(lat=PLACE.lat + lat_offset, lon=PLACE.lon, accuracy_m=8.0),
        reported_at=at,
    )


async def record(pool: asyncpg.Pool, events: Iterable[EventModel]) -> None:
    """Write events to the record as the sink does (one transaction)."""
    records = [SinkRecord(spec_for(type(event)).name, event) for event in events]
    async with connection(pool) as conn:
        await write_records(conn, records)
