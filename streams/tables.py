"""The stages' tables: JSON bytes by key, in memory, backed by a compacted changelog topic.

A table holds the rows of the partitions its worker owns. Every change is queued as a
changelog record (raw key, raw value, `None` for a deletion) that the batch driver
(`streams.batching`) writes with the batch's other records and waits for before the batch's
offsets are committed, so a committed offset always means its table changes are stored. When a
worker is assigned a partition it restores that partition's rows from the changelog
(`streams.restore`); when the partition is revoked its rows are dropped, since another worker
now owns and changes them.

Each table is keyed exactly like the topic it is written from, and every topic and changelog
uses Kafka's default partitioner with the same partition count, so a row's changelog partition
is the partition of the records that change it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping

from streams.partitioner import partition_for


def changelog_topic_name(group_id: str, table: str) -> str:
    """Return the changelog topic of a table of a stage's group (the name Faust gave it)."""
    return f"{group_id}-{table}-changelog"


def stage_table(
    prefix: str, group_id: str, name: str, *, partitions: int, retention_ms: int | None = None
) -> ChangelogTable:
    """Return a table of a stage's group, backed by its changelog topic under prefix."""
    topic = prefix + changelog_topic_name(group_id, name)
    return ChangelogTable(name, topic, partitions=partitions, retention_ms=retention_ms)


class ChangelogTable(MutableMapping[bytes, bytes]):
    """A table's rows, with every change also queued for its changelog topic.

    A row lives on the changelog partition its key hashes to, unless it is written with `put`
    and an explicit partition: a row keyed otherwise than its source records (the route
    stage's alarm ids, kept on their incident's partition) stays with the records that
    change it.
    """

    def __init__(
        self, name: str, changelog_topic: str, *, partitions: int, retention_ms: int | None = None
    ) -> None:
        self.name = name
        self.changelog_topic = changelog_topic
        self.partitions = partitions
        # Compacted, and also deleted by age when set: a row older than this is not restored.
        self.retention_ms = retention_ms
        self._rows: dict[bytes, bytes] = {}
        # Rows written to a partition of their own choosing (see `put`).
        self._placed: dict[bytes, int] = {}
        self._changes: list[tuple[bytes, bytes | None, int | None]] = []

    def take_changes(self) -> list[tuple[bytes, bytes | None, int | None]]:
        """Return the changes (key, value or None, partition or None) queued since the last
        call, oldest first, and forget them."""
        changes, self._changes = self._changes, []
        return changes

    def put(self, key: bytes, value: bytes, *, partition: int) -> None:
        """Set a row that lives on partition whatever its key hashes to."""
        self._rows[key] = value
        self._placed[key] = partition
        self._changes.append((key, value, partition))

    def partition_of(self, key: bytes) -> int:
        """Return the changelog partition a row lives on."""
        placed = self._placed.get(key)
        return partition_for(key, self.partitions) if placed is None else placed

    def restore(self, key: bytes, value: bytes | None, partition: int) -> None:
        """Apply one changelog record read back at assignment (not queued again)."""
        if value is None:
            self._rows.pop(key, None)
            self._placed.pop(key, None)
            return
        self._rows[key] = value
        if partition != partition_for(key, self.partitions):
            self._placed[key] = partition

    def drop_partitions(self, partitions: Iterable[int]) -> int:
        """Forget the rows of partitions this worker no longer owns; return how many."""
        gone = set(partitions)
        if not gone:
            return 0
        dropped = [k for k in self._rows if self.partition_of(k) in gone]
        for key in dropped:
            del self._rows[key]
            self._placed.pop(key, None)
        return len(dropped)

    def __getitem__(self, key: bytes) -> bytes:
        return self._rows[key]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._rows[key] = value
        self._changes.append((key, value, self._placed.get(key)))

    def __delitem__(self, key: bytes) -> None:
        del self._rows[key]
        self._changes.append((key, None, self._placed.pop(key, None)))

    def __iter__(self) -> Iterator[bytes]:
        return iter(list(self._rows))

    def __len__(self) -> int:
        return len(self._rows)
