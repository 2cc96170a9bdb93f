"""Unit availability and position (`units.status`, compacted to the latest per unit)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from dispatch.events.base import EventId, EventModel, Identifier, Position, UtcTimestamp


class UnitAvailability(StrEnum):
    """Whether a unit can take a new job."""

    AVAILABLE = "available"
    ASSIGNED = "assigned"
    BUSY = "busy"
    OFF_DUTY = "off_duty"


class UnitStatus(EventModel):
    """Report a unit's availability and, when known, where it is; or that it is connected."""

    schema_version: Literal[1] = 1
    event_id: EventId
    unit_id: Identifier
    status: UnitAvailability
    # Compaction keeps only the latest record per unit, so a producer that knows the last
    # position repeats it here rather than sending null.
    position: Position | None = None
    reported_at: UtcTimestamp
    # When the position was fixed, for a record that repeats an earlier fix (None: at
    # reported_at). Freshness counts from here, so a repeated fix never looks newer than it is.
    position_at: UtcTimestamp | None = None
    # A presence record: the gateway saw the unit connected at reported_at. Its status and
    # position repeat the last known ones; it reports nothing new and must never be read as
    # a change of availability.
    presence: bool = False
