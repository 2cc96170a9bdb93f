"""The intake API's request and answer bodies, and the alarm a request becomes.

The JSON schemas of these models are the OpenAPI document's, so the API cannot drift from
its documentation (docs/intake.md).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from consumers.auth import Principal, Role
from dispatch.events import (
    AlarmText,
    IdempotencyKey,
    Identifier,
    Name,
    Phone,
    Position,
    RawAlarm,
    SensorKind,
    SourceKind,
    UtcTimestamp,
)


def _printable(value: str) -> str:
    # PostgreSQL text and jsonb cannot hold NUL, and UTF-8 cannot hold a lone surrogate
    # (Python's JSON parser lets "\ud800" through): refuse both here, naming the field.
    if "\x00" in value:
        raise PydanticCustomError("nul_character", "Text must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PydanticCustomError(
            "invalid_unicode", "Text must be valid Unicode (no lone surrogates)"
        ) from None
    return value


class ApiModel(BaseModel):
    """Base of the API's own request and response bodies: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class AlarmRequest(ApiModel):
    """An alarm as a client raises it; intake adds the id, the time and the source."""

    text: Annotated[AlarmText, AfterValidator(_printable)] = Field(
        description="What was reported, Chinese or English, up to a long hotline transcript "
        "(1-20000 characters)."
    )
    enterprise_id: Identifier | None = Field(
        default=None,
        description="The enterprise it happened at; defaults to the caller's own. "
        "A caller bound to an enterprise may name only that one.",
    )
    idempotency_key: IdempotencyKey | None = Field(
        default=None,
        description="Your key for this alarm (printable ASCII, no spaces, up to 128): "
        "a retry with the same key and body returns the same receipt.",
    )
    sensor_kind: SensorKind | None = None
    position: Position | None = None
    place_id: Identifier | None = Field(default=None, description="A place of the zone file.")
    place_name: Annotated[Name, AfterValidator(_printable)] | None = None
    reporter_name: Annotated[Name, AfterValidator(_printable)] | None = None
    reporter_phone: Phone | None = None


class AlarmReceipt(ApiModel):
    """The first-time acceptance receipt: the alarm is on Kafka and will not be lost."""

    alarm_id: uuid.UUID
    received_at: UtcTimestamp
    idempotency_key: IdempotencyKey | None = None

    @classmethod
    def of(cls, alarm: RawAlarm) -> Self:
        """Return the receipt of an alarm."""
        return cls(
            alarm_id=alarm.alarm_id,
            received_at=alarm.received_at,
            idempotency_key=alarm.idempotency_key,
        )


class AlarmRecord(ApiModel):
    """A receipt together with the alarm exactly as it was written to `alarms.raw`."""

    receipt: AlarmReceipt
    alarm: RawAlarm


class FieldProblem(ApiModel):
    """One field at fault: a dotted path such as `position.lat`, or `$` for the whole body."""

    field: str
    message: str


class ErrorBody(ApiModel):
    """Every error answer: what went wrong, and the fields at fault when there are any."""

    error: str
    fields: list[FieldProblem] = Field(default_factory=list)


def source_kind_of(principal: Principal, request: AlarmRequest) -> SourceKind:
    """Return the source kind an alarm from principal gets.

    The hotline system is a sensor principal bound to no enterprise (docs/auth.md); an
    unbound sensor that names its sensor_kind is a machine, not the hotline.
    """
    if principal.role is Role.SENSOR:
        if principal.enterprise_id is None and request.sensor_kind is None:
            return SourceKind.HOTLINE
        return SourceKind.SENSOR
    return {
        Role.DESK: SourceKind.DESK,
        Role.GUARD: SourceKind.GUARD,
        Role.COMMANDER: SourceKind.COMMANDER,
    }[principal.role]


def raw_alarm_of(
    principal: Principal, request: AlarmRequest, *, enterprise_id: str | None, now: datetime
) -> RawAlarm:
    """Return the alarm to write for a request: a new id, the time, the source, the enterprise."""
    return RawAlarm(
        alarm_id=uuid.uuid4(),
        received_at=now,
        source_kind=source_kind_of(principal, request),
        source_id=principal.id,
        enterprise_id=enterprise_id,
        **request.model_dump(exclude={"enterprise_id"}),
    )


def request_hash(request: AlarmRequest, enterprise_id: str | None) -> bytes:
    """Return the SHA-256 of what the request asks for, key aside, enterprise resolved."""
    fields = request.model_dump(mode="json", exclude={"idempotency_key"})
    fields["enterprise_id"] = enterprise_id
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).digest()
