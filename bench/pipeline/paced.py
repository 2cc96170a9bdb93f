"""Paced runs: alarms written at a steady rate, each one's time to its routing decision.

The default runs drain a backlog written before the clock starts: a rate, but no latency. With
`--rate R` the observer process writes the workload's alarms to `alarms.raw` at R a second
while the variant runs, and for every alarm takes the time from its write (the raw record's
CreateTime) to the CreateTime of its routing decision on `incidents.state` (the `classified`
change of the incident it opened, or the `merged` change naming it). Both timestamps come from
producers on this machine, so the clocks agree.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer, ConsumerRecord

from dispatch.triage import provisional_incident_id
from streams.bundles import unbundle

# A rate is kept in ticks of this length: each tick writes the alarms due by its end.
TICK_S = 0.01
_INCIDENT = re.compile(rb'"incident_id":"([0-9a-f-]{36})"')
_ALARM = re.compile(rb'"alarm_id":"([0-9a-f-]{36})"')
_MERGED = re.compile(rb'"reason":"alarm ([0-9a-f-]{36}) merged')


def write_records(path: str, records: Sequence[tuple[bytes, bytes]]) -> None:
    """Save the workload's records for the observer process (hex key, tab, hex value)."""
    with open(path, "w") as out:
        for key, value in records:
            out.write(f"{key.hex()}\t{value.hex()}\n")


def read_records(path: str) -> list[tuple[bytes, bytes]]:
    """Load records saved by `write_records`."""
    records = []
    with open(path) as lines:
        for line in lines:
            key, value = line.rstrip("\n").split("\t")
            records.append((bytes.fromhex(key), bytes.fromhex(value)))
    return records


@dataclass
class Latencies:
    """Each alarm's write time, and the seconds from it to its routing decision."""

    written: dict[str, float] = field(default_factory=dict)  # alarm id -> write time
    by_incident: dict[str, str] = field(default_factory=dict)  # opened incident -> alarm id
    seconds: list[float] = field(default_factory=list)
    # Seconds from the write to the classify stage's output (`alarms.located`): the first hop.
    to_located: list[float] = field(default_factory=list)

    def expect(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Learn every alarm's id and the incident it would open."""
        for _, value in records:
            alarm_id = json.loads(value)["alarm_id"]
            self.by_incident[str(provisional_incident_id(uuid.UUID(alarm_id)))] = alarm_id

    def wrote(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Note a raw alarm's write time (its CreateTime)."""
        alarm_id = json.loads(record.value or b"{}").get("alarm_id")
        if alarm_id is not None:
            self.written[alarm_id] = record.timestamp / 1000

    def located(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Note when the classify stage wrote the alarms in this record (a bundle or one)."""
        for inner in unbundle(record):
            found = _ALARM.search(inner.value or b"")
            written = self.written.get(found.group(1).decode()) if found else None
            if written is not None:
                self.to_located.append(record.timestamp / 1000 - written)

    def decided(self, record: ConsumerRecord[bytes, bytes], *, merged: bool) -> None:
        """Note the routing decision of one alarm, found by id in the state change."""
        value = record.value or b""
        if merged:
            found = _MERGED.search(value)
            alarm_id = found.group(1).decode() if found else None
        else:
            found = _INCIDENT.search(value)
            alarm_id = self.by_incident.get(found.group(1).decode()) if found else None
        written = self.written.get(alarm_id) if alarm_id else None
        if written is not None:
            self.seconds.append(record.timestamp / 1000 - written)

    def summary(self) -> dict[str, float]:
        """Percentiles in milliseconds (empty when nothing was measured)."""
        if not self.seconds:
            return {}
        ordered = sorted(self.seconds)
        first = sorted(self.to_located) or [0.0]

        def at(values: list[float], share: float) -> float:
            return 1000 * values[min(len(values) - 1, int(share * len(values)))]

        return {
            "n": float(len(ordered)),
            "p50": at(ordered, 0.50),
            "p95": at(ordered, 0.95),
            "p99": at(ordered, 0.99),
            "max": 1000 * ordered[-1],
            "located p50": at(first, 0.50),
            "located p99": at(first, 0.99),
        }


async def write_paced(
    bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes]], rate: float
) -> float:
    """Write the records at `rate` a second (acks=all, as intake does); return the seconds
    it took, so the caller can tell whether the writer itself kept the rate."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        start = time.monotonic()
        pending = []
        sent = 0
        while sent < len(records):
            due = min(len(records), int((time.monotonic() - start + TICK_S) * rate))
            for key, value in records[sent:due]:
                pending.append(await producer.send(topic, value, key=key))
            sent = max(sent, due)
            await asyncio.sleep(max(0.0, start + sent / rate - time.monotonic()))
        await asyncio.gather(*pending)
        return time.monotonic() - start
    finally:
        await producer.stop()
