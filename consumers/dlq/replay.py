"""Put a dead letter's original record back on its topic: once, audited, or say why not.

What may be replayed is an alarm that never reached an incident (docs/operations-dlq.md): a
raw alarm the classify stage could not place, or a record of the stages' own alarm hops that
failed to decode. Commands, responses and unit reports are not replayed: each applies to the
incident or the unit as it stood when it was given, and a late one would act on a newer
picture. The sink's own dead letters are not either: the pipeline handled those records, and
putting them back on their topic would make every consumer handle them again.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import asyncpg

from consumers.auth import Principal, Role, can_command
from consumers.auth import record as audit
from consumers.dlq.letters import StoredDeadLetter, find_dead_letter, lock_dead_letter
from dispatch.events import ALARMS_CLASSIFIED, ALARMS_LOCATED, ALARMS_RAW, TOPICS
from streams.bundles import MAGIC

REPLAYABLE_TOPICS = frozenset({ALARMS_RAW.name, ALARMS_LOCATED.name, ALARMS_CLASSIFIED.name})
AUDIT_ACTION = "dlq.replay"
# Set on every replayed record, so a reader of the topic can tell it from the original.
REPLAY_HEADER = "dispatch-replay-of"

_NOT_REPLAYED: Mapping[str, str] = {
    "commander.commands": "a command applies to the incident as it stood when it was given; "
    "the commander gives it again on the board",
    "responses.events": "a unit's response applies to its job as it stood then; the unit "
    "answers again on its phone",
    "units.status": "a unit's report is superseded by its next one",
    "dispatch.ticks": "the route stage makes its deadline ticks again by itself",
}


class ReplayRefused(Exception):
    """Raised for an operator who may not replay (a principal that is no commander)."""


@dataclass(frozen=True, slots=True)
class Published:
    """Where Kafka acknowledged a replayed record."""

    topic: str
    partition: int
    offset: int


# Publishes (topic, key, value, headers) with acks=all; returns where it landed.
Publish = Callable[[str, bytes | None, bytes, list[tuple[str, bytes]]], Awaitable[Published]]


class Result(StrEnum):
    """What a replay of one dead letter did."""

    PUBLISHED = "published"
    ALREADY = "already_replayed"
    # Its alarm reached an incident since (a commander placed it, an earlier replay worked).
    HANDLED = "already_handled"
    REFUSED = "refused"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One dead letter's replay: what happened, in a sentence for the operator."""

    event_id: uuid.UUID
    result: Result
    message: str
    published: Published | None = None
    replays: int = 0


def catalog_name(topic: str) -> str | None:
    """Return the catalog topic a topic name is, allowing a deployment's prefix (`t1.`)."""
    for name in TOPICS:
        if topic == name or topic.endswith("." + name):
            return name
    return None


def why_not_replayable(letter: StoredDeadLetter, *, force: bool = False) -> str | None:
    """Return why a dead letter must not be published again, or None when it may be."""
    name = catalog_name(letter.source_topic)
    if letter.stage == "sink":
        return (
            "the sink could not store this record, but the pipeline handled it: putting it "
            f"back on {letter.source_topic} would make every consumer handle it again"
        )
    if name not in REPLAYABLE_TOPICS:
        why = _NOT_REPLAYED.get(name or "", "only alarms are replayed")
        return f"a record of {letter.source_topic} is not replayed: {why}"
    if letter.value_truncated or letter.key_truncated:
        cut = "value" if letter.value_truncated else "key"
        return (
            f"its {cut} was cut short when it was dead-lettered ({cut}_truncated, "
            f"{letter.value_bytes} bytes kept): replaying it would publish a broken record; "
            "have its source send the alarm again"
        )
    value = letter.value_head()
    if value is None or (letter.key is not None and letter.key_bytes() is None):
        return "its stored key or value is not base64, so its original bytes are unknown"
    if value.startswith(MAGIC):
        return "it is a whole bundle whose framing was broken; its alarms cannot be told apart"
    if letter.errors and not force:
        first = letter.errors[0]
        return (
            f"it failed validation ({first.get('field', '?')}: {first.get('message', '?')}): "
            "the same bytes fail again unless the schema changed; --force publishes it anyway"
        )
    return None


