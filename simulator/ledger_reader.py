"""Read `incidents.state` and `alarms.dlq` from the beginning into a `Ledger`.

A consumer without a group: it commits nothing and disturbs no service's offsets. Either read
to the end the topics have now (`read_ledger`), or keep following them (`follow_ledger`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from consumers.kafka_client import kafka_options
from dispatch.events import (
    ALARMS_DLQ,
    INCIDENTS_STATE,
    DeadLetter,
    IncidentStateChange,
    InvalidEvent,
    decode,
)
from simulator.ledger import Ledger
from simulator.records import Changes

log = logging.getLogger(__name__)

BATCH_WAIT_MS = 500


def fold(ledger: Ledger, records: Iterable[ConsumerRecord[bytes, bytes]], prefix: str) -> None:
    """Take records of the two topics into the ledger; count those that do not decode."""
    for record in records:
        try:
            if record.topic == prefix + INCIDENTS_STATE.name:
                ledger.add_change(decode(IncidentStateChange, record.value or b""))
            else:
                ledger.add_dead_letter(decode(DeadLetter, record.value or b""))
        except InvalidEvent as exc:
            ledger.unreadable += 1
            log.warning("%s@%d:%d: %s", record.topic, record.partition, record.offset, exc)


async def _from_the_beginning(bootstrap: str, prefix: str) -> AIOKafkaConsumer:
    # Without a group the consumer is given every partition of its topics.
    consumer = AIOKafkaConsumer(
        prefix + INCIDENTS_STATE.name,
        prefix + ALARMS_DLQ.name,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **kafka_options(),
    )
    await consumer.start()
    return consumer


async def read_ledger(bootstrap: str, ledger: Ledger, *, prefix: str = "") -> Ledger:
    """Read both topics from the beginning to the end they have now; return the ledger."""
    consumer = await _from_the_beginning(bootstrap, prefix)
    try:
        ends = await consumer.end_offsets(list(consumer.assignment()))
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            batch = await consumer.getmany(timeout_ms=BATCH_WAIT_MS)
            for records in batch.values():
                fold(ledger, records, prefix)
    finally:
        await consumer.stop()
    return ledger


async def follow_ledger(
    bootstrap: str, ledger: Ledger, changes: Changes, *, prefix: str = ""
) -> None:
    """Read both topics from the beginning into the ledger and keep following, until cancelled;
    notify changes after every batch."""
    consumer = await _from_the_beginning(bootstrap, prefix)
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=BATCH_WAIT_MS)
            for records in batch.values():
                fold(ledger, records, prefix)
            if batch:
                await changes.notify()
    finally:
        await consumer.stop()
