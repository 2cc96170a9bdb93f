"""Run the stages' handlers over a batch of records and frame what they caused as writes.

Why batches (docs/benchmarks.md): a produce request per record, and per-record machinery around
it, cost more than the stages' own work. A stage worker (`streams.worker`) takes up to
`BATCH_MAX` records, runs the handler on each, writes every queued record, then every table
change (to the table's changelog topic, `streams.tables`) once the records are acknowledged
(acks=all; send_writes says why in that order), and commits the batch's offsets only then. So
a committed offset always means the records and state changes it caused are stored, and a
stored state change that its records are: at-least-once, and the handlers' deterministic ids
make a replay harmless.

A handler that raises on one record (a bug, not bad input: bad input is dead-lettered by the
handler itself) costs only that record: its queued writes are dropped, the record goes to the
dead-letter topic with the error as the reason, and the rest of the batch goes on. A worker that
stopped on one record would stop every alarm behind it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from streams.bundles import BadBundle, bundle, by_partition, unbundle
from streams.stages import Outbox, Queued, dead_letter

log = logging.getLogger(__name__)

# Up to this many events per batch; a burst fills it at once.
BATCH_MAX = 500
# The longest an event waits for more to join its batch: the latency each hop adds when the
# pipeline is quiet (three hops: at most 30 ms from raw alarm to dispatch).
BATCH_WITHIN_S = 0.01

Handler = Callable[[Any, Outbox, datetime], None]


def open_bundles(messages: Iterable[Any], out: Queued, *, stage: str) -> list[Any]:
    """Return the records of the messages (a bundle holds many, `streams.bundles`); a bundle
    whose framing is broken is dead-lettered whole."""
    records: list[Any] = []
    for message in messages:
        try:
            records.extend(unbundle(message))
        except BadBundle as exc:
            dead_letter(out, message, stage=stage, reason=str(exc))
    return records


def handle_each(handle: Handler, records: list[Any], out: Queued, *, stage: str) -> None:
    """Run the handler on every record; a failing record is dead-lettered, not fatal."""
    for record in records:
        mark = len(out.records)
        try:
            handle(record, out, datetime.now(UTC))
        except Exception as exc:
            log.exception(
                "%s failed on %s[%s]@%s", stage, record.topic, record.partition, record.offset
            )
            del out.records[mark:]
            reason = f"internal error in {stage}: {type(exc).__name__}: {exc}"
            dead_letter(out, record, stage=stage, reason=reason[:2000])


# Queue one record (topic, key, value: None deletes, partition: None lets the partitioner
# choose) on a producer; return its delivery future.
Send = Callable[[str, bytes | None, bytes | None, int | None], Awaitable[Awaitable[Any]]]


class Changelogged(Protocol):
    """A table whose changes are written to its changelog topic with the batch."""

    @property
    def changelog_topic(self) -> str: ...

    def take_changes(self) -> list[tuple[bytes, bytes | None, int | None]]: ...


@dataclass(frozen=True, slots=True)
class Write:
    """One record to produce: value None deletes a changelog row; partition None lets the
    partitioner choose from the key."""

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None = None
    # A table's change (its changelog record): sent once the batch's records are stored.
    state: bool = False


def frame_writes(
    prefix: str, out: Queued, tables: Iterable[Changelogged] = (), *, partitions: int
) -> list[Write]:
    """Return the writes of a batch: its queued records and its tables' changes.

    Records for a bundled topic go as one bundle per partition (`streams.bundles`); the
    topic has `partitions` partitions, as every catalog topic. Call this with no await
    between the handlers' run and this call: the tables' changes taken here are then exactly
    the batch's.
    """
    writes: list[Write] = []
    bundled: dict[str, list[tuple[bytes, bytes]]] = {}
    for topic, key, value in out.records:
        if topic.bundled:
            bundled.setdefault(prefix + topic.name, []).append((key, value))
        else:
            writes.append(Write(prefix + topic.name, key, value))
    for name, records in bundled.items():
        for partition, part in by_partition(records, partitions).items():
            writes.extend(Write(name, None, frame, partition) for frame in bundle(part))
    for table in tables:
        # A compacted changelog keeps only a key's last value: a key changed twice in the
        # batch (an incident opened, then dispatched) is written once, with its last value.
        latest = {row: (change, placed) for row, change, placed in table.take_changes()}
        for row, (change, placed) in latest.items():
            writes.append(Write(table.changelog_topic, row, change, placed, state=True))
    return writes


async def send_writes(send: Send, writes: Iterable[Write]) -> None:
    """Send every write; return once all are acknowledged (raise if one is not).

    The batch's records go first, and its tables' changes only once every record is
    acknowledged: a stored table row means the records of its batch are stored. A worker
    killed between the two leaves its tables as they were before the batch; the next owner
    handles the batch again and writes its records again (deterministic ids: harmless). Sent
    together, a changelog row could land without its records: the next owner then found the
    alarm marked as taken and skipped it, and the job it had caused was never written (a
    route worker killed for good mid-load; the job's party said `dispatched` until its
    acknowledgement deadline).
    """
    writes = list(writes)
    for phase in ([w for w in writes if not w.state], [w for w in writes if w.state]):
        pending = [await send(w.topic, w.key, w.value, w.partition) for w in phase]
        if pending:
            await asyncio.gather(*pending)


async def send_all(
    send: Send,
    prefix: str,
    out: Queued,
    tables: Iterable[Changelogged] = (),
    *,
    partitions: int,
) -> None:
    """Frame the batch's writes and send them; wait until all are acknowledged."""
    await send_writes(send, frame_writes(prefix, out, tables, partitions=partitions))


async def run_batch(
    handle: Handler,
    messages: Iterable[Any],
    *,
    stage: str,
    write: Callable[[Queued], Awaitable[None]],
) -> None:
    """Handle the records of a batch of messages and write what they caused.

    Bundles can make a batch of messages many times `BATCH_MAX` records; they are handled and
    written `BATCH_MAX` records at a time, so one batch never holds the event loop (and the
    unit board's reader and the timers with it) for long. Each write takes the tables' changes
    of its own records; a crash between two writes replays the batch, harmlessly.
    """
    out = Queued()
    records = open_bundles(messages, out, stage=stage)
    for start in range(0, len(records), BATCH_MAX):
        handle_each(handle, records[start : start + BATCH_MAX], out, stage=stage)
        await write(out)
        out = Queued()
    if out.records:
        await write(out)
