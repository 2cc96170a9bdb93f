"""Shared base model and field types for the events on every topic."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
)
from pydantic_core import PydanticCustomError


class EventModel(BaseModel):
    """Base of every event and of every value nested in one: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _to_utc_millis(value: datetime) -> datetime:
    if value.tzinfo is UTC:
        # The common case (our own clocks, values already checked): only truncate.
        us = value.microsecond
        return value if us % 1000 == 0 else value.replace(microsecond=us - us % 1000)
    if value.tzinfo is None or value.utcoffset() is None:
        raise PydanticCustomError(
            "timezone_required",
            "Timestamp must include a timezone, e.g. '2026-11-26T03:04:05.123Z' or '+08:00'",
        )
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError(
            "timestamp_range", "Timestamp is out of range once converted to UTC"
        ) from None
    # Truncate rather than round so a timestamp never moves past the moment it records.
    return utc.replace(microsecond=utc.microsecond - utc.microsecond % 1000)


def _own_form_fast(value: object) -> object:
    """Parse a timestamp in the very form _iso_utc_millis writes (`2026-11-26T03:04:05.123Z`)
    with the standard library, which gives it `datetime.UTC` at once (pydantic's parser gives
    its own tzinfo, which _to_utc_millis must then convert: three times the cost, and a fifth
    of the sink's CPU). Anything else, or a string of that shape the standard library refuses
    (a day 32, a leap second), is left to pydantic's parser and its errors."""
    if (
        type(value) is str
        and len(value) == 24
        and value[23] == "Z"
        and value[10] == "T"
        and value[19] == "."
        and value[4] == value[7] == "-"
        and value[13] == value[16] == ":"
    ):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def _iso_utc_millis(value: datetime) -> str:
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


UtcTimestamp = Annotated[
    datetime,
    BeforeValidator(_own_form_fast),
    AfterValidator(_to_utc_millis),
    PlainSerializer(_iso_utc_millis, return_type=str, when_used="json"),
]
"""An aware instant in UTC at millisecond precision, written as `2026-11-26T03:04:05.123Z`."""

# How far ahead of the receiving process's clock an instant that was observed (received,
# issued, reported) may be: clocks drift by seconds, not minutes. Further ahead it is a
# broken clock or a forged record, and every duration measured from it would be negative.
MAX_AHEAD_OF_CLOCK = timedelta(minutes=5)


def _not_ahead_of_clock(value: datetime) -> datetime:
    if value > datetime.now(UTC) + MAX_AHEAD_OF_CLOCK:
        raise PydanticCustomError(
            "timestamp_in_future",
            "Timestamp is more than {minutes} minutes ahead of the receiver's clock",
            {"minutes": int(MAX_AHEAD_OF_CLOCK.total_seconds() // 60)},
        )
    return value


ObservedAt = Annotated[UtcTimestamp, AfterValidator(_not_ahead_of_clock)]
"""A UtcTimestamp of something already observed: at most MAX_AHEAD_OF_CLOCK past now."""

ShortText = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Summary = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
ALARM_TEXT_CHARS = 20_000
AlarmText = Annotated[str, StringConstraints(min_length=1, max_length=ALARM_TEXT_CHARS)]
"""What a caller said: up to a long hotline transcript (about 60 KB of UTF-8 Chinese), which
the classifier reads whole (docs/classification.md)."""

Identifier = Annotated[
    str,
    StringConstraints(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"),
]
"""An id of a unit, enterprise, grid, place, device or principal: ASCII, 1..64 characters."""

Capability = Annotated[str, StringConstraints(max_length=32, pattern=r"^[a-z][a-z0-9_]{0,31}$")]
"""A skill a unit offers and an alarm needs, e.g. `patrol`, `fire`, `medical`, `mediation`."""

Phone = Annotated[str, StringConstraints(max_length=32, pattern=r"^\+?[0-9][0-9 -]{2,30}$")]

IdempotencyKey = Annotated[str, StringConstraints(max_length=128, pattern=r"^[!-~]{1,128}$")]
"""A client-chosen key (printable ASCII, no spaces) that makes a resubmitted alarm a no-op."""

# Required, never defaulted: a record that arrives without its id must be refused, not given
# a fresh id on every parse, or a replay would look new and defeat deduplication.
EventId = Annotated[
    uuid.UUID,
    Field(description="Generated once by the producer (uuid4); consumers deduplicate on it."),
]


class Position(EventModel):
    """A WGS-84 point, with the radius of the fix when the device reports one."""

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000, allow_inf_nan=False)
