"""Alarms as received (`alarms.raw`) and as classified into incidents (`alarms.classified`)."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from dispatch.events.base import (
    AlarmText,
    Capability,
    EventId,
    EventModel,
    IdempotencyKey,
    Identifier,
    Name,
    ObservedAt,
    Phone,
    Position,
    UtcTimestamp,
)


class SourceKind(StrEnum):
    """Who or what raised an alarm."""

    DESK = "desk"
    GUARD = "guard"
    SENSOR = "sensor"
    HOTLINE = "hotline"
    COMMANDER = "commander"


class SensorKind(StrEnum):
    """The kind of machine that raised a sensor alarm."""

    CAMERA_A = "camera_a"
    CAMERA_B = "camera_b"
    HOME_MONITOR = "home_monitor"
    ANTI_CLIMB = "anti_climb"
    LOCK = "lock"
    OTHER = "other"


class Category(StrEnum):
    """What kind of incident an alarm reports."""

    FIRE = "fire"
    MEDICAL = "medical"
    ROBBERY = "robbery"
    THEFT = "theft"
    FIGHT = "fight"
    TRAFFIC = "traffic"
    DISPUTE = "dispute"
    INTRUSION = "intrusion"
    SUSPICIOUS_PERSON = "suspicious_person"
    HAZARD = "hazard"
    HELP_REQUEST = "help_request"
    OTHER = "other"
    # Nothing matched: the commander's queue at P2 with the text, and the nearest patrol.
    UNCLASSIFIED = "unclassified"


class Priority(StrEnum):
    """Urgency, P1 most urgent; it sets the ack timeout and how many units go."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


class PlaceType(StrEnum):
    """The kind of place an incident is at, which shapes priority and routing."""

    ROAD = "road"
    PARK = "park"
    STATION_SQUARE = "station_square"
    SCHOOL = "school"
    ENTERPRISE = "enterprise"
    PARKING = "parking"
    RESIDENTIAL = "residential"
    OTHER = "other"


class RawAlarm(EventModel):
    """Record an alarm exactly as a desk, guard, sensor, hotline or commander raised it."""

    schema_version: Literal[1] = 1
    alarm_id: EventId
    # Refused when far ahead of the reader's clock: timing is measured from it.
    received_at: ObservedAt
    source_kind: SourceKind
    source_id: Identifier
    enterprise_id: Identifier | None = None
    idempotency_key: IdempotencyKey | None = None
    text: AlarmText
    sensor_kind: SensorKind | None = None
    # Any, several or none of these: with none, the place comes from the source's identity.
    position: Position | None = None
    place_id: Identifier | None = None
    place_name: Name | None = None
    reporter_name: Name | None = None
    reporter_phone: Phone | None = None
    # The commander who placed this alarm on the map: the same alarm (id, time, words) sent
    # again with the position the zone could not find (docs/lifecycle.md, "Unlocated alarms").
    placed_by: Identifier | None = None


MergeKey = Annotated[str, StringConstraints(min_length=1, max_length=160)]


class ClassifiedAlarm(EventModel):
    """Record one alarm's category, priority, needs and place, and the incident it belongs to."""

    schema_version: Literal[1] = 1
    alarm_id: uuid.UUID
    incident_id: uuid.UUID
    category: Category
    priority: Priority
    required_capabilities: tuple[Capability, ...] = Field(default=(), max_length=8)
    # How many units to send at once (a P1 robbery may need two patrols).
    units_needed: int = Field(default=1, ge=1, le=10)
    # Units to send per capability, in order of need ([["fire", 2], ["medical", 1]]); empty in
    # records from before counted needs, which routing reads from the two fields above.
    needs: tuple[tuple[Capability, Annotated[int, Field(ge=1, le=10)]], ...] = Field(
        default=(), max_length=8
    )
    position: Position
    grid_id: Identifier | None = None
    place_id: Identifier | None = None
    place_name: Name | None = None
    place_type: PlaceType
    school_id: Identifier | None = None
    enterprise_id: Identifier | None = None
    merged_into: uuid.UUID | None = None
    # Alarms of one place and kind share this key; inside the merge window they share an incident.
    merge_key: MergeKey | None = None
    received_at: UtcTimestamp
    classified_at: UtcTimestamp
    text: AlarmText
    source_kind: SourceKind
    source_id: Identifier
    # Copied from alarms.raw: who called it in, and the number to call back.
    reporter_name: Name | None = None
    reporter_phone: Phone | None = None
    # Copied from alarms.raw: the commander who placed an alarm the zone could not.
    placed_by: Identifier | None = None

    @field_validator("merged_into")
    @classmethod
    def _merged_into_own_incident(
        cls, merged_into: uuid.UUID | None, info: ValidationInfo
    ) -> uuid.UUID | None:
        # A field validator, not a model validator, so that the error names this field.
        incident_id = info.data.get("incident_id")
        if merged_into is not None and incident_id is not None and merged_into != incident_id:
            raise PydanticCustomError(
                "merged_into_mismatch",
                "merged_into must equal incident_id: an alarm merges into its own incident",
            )
        return merged_into


class LocatedAlarm(ClassifiedAlarm):
    """A classified alarm on its way to the merge step, keyed by its merge key."""

    merge_key: MergeKey
    # Set by the route stage on an alarm it sends back because the incident its merge key led
    # to has closed: the merge step opens a new incident for the key instead.
    reopen_of: uuid.UUID | None = None
