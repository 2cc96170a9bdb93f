"""`dispatch dlq list` and `dispatch dlq replay ID…`: the dead letters an operator handles.

`list` reads the record (`record_dead_letters`, written by the sink) newest first; `replay`
puts a dead letter's original record back on its topic once the zone or the rules were fixed,
once per dead letter, audited. docs/operations-dlq.md is the operator's page.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

# The house way to reach the store from the command line: connect, say what it cannot reach,
# apply the migrations, run the work.
from cli.token_commands import EXIT_REFUSED, EXIT_USAGE, _with_store, cli_actor, fail, when
from consumers.db import MigrationError
from consumers.dlq import (
    DeadLetterQuery,
    Outcome,
    Published,
    ReplayRefused,
    Result,
    StoredDeadLetter,
    dead_letters,
    operator,
    preview,
    replay_dead_letter,
    why_not_replayable,
)
from consumers.kafka_client import kafka_options
from dispatch.settings import Settings
from infra.processes import Say
from streams.partitioner import keyed_partitioner

MAX_LIST = 10_000
KAFKA_START_S = 30.0
_AGO = re.compile(r"^(\d{1,6})([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

Work = Callable[[asyncpg.Connection], Awaitable[int]]


def since_of(text: str) -> datetime:
    """Parse --since: an age (`90m`, `2h`, `7d`) or an ISO 8601 instant (naive means UTC)."""
    ago = _AGO.match(text.strip())
    if ago:
        return datetime.now(UTC) - timedelta(**{_UNITS[ago[2]]: int(ago[1])})
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an age (30m, 2h, 7d) nor a time (2026-12-06T08:00+08:00)"
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def limit_of(text: str) -> int:
    """Parse --limit: 1 to MAX_LIST."""
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIST:
        raise argparse.ArgumentTypeError(f"--limit is a number from 1 to {MAX_LIST}, not {text!r}")
    return limit


def register(sub: Any) -> None:
    """Add the `dlq` subcommand group."""
    dlq: argparse.ArgumentParser = sub.add_parser(
        "dlq", help="list dead letters, replay them once the zone or rules are fixed"
    )
    actions = dlq.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="dead letters, newest first")
    listing.add_argument("--since", type=since_of, help="an age (2h, 7d) or an ISO time")
    listing.add_argument("--stage", help="only this stage's (classify, merge, route, sink)")
    listing.add_argument("--pending", action="store_true", help="only those not yet replayed")
    listing.add_argument("--limit", type=limit_of, default=50, help="at most N (default 50)")
    listing.add_argument("--json", action="store_true", help="one JSON document, every field")
    listing.set_defaults(handler=dlq_list)
    replay = actions.add_parser("replay", help="publish dead letters' records again, once each")
    replay.add_argument("ids", nargs="+", metavar="ID", help="dead letter ids, as listed")
    replay.add_argument(
        "--actor",
        metavar="PRINCIPAL",
        help="the commander principal who decided it (default: cli:<os user>)",
    )
    replay.add_argument(
        "--force",
        action="store_true",
        help="publish even one already replayed, or one that failed validation",
    )
    replay.set_defaults(handler=dlq_replay)


def dlq_list(args: argparse.Namespace, settings: Settings, say: Say) -> int:
    """Print the dead letters asked for."""
    query = DeadLetterQuery(
        since=args.since, stage=args.stage, pending_only=args.pending, limit=args.limit
    )

    async def work(conn: asyncpg.Connection) -> int:
        letters = await dead_letters(conn, query)
        if args.json:
            say(json.dumps([as_json(letter) for letter in letters], ensure_ascii=False))
            return 0
        say(f"{len(letters)} dead letter{'s' if len(letters) != 1 else ''}, newest first")
        for letter in letters:
            for line in as_lines(letter):
                say(line)
        return 0

    return _run(settings, say, work)


def status_of(letter: StoredDeadLetter) -> str:
    """Say where a dead letter stands: pending, replayed (when, how often), handled (its alarm
    reached an incident otherwise, e.g. placed by a commander), or not replayable."""
    if letter.replay is not None:
        times = f" (x{letter.replay.replays})" if letter.replay.replays > 1 else ""
        return f"replayed {when(letter.replay.replayed_at)}{times}"
    if letter.reached is not None:
        return f"handled: its alarm reached incident {letter.reached.incident_id}"
    return "pending" if why_not_replayable(letter) is None else "not replayable"


def as_lines(letter: StoredDeadLetter) -> list[str]:
    """Return a dead letter as the lines of the table: a heading and what it was."""
    lines = [
        f"{letter.event_id}  {when(letter.failed_at)}  {letter.stage:<8}  "
        f"{letter.position}  {status_of(letter)}",
        f"    reason: {_cut(letter.reason, 160)}",
        f"    value:  {preview(letter)} ({letter.value_bytes} bytes)",
    ]
    if letter.replay_of is not None:
        lines.append(f"    the replay of dead letter {letter.replay_of}, failed again")
    if letter.replay is None and letter.reached is None and (why := why_not_replayable(letter)):
        lines.append(f"    not replayable: {_cut(why, 160)}")
    return lines


def as_json(letter: StoredDeadLetter) -> dict[str, Any]:
    """Return every field of a dead letter for --json (the value as its preview and size)."""
    replay = letter.replay
    return {
        "event_id": str(letter.event_id),
        "failed_at": when(letter.failed_at),
        "stage": letter.stage,
        "reason": letter.reason,
        "errors": list(letter.errors),
        "source_topic": letter.source_topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "bundle_index": letter.bundle_index,
        "key": letter.key,
        "key_truncated": letter.key_truncated,
        "value_preview": preview(letter),
        "value_bytes": letter.value_bytes,
        "value_truncated": letter.value_truncated,
        "status": status_of(letter),
        "not_replayable": why_not_replayable(letter)
        if replay is None and letter.reached is None
        else None,
        "replay": None
        if replay is None
        else {
            "replayed_at": when(replay.replayed_at),
            "actor": replay.actor,
            "topic": replay.topic,
            "partition": replay.partition,
            "offset": replay.offset,
            "replays": replay.replays,
        },
        "replay_of": None if letter.replay_of is None else str(letter.replay_of),
        "alarm_id": None if letter.alarm_id is None else str(letter.alarm_id),
        "reached": None
        if letter.reached is None
        else {
            "incident_id": str(letter.reached.incident_id),
            "classified_at": when(letter.reached.classified_at),
        },
    }


def _cut(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def dlq_replay(args: argparse.Namespace, settings: Settings, say: Say) -> int:
    """Replay each dead letter named, once; print what happened to each."""
    ids: list[uuid.UUID] = []
    bad = []
    for text in args.ids:
        try:
            ids.append(uuid.UUID(text))
        except ValueError:
            bad.append(repr(text))
    if bad:
        return fail(
            f"{', '.join(bad)}: not a dead letter id (a UUID, as `dispatch dlq list` shows)",
            EXIT_USAGE,
        )
    publisher = Publisher(settings.bootstrap_servers)

    async def work(conn: asyncpg.Connection) -> int:
        actor = cli_actor() if args.actor is None else await operator(conn, args.actor)
        refused = 0
        try:
            for event_id in dict.fromkeys(ids):
                outcome = await replay_dead_letter(
                    conn,
                    event_id,
                    publish=publisher.publish,
                    actor=actor,
                    force=args.force,
                    context={"os_user": cli_actor()},
                )
                refused += _report(outcome, say)
        finally:
            await publisher.stop()
        return EXIT_REFUSED if refused else 0

    return _run(settings, say, work)


def _report(outcome: Outcome, say: Say) -> int:
    if outcome.result in (Result.PUBLISHED, Result.ALREADY, Result.HANDLED):
        say(f"{outcome.event_id}: {outcome.message}")
        return 0
    what = "refused" if outcome.result is Result.REFUSED else "unknown"
    print(f"dispatch: error: {outcome.event_id}: {what}: {outcome.message}", file=sys.stderr)
    return 1


class Publisher:
    """An acks=all idempotent producer, started on the first record that needs it."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._producer: AIOKafkaProducer | None = None
        # The client logs each failed connection attempt; at a terminal the one error line
        # this command prints says it (Python's last-resort handler would print them all).
        logging.getLogger("aiokafka").addHandler(logging.NullHandler())

    async def publish(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
    ) -> Published:
        """Publish one record; wait until every in-sync replica has it."""
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                acks="all",
                enable_idempotence=True,
                # The same partition as the record had: Kafka's default partitioner of its key.
                partitioner=keyed_partitioner,
                request_timeout_ms=15_000,
                **kafka_options(),
            )
            try:
                await asyncio.wait_for(producer.start(), KAFKA_START_S)
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        meta = await self._producer.send_and_wait(topic, value, key=key, headers=headers)
        return Published(meta.topic, meta.partition, meta.offset)

    async def stop(self) -> None:
        """Stop the producer if it was started."""
        if self._producer is not None:
            await self._producer.stop()


def _run(settings: Settings, say: Say, work: Work) -> int:
    try:
        return asyncio.run(_with_store(settings, say, work))
    except ReplayRefused as exc:
        return fail(str(exc), EXIT_USAGE)
    except MigrationError as exc:
        return fail(str(exc), EXIT_REFUSED)
    except (KafkaError, TimeoutError) as exc:
        return fail(
            f"Kafka at {settings.bootstrap_servers} did not take the record; that dead letter "
            f"is not recorded as replayed (any listed above are): {_named(exc)}",
            EXIT_REFUSED,
        )
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        return fail(f"database: {_named(exc)}", EXIT_REFUSED)


def _named(exc: BaseException) -> str:
    name, text = type(exc).__name__, str(exc)
    return text if text.startswith(name) else f"{name}: {text}" if text else name