async def replay_dead_letter(
    conn: asyncpg.Connection,
    event_id: uuid.UUID,
    *,
    publish: Publish,
    actor: str,
    force: bool = False,
    context: Mapping[str, object] | None = None,
) -> Outcome:
    """Publish a dead letter's record again unless it was (or must not be); audit it.

    One transaction: the dead letter's row is locked, the ledger read, the record published
    (acks=all) and the ledger row and audit row written. A publish that fails rolls it all
    back and raises; a commit that fails after the publish leaves a record published twice at
    worst, which the stages take as the replay of one alarm (docs/operations-dlq.md).
    """
    async with conn.transaction():
        if not await lock_dead_letter(conn, event_id):
            return Outcome(event_id, Result.UNKNOWN, _unknown(event_id))
        letter = await find_dead_letter(conn, event_id)
        assert letter is not None  # locked above, in this transaction
        if letter.reached is not None:
            # Even --force: the stages would take it for a new alarm once they forgot this
            # one (the route stage remembers alarms for a day) and send units a second time.
            reached = letter.reached
            message = (
                f"nothing published: its alarm {letter.alarm_id} already reached incident "
                f"{reached.incident_id} (classified "
                f"{reached.classified_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}); "
                "replaying it would handle it twice"
            )
            return Outcome(event_id, Result.HANDLED, message)
        done = letter.replay
        if done is not None and not force:
            message = (
                f"already replayed {done.replayed_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ} by "
                f"{done.actor} to {done.topic}[{done.partition}]@{done.offset}: nothing "
                "published now (--force publishes it again)"
            )
            return Outcome(event_id, Result.ALREADY, message, replays=done.replays)
        why = why_not_replayable(letter, force=force)
        if why is not None:
            return Outcome(event_id, Result.REFUSED, why)
        value = letter.value_head()
        assert value is not None  # why_not_replayable refuses a value that is not base64
        headers = [(REPLAY_HEADER, str(event_id).encode())]
        published = await publish(letter.source_topic, letter.key_bytes(), value, headers)
        replays = 1 if done is None else done.replays + 1
        audit_id = await audit(
            conn,
            actor=actor,
            action=AUDIT_ACTION,
            subject=dead_letter_subject(event_id),
            detail={
                "source": letter.position,
                "stage": letter.stage,
                "reason": letter.reason[:500],
                "published": f"{published.topic}[{published.partition}]@{published.offset}",
                "replays": replays,
                "forced": force and done is not None,
                **(context or {}),
            },
        )
        await conn.execute(
            'INSERT INTO dlq_replays (dead_letter_id, topic, partition, "offset", replayed_at, '
            "actor, replays, audit_id) VALUES ($1, $2, $3, $4, $5, $6, 1, $7) "
            "ON CONFLICT (dead_letter_id) DO UPDATE SET topic = excluded.topic, "
            'partition = excluded.partition, "offset" = excluded."offset", '
            "replayed_at = excluded.replayed_at, actor = excluded.actor, "
            "replays = dlq_replays.replays + 1, audit_id = excluded.audit_id",
            event_id,
            published.topic,
            published.partition,
            published.offset,
            datetime.now(UTC),
            actor,
            audit_id,
        )
    again = "" if replays == 1 else f" (replay {replays} of this dead letter)"
    message = f"published to {published.topic}[{published.partition}]@{published.offset}{again}"
    return Outcome(event_id, Result.PUBLISHED, message, published, replays)


async def operator(conn: asyncpg.Connection, principal_id: str) -> str:
    """Return principal_id as the actor of a replay when it is an active commander principal.

    Replaying an alarm is an operational act, which only a commander's role allows
    (consumers/auth/policy.py; an administrator manages principals and nothing operational).
    """
    row = await conn.fetchrow(
        "SELECT id, role, enterprise_id, unit_id, name, disabled_at FROM principals WHERE id = $1",
        principal_id,
    )
    if row is None:
        raise ReplayRefused(
            f"--actor {principal_id!r}: no such principal (`dispatch principal list`)"
        )
    if row["disabled_at"] is not None:
        raise ReplayRefused(f"--actor {principal_id!r}: the principal is disabled")
    principal = Principal(
        id=row["id"],
        role=Role(row["role"]),
        enterprise_id=row["enterprise_id"],
        unit_id=row["unit_id"],
        name=row["name"],
    )
    if not can_command(principal):
        raise ReplayRefused(
            f"--actor {principal_id!r} is a {principal.role} principal; replaying dead letters "
            "is an operational act of a commander"
        )
    return principal.id


def dead_letter_subject(event_id: uuid.UUID) -> str:
    """Return the audit subject of a dead letter."""
    return f"dead_letter:{event_id}"


def _unknown(event_id: uuid.UUID) -> str:
    return (
        f"no dead letter {event_id} in the record (ids as `dispatch dlq list` shows them; "
        "the sink stores a dead letter a moment after alarms.dlq has it)"
    )
