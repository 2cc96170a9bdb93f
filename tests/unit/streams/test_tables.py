"""ChangelogTable: rows of the owned partitions, every change queued for the changelog."""

from __future__ import annotations

from streams.partitioner import partition_for
from streams.tables import ChangelogTable


def table() -> ChangelogTable:
    return ChangelogTable("rows", "app-rows-changelog", partitions=4)


def test_changes_are_queued_in_order_and_taken_once() -> None:
    rows = table()
    rows[b"a"] = b"1"
    rows[b"a"] = b"2"
    del rows[b"a"]
    assert rows.take_changes() == [(b"a", b"1", None), (b"a", b"2", None), (b"a", None, None)]
    assert rows.take_changes() == []
    assert b"a" not in rows


def test_a_placed_row_lives_on_its_own_partition_until_deleted() -> None:
    rows = table()
    key = b"incident-1:alarm-7"
    other = (partition_for(key, 4) + 1) % 4
    rows.put(key, b"taken", partition=other)
    assert rows.partition_of(key) == other
    del rows[key]
    # The deletion goes to the partition the row lived on, where its value was written.
    assert rows.take_changes() == [(key, b"taken", other), (key, None, other)]


def test_dropping_partitions_forgets_their_rows_placed_or_hashed() -> None:
    rows = table()
    keys = [f"k{n}".encode() for n in range(40)]
    for key in keys:
        rows[key] = b"v"
    placed = b"elsewhere"
    home = (partition_for(placed, 4) + 1) % 4
    rows.put(placed, b"v", partition=home)
    gone = {home, (home + 1) % 4}
    dropped = rows.drop_partitions(gone)
    assert all(rows.partition_of(k) not in gone for k in rows)
    assert dropped == 41 - len(rows)
    assert placed not in rows


def test_restored_rows_keep_the_partition_they_were_read_from_and_queue_nothing() -> None:
    rows = table()
    key = b"incident-2:alarm-9"
    other = (partition_for(key, 4) + 1) % 4
    rows.restore(key, b"taken", other)
    rows.restore(b"plain", b"v", partition_for(b"plain", 4))
    rows.restore(b"plain", None, partition_for(b"plain", 4))
    assert dict(rows) == {key: b"taken"}
    assert rows.partition_of(key) == other
    assert rows.take_changes() == []
