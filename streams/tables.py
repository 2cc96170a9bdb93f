"""The stages' Faust tables: JSON bytes by key, rebuilt from their changelog topics on start.

Faust keeps each table in a store and restores it from the table's compacted changelog topic
when a worker starts or takes over a partition. What we do differently is the write path: a
Faust table sends every change to its changelog as a message of its own (`send_soon` into the
producer buffer, one record at a time), which cost more than the routing itself in the
pipeline benchmark (docs/benchmarks.md). `ChangelogTable` reads and writes the same store and
queues the same changelog records (raw key, raw value, `None` for a deletion), and the batch
driver (`streams.batching`) sends them with the batch's other records and waits for their
acks before the batch's offsets are acknowledged. Restoring is still Faust's.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import faust


def bytes_table(app: faust.App, name: str) -> ChangelogTable:
    """Declare a table of raw bytes (our own pydantic JSON, not Faust records).

    `use_partitioner=True`: a change belongs to the changelog partition the default
    partitioner gives its key, not to the partition of a "current event" (a batch has none).
    Every table is keyed exactly as the topic it is written from, and those topics use the
    same partitioner, so that is the source record's partition, as Faust recovery expects
    (checked in docs/benchmarks.md).
    """
    table = app.Table(
        name,
        default=None,
        key_type=bytes,
        value_type=bytes,
        use_partitioner=True,
    )
    return ChangelogTable(table)


class ChangelogTable(MutableMapping[bytes, bytes]):
    """A Faust table's store, with every change also queued for its changelog topic."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self._changes: list[tuple[bytes, bytes | None]] = []

    @property
    def changelog_topic(self) -> str:
        """The name of the table's changelog topic."""
        name: str = self.table.changelog_topic.get_topic_name()
        return name

    def take_changes(self) -> list[tuple[bytes, bytes | None]]:
        """Return the changes queued since the last call, oldest first, and forget them."""
        changes, self._changes = self._changes, []
        return changes

    def __getitem__(self, key: bytes) -> bytes:
        value: bytes = self.table.data[key]
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.table.data[key] = value
        self._changes.append((key, value))

    def __delitem__(self, key: bytes) -> None:
        del self.table.data[key]
        self._changes.append((key, None))

    def __iter__(self) -> Iterator[bytes]:
        return iter(list(self.table.data.keys()))

    def __len__(self) -> int:
        return len(self.table.data)
