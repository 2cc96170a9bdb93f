"""Opaque cursors for the read API's lists: where the last page ended, in the list's sort key.

Paging is by key, not by offset (`WHERE (key, id) < (last key, last id)`), so a row inserted
while a client pages does not shift the rows after it: no page repeats a row or skips one
(docs/api.md). A cursor is that key, tagged with its list, as JSON in URL-safe base64; it is
opaque to clients, and one that does not decode as a cursor of the list asked for is a 422
naming `cursor`. It carries no filter, so a client keeps its query and changes only `cursor`.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from consumers.intake.errors import ApiError, field_error

MAX_CURSOR_CHARS = 400

# The types a cursor may hold, in the order of each list's sort key.
KeyPart = type[datetime] | type[uuid.UUID] | type[str] | type[int]


def encode_cursor(tag: str, key: Sequence[datetime | uuid.UUID | str | int]) -> str:
    """Return the cursor after the row whose sort key is key, in the list named tag."""
    parts: list[Any] = [tag]
    for value in key:
        parts.append(value.isoformat() if isinstance(value, datetime) else value)
        if isinstance(value, uuid.UUID):
            parts[-1] = str(value)
    text = json.dumps(parts, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(tag: str, cursor: str, types: Sequence[KeyPart]) -> tuple[Any, ...]:
    """Return the sort key a cursor of the list tag holds; raise a 422 naming `cursor`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(parts, list) or len(parts) != len(types) + 1 or parts[0] != tag:
            raise ValueError("not a cursor of this list")
        return tuple(_part(kind, value) for kind, value in zip(types, parts[1:], strict=True))
    except (ValueError, TypeError, AttributeError, UnicodeError, binascii.Error):
        raise _bad_cursor() from None


def _part(kind: KeyPart, value: Any) -> Any:
    if kind is datetime:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("a cursor's time has a zone")
        return parsed
    if kind is uuid.UUID:
        return uuid.UUID(value)
    if kind is int:
        if type(value) is not int:
            raise TypeError("not an integer")
        return value
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def _bad_cursor() -> ApiError:
    return field_error(
        422,
        "invalid request: cursor",
        "cursor",
        "not a cursor of this list; start again without one, or pass next_cursor as given",
    )
