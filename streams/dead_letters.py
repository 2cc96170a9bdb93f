"""Capture what a stage could not process, with its original bytes, for the dead-letter topic."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dispatch.events import DeadLetter, FieldError
from streams.bundles import Bundled


def dead_letter_for(
    message: Any, *, stage: str, reason: str, errors: tuple[FieldError, ...] = ()
) -> DeadLetter:
    """Capture a Faust message or aiokafka record that a stage could not process."""
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
        # A record out of a bundle says where in the bundle it was.
        bundle_index=message.index if isinstance(message, Bundled) else None,
    )
