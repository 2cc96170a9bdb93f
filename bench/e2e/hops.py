"""Where an alarm's time goes, hop by hop, from the records' own timestamps.

After a rate has run, the records it caused are read back without a consumer group, between the
end offsets noted before it started and those after it settled: each record's Kafka CreateTime
(stamped by the producing client when it sent the record) on `alarms.raw`, `alarms.located`,
`alarms.classified` (bundles opened), `incidents.state`, `units.reservations` and
`dispatch.assignments`; then the outbox rows' `stored_at` (the outbox writer's transaction's
start) from PostgreSQL. With the receipt's `received_at` and the phone's arrival time of the
job frame they give each alarm's hops:

| hop | from → to |
| --- | --- |
| intake | received_at → CreateTime on alarms.raw (the reservation commit, then the produce call) |
| classify | alarms.raw → alarms.located (the record's way to the classify worker, its batch) |
| merge | alarms.located → alarms.classified |
| route | alarms.classified → units.reservations (route's job, to the unit's single writer) |
| reserve | units.reservations → dispatch.assignments (the job, passed on) |
| outbox | dispatch.assignments → the outbox transaction's start |
| push | the outbox transaction's start → the job frame on the phone (commit, hand-over, send) |

CreateTime has millisecond resolution and marks the send call, so the time a record waits in
its producer's linger and on the broker is counted in the hop after it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from dispatch.events import (
    ALARMS_CLASSIFIED,
    ALARMS_LOCATED,
    ALARMS_RAW,
    DISPATCH_ASSIGNMENTS,
    INCIDENTS_STATE,
    UNITS_RESERVATIONS,
)
from streams.bundles import unbundle

TOPICS = tuple(
    spec.name
    for spec in (
        ALARMS_RAW,
        ALARMS_LOCATED,
        ALARMS_CLASSIFIED,
        INCIDENTS_STATE,
        UNITS_RESERVATIONS,
        DISPATCH_ASSIGNMENTS,
    )
)
HOPS = ("intake", "classify", "merge", "route", "reserve", "outbox", "push")
Offsets = dict[TopicPartition, int]


@dataclass
class Records:
    """What the topics said about a rate's alarms and incidents, times in epoch seconds."""

    raw: dict[str, float] = field(default_factory=dict)  # alarm id -> CreateTime
    located: dict[str, float] = field(default_factory=dict)
    classified: dict[str, float] = field(default_factory=dict)
    incident_of: dict[str, str] = field(default_factory=dict)  # alarm id -> incident id
    merged: set[str] = field(default_factory=set)  # alarm ids merged into another incident
    first_state: dict[tuple[str, str], float] = field(default_factory=dict)  # (incident, state)
    reserved: dict[str, float] = field(default_factory=dict)  # assignment id -> CreateTime
    jobs: dict[str, float] = field(default_factory=dict)  # assignment id -> CreateTime
    stored: dict[str, float] = field(default_factory=dict)  # assignment id -> stored_at

    def decided(self, incident_id: str) -> str | None:
        """Return what routing first decided for an incident: dispatched, escalated or None."""
        times = {
            state: self.first_state[(incident_id, state)]
            for state in ("dispatched", "escalated")
            if (incident_id, state) in self.first_state
        }
        return min(times, key=times.__getitem__) if times else None


class TopicReader:
    """One consumer without a group, kept for the whole run: end offsets, then reads back."""

    def __init__(self, bootstrap: str) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            max_partition_fetch_bytes=8 << 20,
        )

    async def __aenter__(self) -> TopicReader:
        await self._consumer.start()
        await self._consumer.topics()  # metadata of every topic, for partitions_for_topic
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def end_offsets(self) -> Offsets:
        """Return the end offset of every partition of the topics read."""
        consumer = self._consumer
        partitions = [
            TopicPartition(topic, p)
            for topic in TOPICS
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        ends: Offsets = await consumer.end_offsets(partitions)
        return ends

    async def read(self, start: Offsets, end: Offsets) -> Records:
        """Read every record between two sets of offsets and note what the bench needs."""
        found = Records()
        consumer = self._consumer
        wanted = {tp: end[tp] for tp in end if end[tp] > start.get(tp, 0)}
        consumer.assign(list(wanted))
        for tp in wanted:
            consumer.seek(tp, start.get(tp, 0))
        while wanted:
            batches = await consumer.getmany(*wanted, timeout_ms=1000, max_records=5000)
            for tp, messages in batches.items():
                for message in messages:
                    if message.offset < wanted.get(tp, 0):
                        _note(found, tp.topic, message)
                if messages and messages[-1].offset + 1 >= wanted.get(tp, 0):
                    wanted.pop(tp, None)
        consumer.assign([])
        return found


def _note(found: Records, topic: str, message: Any) -> None:
    at = message.timestamp / 1000  # CreateTime, ms
    if topic == ALARMS_RAW.name:
        found.raw.setdefault(json.loads(message.value)["alarm_id"], at)
        return
    if topic in (ALARMS_LOCATED.name, ALARMS_CLASSIFIED.name):
        for record in unbundle(message):
            alarm = json.loads(record.value)
            alarm_id = alarm["alarm_id"]
            if topic == ALARMS_LOCATED.name:
                found.located.setdefault(alarm_id, at)
            else:
                found.classified.setdefault(alarm_id, at)
                found.incident_of[alarm_id] = alarm["incident_id"]
                if alarm.get("merged_into"):
                    found.merged.add(alarm_id)
        return
    value = json.loads(message.value)
    if topic == INCIDENTS_STATE.name:
        found.first_state.setdefault((value["incident_id"], value["state"]), at)
    elif topic == UNITS_RESERVATIONS.name:
        if value.get("job"):
            found.reserved.setdefault(value["job"]["assignment_id"], at)
    elif topic == DISPATCH_ASSIGNMENTS.name:
        found.jobs.setdefault(value["assignment_id"], at)


async def read_outbox(postgres_url: str, since: datetime, found: Records) -> None:
    """Note when the outbox writer stored each job since then."""
    conn = await asyncpg.connect(postgres_url)
    try:
        rows = await conn.fetch(
            "SELECT assignment_id, stored_at FROM unit_outbox WHERE stored_at >= $1", since
        )
    finally:
        await conn.close()
    for row in rows:
        found.stored[str(row["assignment_id"])] = row["stored_at"].timestamp()


def hop_times(
    found: Records, received: Mapping[str, float], frames: Mapping[str, tuple[str, float]]
) -> dict[str, list[float]]:
    """Return each hop's milliseconds over the alarms whose every timestamp is known.

    received: alarm id -> received_at; frames: incident id -> (assignment id, shown at) of
    the first job frame shown for it."""
    hops: dict[str, list[float]] = {hop: [] for hop in HOPS}
    for alarm_id, received_at in received.items():
        incident_id = found.incident_of.get(alarm_id)
        frame = frames.get(incident_id) if incident_id else None
        if frame is None or alarm_id in found.merged:
            continue
        assignment_id, shown_at = frame
        marks = (
            received_at,
            found.raw.get(alarm_id),
            found.located.get(alarm_id),
            found.classified.get(alarm_id),
            found.reserved.get(assignment_id),
            found.jobs.get(assignment_id),
            found.stored.get(assignment_id),
            shown_at,
        )
        if any(mark is None for mark in marks):
            continue
        known = [mark for mark in marks if mark is not None]
        for hop, (before, after) in zip(HOPS, itertools.pairwise(known), strict=True):
            hops[hop].append((after - before) * 1000)
    return hops
