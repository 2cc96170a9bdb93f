"""Rebuild tables from their changelog topics for the partitions a worker was just assigned."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from consumers.kafka_client import kafka_options
from streams.tables import ChangelogTable

log = logging.getLogger(__name__)

# One fetch waits at most this long for records before the loop looks at its positions again.
_FETCH_WAIT_MS = 500


async def restore_tables(
    bootstrap: str, tables: Sequence[ChangelogTable], partitions: Collection[int]
) -> int:
    """Read each table's changelog partitions from the start to their current end; return
    the number of records applied.

    The end is taken once, before reading: the worker that is being assigned the partition is
    the only writer of its rows from now on, and it writes nothing until this returns.
    """
    wanted = [TopicPartition(t.changelog_topic, p) for t in tables for p in sorted(partitions)]
    if not wanted:
        return 0
    by_topic = {t.changelog_topic: t for t in tables}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **kafka_options(),
    )
    await consumer.start()
    applied = 0
    try:
        consumer.assign(wanted)
        await consumer.seek_to_beginning(*wanted)
        ends = await consumer.end_offsets(wanted)
        remaining = {tp for tp in wanted if await consumer.position(tp) < ends[tp]}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=_FETCH_WAIT_MS)
            for tp, records in batch.items():
                table = by_topic[tp.topic]
                for record in records:
                    if record.offset >= ends[tp]:
                        break
                    if record.key is not None:
                        table.restore(record.key, record.value, tp.partition)
                        applied += 1
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    log.info(
        "restored %d changelog records of %s for partitions %s",
        applied,
        ", ".join(t.name for t in tables),
        sorted(partitions),
    )
    return applied
