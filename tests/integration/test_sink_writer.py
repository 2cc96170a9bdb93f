"""The sink's writer on the real database: the rules of the rows whatever order the events
are read in, as `dispatch seed-history` calls it (models, no topic bytes)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from consumers.db import migrate
from consumers.sink.writer import SinkRecord, write_or_skip, write_records
from dispatch.events import (
    ALARMS_RAW,
    Category,
    ClassifiedAlarm,
    EventModel,
    IncidentState,
    IncidentStateChange,
    IncidentTiming,
    Position,
    Priority,
    RawAlarm,
    UnitAvailability,
    UnitStatus,
    spec_for,
)
from dispatch.zone import Zone, default_zone_path, load_zone
from tests.integration.sink_events import GRID, PLACE, story

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
async def db(pg: asyncpg.Connection) -> asyncpg.Connection:
    """Return a connection on a fresh, migrated schema."""
    await migrate(pg)
    return pg


@pytest.fixture(scope="module")
def zone() -> Zone:
    """Return the shipped demo zone."""
    return load_zone(default_zone_path())


def records(*events: EventModel) -> list[SinkRecord]:
    """Wrap events as seed-history does: their topic, no place in it, no bytes."""
    return [SinkRecord(spec_for(type(e)).name, e) for e in events]


def change(
    incident: uuid.UUID,
    seconds: float,
    state: IncidentState,
    *,
    position: Position | None = None,
    first: uuid.UUID | None = None,
) -> IncidentStateChange:
    return IncidentStateChange(
        event_id=uuid.uuid4(), incident_id=incident, state=state, actor="system",
        at=T0 + timedelta(seconds=seconds), priority=Priority.P1, category=Category.FIRE,
        position=position, first_alarm_id=first, timing=IncidentTiming(received_at=T0),
    )  # fmt: skip


def unit(
    seconds: float,
    status: UnitAvailability,
    *,
    lat: float | None = None,
    presence: bool = False,
    fixed_s: float | None = None,
) -> UnitStatus:
    return UnitStatus(
        event_id=uuid.uuid4(), unit_id="u-1", status=status,
        position=None if lat is None else Position(lat=lat, lon=113.4),
        reported_at=T0 + timedelta(seconds=seconds),
        position_at=None if fixed_s is None else T0 + timedelta(seconds=fixed_s),
        presence=presence,
    )  # fmt: skip


async def test_a_change_read_late_never_undoes_a_newer_one(db: asyncpg.Connection) -> None:
    incident = uuid.uuid4()
    resolved = change(incident, 60, IncidentState.RESOLVED)
    await write_records(db, records(change(incident, 1, IncidentState.CLASSIFIED), resolved))
    late = await write_records(db, records(change(incident, 30, IncidentState.ACCEPTED)))
    assert late.incidents == 0
    row = await db.fetchrow("SELECT * FROM record_incidents")
    assert row is not None
    assert (row["state"], row["last_event_id"], row["is_open"]) == (
        "resolved",
        resolved.event_id,
        False,
    )
    assert row["opened_at"] == T0 + timedelta(seconds=1)
    # A later change after the close (an escalation shown to the commander) keeps it closed.
    await write_records(db, records(change(incident, 90, IncidentState.ESCALATED)))
    row = await db.fetchrow("SELECT state, is_open, closed_at FROM record_incidents")
    assert row is not None
    assert (row["state"], row["is_open"], row["closed_at"]) == (
        "escalated", False, T0 + timedelta(seconds=60),
    )  # fmt: skip
    assert await db.fetchval("SELECT count(*) FROM record_events") == 4


async def test_an_incidents_grid_is_the_zones_else_its_first_alarms(
    db: asyncpg.Connection, zone: Zone
) -> None:
    placed, unplaced = uuid.uuid4(), uuid.uuid4()
    s = story(1, T0)
    alarm = s.events[1]
    assert isinstance(alarm, ClassifiedAlarm)
    elsewhere = alarm.model_copy(update={"incident_id": unplaced, "grid_id": "xh-g01"})
    # The incident with no position is written before its alarm, then the alarm after.
    await write_records(
        db,
        records(
            change(placed, 1, IncidentState.CLASSIFIED, position=PLACE),
            change(unplaced, 1, IncidentState.CLASSIFIED, first=alarm.alarm_id),
        ),
        zone=zone,
    )
    await write_records(db, records(elsewhere), zone=zone)
    rows = await db.fetch("SELECT incident_id, grid_id FROM record_incidents")
    grids = {r["incident_id"]: r["grid_id"] for r in rows}
    assert grids == {placed: GRID, unplaced: "xh-g01"}


async def test_the_classified_alarm_completes_the_raw_one_in_either_order(
    db: asyncpg.Connection,
) -> None:
    early, late = story(1, T0), story(2, T0)
    await write_records(db, records(*early.events[:2]))  # raw, then classified
    await write_records(db, records(late.events[1]))  # classified first
    await write_records(db, records(late.events[0]))  # its raw alarm after
    rows = await db.fetch("SELECT * FROM record_alarms ORDER BY received_at, alarm_id")
    assert len(rows) == 2
    for row in rows:
        assert (row["category"], row["grid_id"], row["source_id"]) == ("fight", GRID, "hotline-1")
        assert row["incident_id"] in (early.incident_id, late.incident_id)
    again = await write_records(db, records(*early.events[:2], *late.events[:2]))
    assert (again.alarms, again.events) == (0, 0)


async def test_presence_never_changes_a_status_and_a_late_report_changes_nothing(
    db: asyncpg.Connection,
) -> None:
    await write_records(db, records(unit(0, UnitAvailability.AVAILABLE, lat=31.70)))
    await write_records(db, records(unit(10, UnitAvailability.ASSIGNED, lat=31.71)))
    # The gateway saw it connected and repeats an older status and fix: heard of, no change.
    await write_records(
        db, records(unit(20, UnitAvailability.AVAILABLE, lat=31.70, presence=True, fixed_s=0))
    )
    # A report from before the last one, read late.
    await write_records(db, records(unit(5, UnitAvailability.BUSY, lat=31.72)))
    row = await db.fetchrow("SELECT * FROM record_units")
    assert row is not None
    assert (row["status"], row["lat"], row["presence"]) == ("assigned", 31.71, True)
    assert row["position_at"] == row["updated_at"] == T0 + timedelta(seconds=10)
    assert row["reported_at"] == T0 + timedelta(seconds=20)
    # The history: the fixes at 0 and 10 s (1.1 km apart); the late one and the repeat not.
    fixes = await db.fetch("SELECT at, status FROM record_unit_positions ORDER BY at")
    assert [(r["at"] - T0, r["status"]) for r in fixes] == [
        (timedelta(0), "available"),
        (timedelta(seconds=10), "assigned"),
    ]


async def test_a_record_postgres_refuses_is_set_aside_and_the_rest_written(
    db: asyncpg.Connection,
) -> None:
    good = [story(n, T0 + timedelta(minutes=n)) for n in range(3)]
    bad = RawAlarm.model_validate(
        good[0].events[0].model_dump() | {"alarm_id": uuid.uuid4(), "text": "a\x00b"}
    )
    batch = records(*good[0].events, bad, *good[1].events, *good[2].events)
    with pytest.raises(asyncpg.PostgresError):
        await write_records(db, batch)
    assert await db.fetchval("SELECT count(*) FROM record_events") == 0  # one transaction
    result = await write_or_skip(db, batch, now=T0)
    assert (result.skipped, result.records) == (1, len(batch))
    assert await db.fetchval("SELECT count(*) FROM record_events") == sum(s.timeline for s in good)
    letter = await db.fetchrow("SELECT * FROM record_dead_letters")
    assert letter is not None
    assert (letter["stage"], letter["source_topic"]) == ("sink", ALARMS_RAW.name)
    assert "22021" in letter["reason"]
    assert json.loads(letter["errors"]) == []
