"""Kafka's default partitioner, remembering the partition of recent keys.

Every record the stages write is keyed, and the same key is hashed several times in a row (an
incident's state changes and its table row, an alarm and its merge). aiokafka's murmur2 is
pure Python; remembering its result gives the very same partitions for a dictionary lookup.
Same partitions as Kafka's Java clients, so co-partitioning with them holds.
"""

from __future__ import annotations

from functools import lru_cache

from aiokafka.partitioner import DefaultPartitioner, murmur2

_DEFAULT = DefaultPartitioner()


@lru_cache(maxsize=1 << 16)
def partition_for(key: bytes, count: int) -> int:
    """The partition of key among count partitions, as Kafka's default partitioner picks it."""
    return int(murmur2(key) & 0x7FFFFFFF) % count


def keyed_partitioner(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """Return the partition Kafka's default partitioner gives key (random for no key)."""
    if key is None:
        partition: int = _DEFAULT(key, all_partitions, available)
        return partition
    return all_partitions[partition_for(key, len(all_partitions))]
