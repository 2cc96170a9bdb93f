"""Turn the Kafka records the sink reads into SinkRecords: bundles opened, events validated.

A record that does not decode is not dropped: it becomes a dead letter of stage `sink`
(consumers.sink.rows.sink_skip) that the writer stores like any other, so the record's
partition goes on and the operator can see what was skipped and why.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from consumers.sink.rows import sink_skip
from consumers.sink.writer import SinkRecord
from dispatch.events import (
    ALARMS_CLASSIFIED,
    ALARMS_DLQ,
    ALARMS_RAW,
    COMMANDER_COMMANDS,
    COMMANDER_OUTCOMES,
    DISPATCH_ASSIGNMENTS,
    INCIDENTS_STATE,
    RESPONSES_EVENTS,
    TOPICS,
    UNITS_STATUS,
    InvalidEvent,
    TopicSpec,
    decode,
)
from streams.bundles import BadBundle, unbundle

log = logging.getLogger(__name__)

# The catalog topics the sink records.
SINK_TOPICS = (
    ALARMS_RAW.name,
    ALARMS_CLASSIFIED.name,
    DISPATCH_ASSIGNMENTS.name,
    RESPONSES_EVENTS.name,
    INCIDENTS_STATE.name,
    UNITS_STATUS.name,
    COMMANDER_COMMANDS.name,
    ALARMS_DLQ.name,
    COMMANDER_OUTCOMES.name,
)


def catalog_topics(prefix: str = "") -> dict[str, TopicSpec[Any]]:
    """Return the topics the sink reads, by their name on the broker, with their specs."""
    return {prefix + name: TOPICS[name] for name in SINK_TOPICS}


def sink_records(record: Any, spec: TopicSpec[Any], *, now: datetime) -> list[SinkRecord]:
    """Return the events a Kafka record holds, each as a SinkRecord, or the dead letter that
    says why it holds none (a bundle holds many; a tombstone none)."""
    if record.value is None:
        return []  # a compacted topic's tombstone: a deletion, not an event
    topic, partition, offset = record.topic, record.partition, record.offset
    try:
        items: Sequence[Any] = unbundle(record) if spec.bundled else [record]
    except BadBundle as exc:
        log.error("sink skipped %s[%d]@%d: %s", topic, partition, offset, exc)
        letter = sink_skip(
            topic=topic, partition=partition, offset=offset, index=None, key=record.key,
            value=record.value, reason=f"sink: broken bundle: {exc}", at=now,
        )  # fmt: skip
        return [SinkRecord(topic, letter, partition, offset)]
    out: list[SinkRecord] = []
    for item in items:
        index = getattr(item, "index", None)
        try:
            event = decode(spec.model, item.value or b"")
        except InvalidEvent as exc:
            at = f"{topic}[{partition}]@{offset}" + ("" if index is None else f"#{index}")
            log.error("sink skipped %s: %s", at, exc)
            letter = sink_skip(
                topic=topic, partition=partition, offset=offset, index=index, key=item.key,
                value=item.value, reason=f"sink: {exc}", at=now, errors=exc.errors,
            )  # fmt: skip
            out.append(SinkRecord(topic, letter, partition, offset))
            continue
        out.append(SinkRecord(topic, event, partition, offset, raw=item.value))
    return out
