"""The stages' partitioner gives Kafka's default partitions."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.partitioner import DefaultPartitioner

from streams.partitioner import keyed_partitioner


@pytest.mark.parametrize("count", [1, 3, 4, 12, 64])
def test_same_partition_as_kafkas_default(count: int) -> None:
    partitions = list(range(count))
    keys = [uuid.uuid4().bytes for _ in range(500)] + [b"", b"a", "网格-3".encode()]
    for key in keys:
        expected = DefaultPartitioner()(key, partitions, partitions)
        # Twice: the second answer comes from the cache.
        assert keyed_partitioner(key, partitions, partitions) == expected
        assert keyed_partitioner(key, partitions, partitions) == expected


def test_the_partition_count_is_part_of_the_answer() -> None:
    key = b"incident-7"
    assert keyed_partitioner(key, [0, 1, 2, 3], []) == DefaultPartitioner()(key, [0, 1, 2, 3], [])
    assert keyed_partitioner(key, list(range(7)), []) == DefaultPartitioner()(
        key, list(range(7)), []
    )


def test_no_key_goes_to_an_available_partition() -> None:
    for _ in range(50):
        assert keyed_partitioner(None, [0, 1, 2, 3], [2, 3]) in (2, 3)
