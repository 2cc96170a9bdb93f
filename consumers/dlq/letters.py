"""Dead letters as the record keeps them (`record_dead_letters`), with their replays.

The sink stores each `alarms.dlq` event's key and value as the base64 text its JSON carries
(docs/record.md), so the bytes a replay publishes are exactly the bytes that failed. A list
reads only the head of each value: a dead letter may carry a megabyte.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg

from dispatch.display import printable
from streams.bundles import MAGIC

# The head of a value a list reads: base64 of 3,072 bytes (a multiple of 4 characters).
HEAD_CHARS = 4096
PREVIEW_CHARS = 72
# An alarm's id near the start of its JSON (every alarm record has it among its first fields).
_ALARM_ID = re.compile(r'"alarm_id"\s*:\s*"([0-9a-fA-F-]{36})"')
PAGE = 200
# An alarm's words, in the head of a JSON value that was cut there (perhaps inside them).
_TEXT_FIELD = re.compile(r'"text"\s*:\s*"((?:[^"\\]|\\.)*)')


@dataclass(frozen=True, slots=True)
class Replay:
    """A dead letter's replay: where it was published, when, by whom, how many times."""

    topic: str
    partition: int
    offset: int
    replayed_at: datetime
    actor: str
    replays: int


@dataclass(frozen=True, slots=True)
class Reached:
    """The record's word that an alarm reached an incident: which, and when classified."""

    incident_id: uuid.UUID
    classified_at: datetime


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    """One row of `record_dead_letters` (value whole, or its head in a list)."""

    event_id: uuid.UUID
    source_topic: str
    partition: int
    offset: int
    bundle_index: int | None
    key: str | None  # base64, as stored
    key_truncated: bool
    value: str  # base64, as stored: the whole value, or its head (value_chars says which)
    value_chars: int
    value_truncated: bool
    reason: str
    errors: tuple[dict[str, Any], ...]
    stage: str
    failed_at: datetime
    replay: Replay | None
    # The dead letter whose replay this record is (it failed again), if it is one.
    replay_of: uuid.UUID | None
    # The incident the alarm reached after all (a commander placed it, a replay worked).
    reached: Reached | None = None

    @property
    def alarm_id(self) -> uuid.UUID | None:
        """Return the id of the alarm the value holds, read from its head, or None."""
        head = self.value_head()
        match = _ALARM_ID.search(head[:2048].decode("ascii", "replace")) if head else None
        return uuid.UUID(match.group(1)) if match else None

    @property
    def value_bytes(self) -> int:
        """Return the size of the stored value in bytes."""
        padding = len(self.value) - len(self.value.rstrip("=")) if self.is_whole else 0
        return self.value_chars * 3 // 4 - padding

    @property
    def is_whole(self) -> bool:
        """Tell whether `value` holds the whole stored value, not only its head."""
        return len(self.value) == self.value_chars

    def value_head(self) -> bytes | None:
        """Return the bytes of the value read (None: the stored text is not base64)."""
        return _unbase64(self.value)

    def key_bytes(self) -> bytes | None:
        """Return the key's bytes (None for no key or a key that is not base64)."""
        return None if self.key is None else _unbase64(self.key)

    @property
    def position(self) -> str:
        """Return where the record was read: `topic[partition]@offset`, `#index` in a bundle."""
        at = f"{self.source_topic}[{self.partition}]@{self.offset}"
        return at if self.bundle_index is None else f"{at}#{self.bundle_index}"


@dataclass(frozen=True, slots=True)
class DeadLetterQuery:
    """Which dead letters to list: since a time, of one stage, not yet replayed, how many."""

    since: datetime | None = None
    stage: str | None = None
    pending_only: bool = False
    limit: int = 50


_COLUMNS = """
    d.event_id, d.source_topic, d.source_partition, d.source_offset, d.bundle_index,
    d.key, d.key_truncated, d.value_truncated, d.reason, d.errors::text AS errors, d.stage,
    d.failed_at, length(d.value) AS value_chars,
    r.topic AS r_topic, r.partition AS r_partition, r."offset" AS r_offset,
    r.replayed_at AS r_at, r.actor AS r_actor, r.replays AS r_replays,
    (SELECT o.dead_letter_id FROM dlq_replays o
      WHERE o.topic = d.source_topic AND o.partition = d.source_partition
        AND o."offset" = d.source_offset
      LIMIT 1) AS replay_of
"""
_FROM = "FROM record_dead_letters d LEFT JOIN dlq_replays r ON r.dead_letter_id = d.event_id"


