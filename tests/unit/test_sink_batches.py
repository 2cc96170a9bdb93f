"""The sink's batches: what was read while the writer wrote joins into one write."""

from __future__ import annotations

from typing import Any, cast

from aiokafka import TopicPartition

from consumers.sink.service import Batch
from consumers.sink.writer import SinkRecord

A0 = TopicPartition("incidents.state", 0)
A1 = TopicPartition("incidents.state", 1)


def batch(offsets: dict[TopicPartition, int], records: int, oldest: int, newest: int) -> Batch:
    # The records' events do not matter here: stand-ins that tell them apart.
    stand_ins = [SinkRecord("incidents.state", cast(Any, object()), 0, n) for n in range(records)]
    return Batch(stand_ins, offsets, records, oldest, newest)


def test_a_later_batch_joins_in_order_with_its_later_offsets_and_both_times() -> None:
    first = batch({A0: 10, A1: 4}, 3, oldest=1_000, newest=2_000)
    later = batch({A0: 15}, 2, oldest=1_500, newest=3_000)
    joined = first.joined(later)
    assert joined.records == first.records + later.records
    # The offsets to commit once both are written: the later one where both read a partition.
    assert joined.offsets == {A0: 15, A1: 4}
    assert joined.kafka_records == 5
    assert (joined.oldest_ms, joined.newest_ms) == (1_000, 3_000)
