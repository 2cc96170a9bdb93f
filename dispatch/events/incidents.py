"""Incident lifecycle (`incidents.state`): every state change, with its parties and timers."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, computed_field, model_validator

from dispatch.events.alarms import Category, Priority
from dispatch.events.assignments import AssignmentKind, AssignmentRole, Excerpt
from dispatch.events.base import (
    EventId,
    EventModel,
    Identifier,
    Name,
    Phone,
    Position,
    Text,
    UtcTimestamp,
)


class IncidentState(StrEnum):
    """Where an incident is in its lifecycle."""

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


class PartyState(StrEnum):
    """Where one responding unit is with its part of an incident."""

    DISPATCHED = "dispatched"
    DELIVERED = "delivered"
    ACKED = "acked"
    ACCEPTED = "accepted"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    RESOLVED = "resolved"
    DECLINED = "declined"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    # Another incident held the unit when this job reached the unit's single writer: the job
    # was never delivered (dispatch.events.reservations).
    TAKEN = "taken"


class Party(EventModel):
    """Track one unit's response to an incident on its own clock."""

    unit_id: Identifier
    assignment_id: uuid.UUID | None = None
    role: AssignmentRole
    kind: AssignmentKind
    state: PartyState
    dispatched_at: UtcTimestamp | None = None
    delivered_at: UtcTimestamp | None = None
    acked_at: UtcTimestamp | None = None
    accepted_at: UtcTimestamp | None = None
    arrived_at: UtcTimestamp | None = None


def _seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


RECENT_MERGED_IDS = 20
"""Merged alarm ids a state change carries: the most recent ones; alarm_count counts all."""

DURATIONS = (
    "to_classify_s",
    "to_dispatch_s",
    "to_deliver_s",
    "to_accept_s",
    "to_scene_s",
    "to_resolve_s",
)


class IncidentTiming(EventModel):
    """Hold the milestones of an incident; durations count from received_at."""

    received_at: UtcTimestamp | None = None
    classified_at: UtcTimestamp | None = None
    dispatched_at: UtcTimestamp | None = None
    delivered_at: UtcTimestamp | None = None
    accepted_at: UtcTimestamp | None = None
    on_scene_at: UtcTimestamp | None = None
    resolved_at: UtcTimestamp | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_derived(cls, data: Any) -> Any:
        # The durations are written on the wire for readers, but always recomputed from the
        # timestamps on read, so a consumer never holds a duration that disagrees with them.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in DURATIONS}
        return data

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented pattern
    @property
    def to_classify_s(self) -> float | None:
        """Seconds from received to classified, or None while either is unknown."""
        return _seconds_between(self.received_at, self.classified_at)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def to_dispatch_s(self) -> float | None:
        """Seconds from received to the first dispatch (NFPA 1225 processing time)."""
        return _seconds_between(self.received_at, self.dispatched_at)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def to_deliver_s(self) -> float | None:
        """Seconds from received to the job reaching the first unit's device."""
        return _seconds_between(self.received_at, self.delivered_at)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def to_accept_s(self) -> float | None:
        """Seconds from received to the first unit accepting."""
        return _seconds_between(self.received_at, self.accepted_at)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def to_scene_s(self) -> float | None:
        """Seconds from received to the first unit on scene (the arrival norms)."""
        return _seconds_between(self.received_at, self.on_scene_at)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def to_resolve_s(self) -> float | None:
        """Seconds from received to resolved."""
        return _seconds_between(self.received_at, self.resolved_at)


class IncidentStateChange(EventModel):
    """Record that an incident entered a state, who moved it there, and its timers so far."""

    schema_version: Literal[1] = 1
    event_id: EventId
    incident_id: uuid.UUID
    state: IncidentState
    previous_state: IncidentState | None = None
    reason: Text | None = None
    # `system` for the workers' own decisions, else the principal id of the person who acted.
    actor: Identifier
    at: UtcTimestamp
    priority: Priority
    category: Category
    # Where it is and whose it is: boards draw it, and a desk sees only its own enterprise's.
    position: Position | None = None
    place_name: Name | None = None
    enterprise_id: Identifier | None = None
    timing: IncidentTiming
    parties: tuple[Party, ...] = Field(default=(), max_length=64)
    # The most recent RECENT_MERGED_IDS merged alarms (records written before alarm_count
    # existed carry up to 1000, so a reader still accepts that many).
    merged_alarm_ids: tuple[uuid.UUID, ...] = Field(default=(), max_length=1000)
    # Every alarm of the incident, the first included; None in records from before it.
    alarm_count: int | None = Field(default=None, ge=1)
    # What a commander and the enterprise's desk need to act: the alarm that opened the
    # incident, what its caller said, and who to call back.
    first_alarm_id: uuid.UUID | None = None
    text: Excerpt | None = None
    reporter_name: Name | None = None
    reporter_phone: Phone | None = None
