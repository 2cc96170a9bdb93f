"""Bundles: the records a batch writes to one partition of an internal topic, as one record.

Why: Faust's consumer spends about 0.1 ms of CPU on every record it hands to an agent (its
per-message path, docs/benchmarks.md), several times what the stages' own work on an alarm
costs per hop. The two hops between our own stages (`alarms.located`, `alarms.classified`)
therefore carry bundles: a batch's records for one partition, framed one after another in one
Kafka record, so Faust's cost is paid per bundle instead of per alarm. Each record inside is
exactly what the catalog says the topic carries, keyed as before: the bundle goes to the
partition Kafka's default partitioner gives those keys, so co-partitioning and the merge
table's ownership are unchanged, and order within a partition is kept.

Readers take a bundle or a plain record (a dead letter replayed by hand, a record written by
another tool): a plain record is one record. A bundle whose framing is broken is dead-lettered
whole, with the reason.

Frame: `MAGIC`, then per record: key length (4 bytes, big-endian), key, value length, value.
`MAGIC` starts with a zero byte, which no JSON record does.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from streams.partitioner import partition_for

MAGIC = b"\x00dispatch-bundle/1\n"
# A bundle is cut before it grows past this, well under Kafka's 1 MB default record limit.
MAX_BUNDLE_BYTES = 512 * 1024

_LENGTH = struct.Struct(">I")


class BadBundle(ValueError):
    """Raised when a record starts like a bundle but its framing is broken."""


@dataclass(frozen=True, slots=True)
class Bundled:
    """One record out of a bundle: what a handler and a dead letter read of a record."""

    topic: str
    partition: int
    offset: int  # the bundle's offset
    index: int  # the record's place in the bundle
    key: bytes
    value: bytes


def by_partition(
    records: Iterable[tuple[bytes, bytes]], partitions: int
) -> dict[int, list[tuple[bytes, bytes]]]:
    """Group (key, value) pairs by the partition Kafka's default partitioner gives each key."""
    grouped: dict[int, list[tuple[bytes, bytes]]] = {}
    for key, value in records:
        grouped.setdefault(partition_for(key, partitions), []).append((key, value))
    return grouped


def bundle(records: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
    """Frame the records into as few bundles as `MAX_BUNDLE_BYTES` allows (one at least)."""
    bundles: list[bytes] = []
    parts = [MAGIC]
    size = len(MAGIC)
    for key, value in records:
        frame = b"".join((_LENGTH.pack(len(key)), key, _LENGTH.pack(len(value)), value))
        if size + len(frame) > MAX_BUNDLE_BYTES and size > len(MAGIC):
            bundles.append(b"".join(parts))
            parts, size = [MAGIC], len(MAGIC)
        parts.append(frame)
        size += len(frame)
    bundles.append(b"".join(parts))
    return bundles


def unbundle(message: Any) -> list[Any]:
    """Return the records in message (itself, when it is no bundle); raise BadBundle."""
    data = message.value
    if not isinstance(data, bytes) or not data.startswith(MAGIC):
        return [message]
    records: list[Any] = []
    at, end = len(MAGIC), len(data)
    while at < end:
        key, at = _field(data, at, "key")
        value, at = _field(data, at, "value")
        index = len(records)
        records.append(Bundled(message.topic, message.partition, message.offset, index, key, value))
    return records


def _field(data: bytes, at: int, name: str) -> tuple[bytes, int]:
    if at + _LENGTH.size > len(data):
        raise BadBundle(f"bundle cut short: no {name} length at byte {at}")
    (length,) = _LENGTH.unpack_from(data, at)
    start = at + _LENGTH.size
    if start + length > len(data):
        raise BadBundle(f"bundle cut short: {name} of {length} bytes at byte {start}")
    return data[start : start + length], start + length
