"""The read API's answer bodies (docs/api.md), built from the record's tables.

The OpenAPI document is generated from these, so the web pages (issue 12) and docs/api.md
describe one shape. Times are written like every event's (`2026-11-26T03:04:05.123Z`); a
party is written as `incidents.state` writes it.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dispatch.events import (
    Category,
    IncidentState,
    Party,
    PlaceType,
    Position,
    Priority,
    SourceKind,
    UnitAvailability,
    UtcTimestamp,
)

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
NEXT_CURSOR = "Pass as `cursor` for the next page; null on the last page."


class StateFilter(StrEnum):
    """An incident list's `state`: open, closed, or one state (docs/events.md)."""

    OPEN = "open"
    CLOSED = "closed"
    RECEIVED = "received"
    CLASSIFIED = "classified"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    RESOLVED = "resolved"
    DECLINED = "declined"
    TIMED_OUT = "timed_out"
    REDISPATCHED = "redispatched"
    ESCALATED = "escalated"
    CANCELLED = "cancelled"
    MERGED = "merged"


class ReadModel(BaseModel):
    """Base of every answer here: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Incident(ReadModel):
    """An incident's current row: its state, where it is, who is on it, every timer."""

    incident_id: uuid.UUID
    state: IncidentState
    is_open: bool = Field(description="Not resolved or cancelled (`merged` is open).")
    priority: Priority
    category: Category
    enterprise_id: str | None
    grid_id: str | None
    place_name: str | None
    position: Position | None
    first_alarm_id: uuid.UUID | None
    alarm_count: int | None
    text: str | None
    reporter_name: str | None = Field(description="Null unless the caller may read it.")
    reporter_phone: str | None = Field(description="Null unless the caller may read it.")
    received_at: UtcTimestamp | None
    classified_at: UtcTimestamp | None
    dispatched_at: UtcTimestamp | None
    delivered_at: UtcTimestamp | None
    accepted_at: UtcTimestamp | None
    on_scene_at: UtcTimestamp | None
    resolved_at: UtcTimestamp | None
    closed_at: UtcTimestamp | None
    updated_at: UtcTimestamp = Field(description="The `at` of the change this row shows.")
    last_event_id: uuid.UUID = Field(description="The `event_id` of the change this row shows.")
    parties: list[Party]


class BoardIncident(Incident):
    """An open incident on the board, with what a board needs to merge its live channel."""

    updated_event_ids: list[uuid.UUID] = Field(
        description="Every change of the incident the record holds at `updated_at` (most "
        "often just `last_event_id`): a live change at that very time is one of these, or "
        "new (docs/protocol.md)."
    )


class Alarm(ReadModel):
    """One alarm as received, and how it was classified and which incident took it."""

    alarm_id: uuid.UUID
    received_at: UtcTimestamp
    source_kind: SourceKind
    source_id: str
    enterprise_id: str | None
    text: str
    place_id: str | None
    place_name: str | None
    position: Position | None
    reporter_name: str | None = Field(description="Null unless the caller may read it.")
    reporter_phone: str | None = Field(description="Null unless the caller may read it.")
    classified_at: UtcTimestamp | None
    incident_id: uuid.UUID | None
    category: Category | None
    priority: Priority | None
    grid_id: str | None
    place_type: PlaceType | None
    merged_into: uuid.UUID | None


class TimelineEntry(ReadModel):
    """One event in an incident's history, as the sink stored it."""

    event_id: uuid.UUID
    kind: str = Field(
        description="`state`, `assignment`, `response`, `command`, `command_outcome`, `alarm` "
        "or `delivery`."
    )
    at: UtcTimestamp
    actor: str | None
    unit_id: str | None
    assignment_id: uuid.UUID | None
    state: str | None
    detail: dict[str, Any] = Field(
        description="The whole event as its topic carries it (docs/events.md); who called "
        "and their number removed when the caller may not read them."
    )


class IncidentDetail(Incident):
    """An incident with its alarms and its timeline, oldest first, each up to a page."""

    alarms: list[Alarm]
    alarms_next_cursor: str | None = Field(description="More alarms: `GET …/alarms?cursor=`.")
    timeline: list[TimelineEntry]
    timeline_next_cursor: str | None = Field(description="More events: `GET …/timeline?cursor=`.")


class Unit(ReadModel):
    """A unit's latest status, its last position and how old that fix is."""

    unit_id: str
    name: str | None = Field(description="From the zone file; null for a unit it does not know.")
    kind: str | None = Field(description="From the zone file (patrol, guard, fire, ...).")
    status: UnitAvailability
    position: Position | None
    position_at: UtcTimestamp | None = Field(description="When the fix was made.")
    position_age_s: float | None = Field(description="Seconds from position_at to as_of.")
    presence: bool = Field(description="The latest record was the gateway's: it is connected.")
    reported_at: UtcTimestamp = Field(description="When the unit was last heard of.")


class PartyProgress(Party):
    """A party with its estimated arrival, from the job it was sent."""

    eta_s: float | None = Field(description="Seconds from dispatched_at, as routing estimated.")
    eta_at: UtcTimestamp | None = Field(description="dispatched_at + eta_s.")


class IncidentProgress(ReadModel):
    """How far an alarm's incident has come: its state, its timers, who is coming."""

    incident_id: uuid.UUID
    state: IncidentState
    is_open: bool
    priority: Priority
    category: Category
    dispatched_at: UtcTimestamp | None
    accepted_at: UtcTimestamp | None
    on_scene_at: UtcTimestamp | None
    resolved_at: UtcTimestamp | None
    closed_at: UtcTimestamp | None
    updated_at: UtcTimestamp
    parties: list[PartyProgress]


class AlarmProgress(Alarm):
    """An alarm and its incident's progress (null until an incident took it)."""

    incident: IncidentProgress | None


class Board(ReadModel):
    """The commander's starting picture: every open incident and every unit."""

    as_of: UtcTimestamp = Field(description="When the tables were read.")
    complete: bool = Field(
        description="The record held every change published before the request (docs/api.md); "
        "false: the sink is behind, fetch again while the live channel runs."
    )
    behind: int | None = Field(
        description="Records published but not yet stored when the tables were read (0 when "
        "complete; null when Kafka could not be asked)."
    )
    incidents: list[BoardIncident]
    units: list[Unit]


class IncidentPage(ReadModel):
    """One page of incidents, newest first."""

    incidents: list[Incident]
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class AlarmPage(ReadModel):
    """One page of alarms with their progress, newest first."""

    alarms: list[AlarmProgress]
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class IncidentAlarmPage(ReadModel):
    """One page of an incident's alarms, oldest first."""

    alarms: list[Alarm]
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class TimelinePage(ReadModel):
    """One page of an incident's timeline, oldest first."""

    timeline: list[TimelineEntry]
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class UnitPage(ReadModel):
    """One page of units, by unit id."""

    as_of: UtcTimestamp
    units: list[Unit]
    next_cursor: str | None = Field(description=NEXT_CURSOR)
