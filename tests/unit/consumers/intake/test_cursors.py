"""The read API's cursors: a key round-trips, anything else is a 422 naming `cursor`."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest

from consumers.intake.cursors import decode_cursor, encode_cursor
from consumers.intake.errors import ApiError

AT = datetime(2026, 11, 26, 3, 4, 5, 123456, tzinfo=UTC)
ID = uuid.UUID("6f1d2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b")


def raw(parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def test_a_key_round_trips_to_the_microsecond() -> None:
    cursor = encode_cursor("i", (AT, ID))
    assert decode_cursor("i", cursor, (datetime, uuid.UUID)) == (AT, ID)
    assert decode_cursor("u", encode_cursor("u", ("cd-patrol-1",)), (str,)) == ("cd-patrol-1",)


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        "",
        raw({"i": 1}),  # not a list
        raw(["u", "cd-patrol-1"]),  # another list's
        raw(["i", AT.isoformat()]),  # too short
        raw(["i", AT.replace(tzinfo=None).isoformat(), str(ID)]),  # a time without a zone
        raw(["i", AT.isoformat(), "not-a-uuid"]),
        raw(["i", 12, 34]),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),  # not UTF-8
    ],
)
def test_anything_else_is_refused_naming_cursor(cursor: str) -> None:
    with pytest.raises(ApiError) as refused:
        decode_cursor("i", cursor, (datetime, uuid.UUID))
    assert refused.value.status == 422
    assert [f.field for f in refused.value.body.fields] == ["cursor"]
