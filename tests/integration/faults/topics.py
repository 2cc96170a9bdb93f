"""Read what topics hold now, from their first record to their end, outside any group."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition


async def records_to_end(
    bootstrap: str, topics: Iterable[str], partitions: int
) -> AsyncIterator[ConsumerRecord]:
    """Yield every record of every partition of the topics, up to each one's end as it was
    when the reading began."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for topic in topics for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    yield record
    finally:
        await consumer.stop()