async def dead_letters(conn: asyncpg.Connection, query: DeadLetterQuery) -> list[StoredDeadLetter]:
    """Return the dead letters query asks for, newest first, each value's head only.

    Pending means neither replayed nor handled otherwise (its alarm reached an incident since,
    which only the record of alarms can say): read page by page until `limit` are found.
    """
    found: list[StoredDeadLetter] = []
    after: tuple[datetime, uuid.UUID] | None = None
    while len(found) < query.limit:
        page = max(query.limit - len(found), PAGE) if query.pending_only else query.limit
        rows = await conn.fetch(
            f"SELECT {_COLUMNS}, left(d.value, {HEAD_CHARS}) AS value {_FROM} "
            "WHERE ($1::timestamptz IS NULL OR d.failed_at >= $1) "
            "AND ($2::text IS NULL OR d.stage = $2) "
            "AND (NOT $3::boolean OR r.dead_letter_id IS NULL) "
            "AND ($4::timestamptz IS NULL OR (d.failed_at, d.event_id) < ($4, $5::uuid)) "
            "ORDER BY d.failed_at DESC, d.event_id DESC LIMIT $6",
            query.since,
            query.stage,
            query.pending_only,
            after[0] if after else None,
            after[1] if after else None,
            page,
        )
        letters = await with_reached(conn, [_letter(row) for row in rows])
        found += [x for x in letters if not (query.pending_only and x.reached is not None)]
        if len(rows) < page:
            break
        after = (rows[-1]["failed_at"], rows[-1]["event_id"])
    return found[: query.limit]


async def with_reached(
    conn: asyncpg.Connection, letters: list[StoredDeadLetter]
) -> list[StoredDeadLetter]:
    """Return the letters with the incident each one's alarm reached since, where it did."""
    ids = {x.alarm_id for x in letters} - {None}
    if not ids:
        return letters
    rows = await conn.fetch(
        "SELECT alarm_id, incident_id, classified_at FROM record_alarms "
        "WHERE alarm_id = ANY($1::uuid[]) AND classified_at IS NOT NULL "
        "AND incident_id IS NOT NULL",
        list(ids),
    )
    reached = {r["alarm_id"]: Reached(r["incident_id"], r["classified_at"]) for r in rows}
    return [
        replace(x, reached=reached[x.alarm_id]) if x.alarm_id in reached else x for x in letters
    ]


async def find_dead_letter(
    conn: asyncpg.Connection, event_id: uuid.UUID
) -> StoredDeadLetter | None:
    """Return one dead letter with its whole value and its replay, or None."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS}, d.value {_FROM} WHERE d.event_id = $1", event_id)
    if row is None:
        return None
    (letter,) = await with_reached(conn, [_letter(row)])
    return letter


async def lock_dead_letter(conn: asyncpg.Connection, event_id: uuid.UUID) -> bool:
    """Lock a dead letter's row until the transaction ends; False when there is none.

    Two operators replaying one dead letter at once: the second waits here, then reads the
    ledger row the first committed (a statement after the lock sees it) and publishes nothing.
    """
    found = await conn.fetchval(
        "SELECT true FROM record_dead_letters WHERE event_id = $1 FOR UPDATE", event_id
    )
    return bool(found)


def _letter(row: asyncpg.Record) -> StoredDeadLetter:
    replay = None
    if row["r_topic"] is not None:
        replay = Replay(
            topic=row["r_topic"],
            partition=row["r_partition"],
            offset=row["r_offset"],
            replayed_at=row["r_at"],
            actor=row["r_actor"],
            replays=row["r_replays"],
        )
    errors = json.loads(row["errors"]) if row["errors"] else []
    return StoredDeadLetter(
        event_id=row["event_id"],
        source_topic=row["source_topic"],
        partition=row["source_partition"],
        offset=row["source_offset"],
        bundle_index=row["bundle_index"],
        key=row["key"],
        key_truncated=row["key_truncated"],
        value=row["value"],
        value_chars=row["value_chars"],
        value_truncated=row["value_truncated"],
        reason=row["reason"],
        errors=tuple(e for e in errors if isinstance(e, dict)),
        stage=row["stage"],
        failed_at=row["failed_at"],
        replay=replay,
        replay_of=row["replay_of"],
    )


def _unbase64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def preview(letter: StoredDeadLetter, limit: int = PREVIEW_CHARS) -> str:
    """Return a one-line glimpse of a dead letter's value: an alarm's words, else its text."""
    head = letter.value_head()
    if head is None:
        return "(stored value is not base64)"
    if not head:
        return "(empty)"
    if head.startswith(MAGIC):
        return f"(a bundle of {letter.value_bytes} bytes)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not letter.is_whole and exc.start >= len(head) - 3:
            text = head[: exc.start].decode("utf-8")  # the head cut a character in two
        else:
            return f"({letter.value_bytes} bytes, not UTF-8: {head[:12].hex(' ')}…)"
    return _one_line(_words_of(text) or text, limit)


def _words_of(text: str) -> str | None:
    # What a person recognises an alarm by is what the caller said, not its ids.
    try:
        value = json.loads(text)
    except ValueError:
        match = _TEXT_FIELD.search(text)
        return None if match is None else _string_literal(match.group(1))
    words = value.get("text") if isinstance(value, dict) else None
    return words if isinstance(words, str) and words else None


def _string_literal(body: str) -> str | None:
    # The head may end inside an escape (`\u4e`): drop what is left of it.
    for cut in range(min(6, len(body)) + 1):
        try:
            found = json.loads('"' + body[: len(body) - cut] + '"')
        except ValueError:
            continue
        return found if isinstance(found, str) and found else None
    return None


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(printable(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
