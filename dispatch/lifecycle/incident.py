"""The incident aggregate that the route stage keeps in its table, one per incident id."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from dispatch.display import printable
from dispatch.events import (
    Category,
    ClassifiedAlarm,
    EventModel,
    Identifier,
    IncidentState,
    IncidentTiming,
    Name,
    Party,
    Phone,
    PlaceType,
    Position,
    Priority,
    UtcTimestamp,
)
from dispatch.events.assignments import EXCERPT_CHARS, Excerpt
from dispatch.events.base import Capability

# Response event ids remembered per incident for deduplication; a replay re-delivers recent
# events, and an incident sees far fewer than this many in its life.
MAX_REMEMBERED_EVENTS = 512


class Deadline(EventModel):
    """A party's accept (or ack) deadline; kept in the table so it survives a restart."""

    assignment_id: uuid.UUID
    unit_id: Identifier
    due_at: UtcTimestamp


class Incident(EventModel):
    """Everything the dispatcher knows about one incident, as stored between events."""

    incident_id: uuid.UUID
    state: IncidentState
    priority: Priority
    category: Category
    required_capabilities: tuple[Capability, ...] = Field(default=(), max_length=8)
    units_needed: int = Field(ge=1, le=10)
    needs: tuple[tuple[Capability, int], ...] = Field(default=(), max_length=8)
    position: Position
    grid_id: Identifier | None = None
    place_id: Identifier | None = None
    place_name: Name | None = None
    place_type: PlaceType
    school_id: Identifier | None = None
    enterprise_id: Identifier | None = None
    summary: Name
    timing: IncidentTiming
    parties: tuple[Party, ...] = Field(default=(), max_length=64)
    deadlines: tuple[Deadline, ...] = Field(default=(), max_length=64)
    alarm_ids: tuple[uuid.UUID, ...] = Field(default=(), max_length=1000)
    # alarm_ids keeps the last 1000; these keep what the first alarm said and how many came.
    first_alarm_id: uuid.UUID | None = None
    alarm_count: int = Field(default=1, ge=1)
    text: Excerpt | None = None
    reporter_name: Name | None = None
    reporter_phone: Phone | None = None
    # Units that declined or timed out are not offered this incident again.
    excluded_unit_ids: tuple[Identifier, ...] = Field(default=(), max_length=64)
    attempt: int = Field(default=0, ge=0, le=100)
    in_commander_queue: bool = False
    seen_event_ids: tuple[uuid.UUID, ...] = Field(default=(), max_length=MAX_REMEMBERED_EVENTS)

    @property
    def is_closed(self) -> bool:
        """Tell whether nothing more can happen to this incident."""
        return self.state in (IncidentState.RESOLVED, IncidentState.CANCELLED)

    def party(self, assignment_id: uuid.UUID) -> Party | None:
        """Return the party that holds an assignment, if any."""
        return next((p for p in self.parties if p.assignment_id == assignment_id), None)


def open_incident(alarm: ClassifiedAlarm) -> Incident:
    """Create the incident of a classified alarm that merged into no existing incident."""
    return Incident(
        incident_id=alarm.incident_id,
        state=IncidentState.CLASSIFIED,
        priority=alarm.priority,
        category=alarm.category,
        required_capabilities=alarm.required_capabilities,
        units_needed=alarm.units_needed,
        needs=alarm.needs,
        position=alarm.position,
        grid_id=alarm.grid_id,
        place_id=alarm.place_id,
        place_name=alarm.place_name,
        place_type=alarm.place_type,
        school_id=alarm.school_id,
        enterprise_id=alarm.enterprise_id,
        # Printable whoever wrote the record: a NUL here would reach every job and store.
        summary=printable(alarm.text[:200]),
        timing=IncidentTiming(received_at=alarm.received_at, classified_at=alarm.classified_at),
        alarm_ids=(alarm.alarm_id,),
        first_alarm_id=alarm.alarm_id,
        text=printable(alarm.text)[:EXCERPT_CHARS],
        reporter_name=printable(alarm.reporter_name) if alarm.reporter_name else None,
        reporter_phone=alarm.reporter_phone,
    )


def earliest(current: datetime | None, candidate: datetime) -> datetime:
    """Keep the first time a milestone was reached."""
    return candidate if current is None or candidate < current else current
