"""Records that could not be processed (`alarms.dlq`), kept with the reason they failed."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BeforeValidator, Field, PlainSerializer, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

from dispatch.events.base import EventId, EventModel, Identifier, Text, UtcTimestamp

MAX_KEY_BYTES = 1024
MAX_VALUE_BYTES = 1024 * 1024
MAX_ERRORS = 50
MAX_REASON_CHARS = 2000
MAX_FIELD_CHARS = 200


def _decode_base64(value: Any) -> Any:
    # A str can only be the wire form; bytes handed over in Python pass through untouched.
    if not isinstance(value, str):
        return value
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise PydanticCustomError(
            "base64_invalid", "Value is not valid base64: {error}", {"error": str(exc)}
        ) from None


def _encode_base64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _base64_schema(max_bytes: int) -> WithJsonSchema:
    max_chars = 4 * -(-max_bytes // 3)
    return WithJsonSchema({"type": "string", "contentEncoding": "base64", "maxLength": max_chars})


_AS_BASE64 = PlainSerializer(_encode_base64, return_type=str, when_used="json")
KafkaKey = Annotated[
    bytes,
    Field(max_length=MAX_KEY_BYTES),
    BeforeValidator(_decode_base64),
    _AS_BASE64,
    _base64_schema(MAX_KEY_BYTES),
]
KafkaValue = Annotated[
    bytes,
    Field(max_length=MAX_VALUE_BYTES),
    BeforeValidator(_decode_base64),
    _AS_BASE64,
    _base64_schema(MAX_VALUE_BYTES),
]
TopicName = Annotated[str, StringConstraints(max_length=249, pattern=r"^[A-Za-z0-9._-]{1,249}$")]


class FieldError(EventModel):
    """Name one field that failed validation (dotted path, `$` for the whole payload)."""

    field: Annotated[str, StringConstraints(min_length=1, max_length=MAX_FIELD_CHARS)]
    message: Text


def _encodable(text: str) -> str:
    # A reason may quote the bad input; a lone surrogate in it would make the letter unwritable.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


DEAD_LETTER_NAMESPACE = uuid.UUID("5b0c6f0e-3f1d-4a8e-9a55-0d1b2c3d4e5f")


class DeadLetter(EventModel):
    """Keep a record that a stage could not process, where it came from, and why."""

    schema_version: Literal[1] = 1
    event_id: EventId
    source_topic: TopicName
    partition: int = Field(ge=0, le=2**31 - 1)
    offset: int = Field(ge=0, le=2**63 - 1)
    # The record's place inside a bundle at that offset (streams.bundles); None: a plain record.
    bundle_index: int | None = Field(default=None, ge=0, le=2**31 - 1)
    key: KafkaKey | None = None
    key_truncated: bool = False
    value: KafkaValue
    value_truncated: bool = False
    reason: Text
    errors: tuple[FieldError, ...] = Field(default=(), max_length=MAX_ERRORS)
    stage: Identifier
    failed_at: UtcTimestamp

    @classmethod
    def capture(
        cls,
        *,
        source_topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        reason: str,
        stage: str,
        failed_at: datetime,
        errors: Sequence[FieldError] = (),
        bundle_index: int | None = None,
        max_value_bytes: int = MAX_VALUE_BYTES,
    ) -> Self:
        """Build a dead letter from any record, cutting oversized parts down to the bounds.

        max_value_bytes cuts the value shorter still, for a producer whose requests are
        smaller than the 2 MiB this topic takes.
        """
        # Whatever arrived must fit, or writing the dead letter would fail the worker as well.
        value = value or b""
        limit = min(max_value_bytes, MAX_VALUE_BYTES)
        # Derived from the record's position, so replaying the same bad record yields the same
        # dead-letter id and consumers of the DLQ can deduplicate; the records of one bundle
        # share an offset and differ by their index.
        position = f"{source_topic}:{partition}:{offset}"
        if bundle_index is not None:
            position += f":{bundle_index}"
        return cls(
            event_id=uuid.uuid5(DEAD_LETTER_NAMESPACE, position),
            source_topic=source_topic,
            partition=partition,
            offset=offset,
            bundle_index=bundle_index,
            key=None if key is None else key[:MAX_KEY_BYTES],
            key_truncated=key is not None and len(key) > MAX_KEY_BYTES,
            value=value[:limit],
            value_truncated=len(value) > limit,
            reason=_encodable(reason)[:MAX_REASON_CHARS] or "unknown",
            errors=tuple(errors[:MAX_ERRORS]),
            stage=stage,
            failed_at=failed_at,
        )
