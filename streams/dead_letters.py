"""Decode at the edge of an agent, and send what does not decode to the dead-letter topic."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from dispatch.events import DeadLetter, EventModel, FieldError, InvalidEvent, decode, encode, key_of

E = TypeVar("E", bound=EventModel)


def dead_letter_for(
    message: Any, *, stage: str, reason: str, errors: tuple[FieldError, ...] = ()
) -> DeadLetter:
    """Capture a Faust message that a stage could not process, with its original bytes."""
    value = message.value
    return DeadLetter.capture(
        source_topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key if isinstance(message.key, bytes) else None,
        value=value if isinstance(value, bytes) else repr(value).encode(),
        reason=reason,
        stage=stage,
        failed_at=datetime.now(UTC),
        errors=errors,
    )


async def decode_or_dead_letter(model: type[E], event: Any, dlq: Any, *, stage: str) -> E | None:
    """Return the decoded value of a Faust event, or dead-letter it and return None."""
    try:
        return decode(model, event.value)
    except InvalidEvent as exc:
        letter = dead_letter_for(
            event.message, stage=stage, reason=str(exc), errors=tuple(exc.errors)
        )
        await dlq.send(key=key_of(letter), value=encode(letter))
        return None
