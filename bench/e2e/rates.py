"""One offered rate: offer, wait until the system has settled, collect and reduce the figures.

Per receipted alarm, `job ms` is the phone's arrival time of the first job frame of the
incident the alarm opened minus the receipt's `received_at` (the intake's clock; one machine,
one clock), and `accept ms` the arrival of the gateway's `ok` for the first acceptance of one
of that incident's jobs minus the same. `jobs/s` is the sustained rate: the alarms whose job
arrived, over the time from the first receipt to the last such arrival, so a backlog that
drains after the offer ended lowers it. CPU is each process's (group's) CPU time over that same
span, per receipted alarm; `others` is how many cores processes outside the bench kept busy.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bench.e2e.hops import HOPS, Records, TopicReader, hop_times, read_outbox
from bench.pipeline.cpu import CpuSampler
from bench.push_fanout import OtherLoad
from dispatch.triage import provisional_incident_id
from simulator.desk_client import Receipt

POLL_S = 0.5  # how often the phones are asked how many jobs they showed


class Offering(Protocol):
    """What a rate needs of the load: offer, then tell what was received."""

    async def paced(self, rate: float, duration_s: float, max_in_flight: int) -> int:
        """Offer the rate; return how many alarms were skipped."""

    def receipts_since(self, since: datetime) -> list[Receipt]:
        """Return the receipts of alarms received since then."""

    def waited(self, alarm_ids: Iterable[str]) -> list[float]:
        """Return the desks' waits for these alarms' receipts, in milliseconds."""

    def refusals(self) -> int:
        """Return the alarms refused so far."""

    def retries(self) -> int:
        """Return the requests retried so far."""


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """Return p50, p95, p99 and max (nearest rank), None for an empty list."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "max": round(ordered[-1], 1)}


@dataclass
class Settle:
    """When to stop waiting for a rate's jobs: all receipted ones shown, or none for quiet_s
    seconds, or drain_s after the offer ended."""

    quiet_s: float = 3.0
    drain_s: float = 120.0


@dataclass
class RateResult:
    """Everything measured at one offered rate."""

    rate: float
    duration_s: float
    offered: int
    skipped: int
    receipted: int
    refused: int
    retried: int
    receipted_per_s: float
    jobs: int
    escalated: int
    merged: int
    undecided: int
    jobs_per_s: float
    job_ms: dict[str, float | None]
    desk_wait_ms: dict[str, float | None]
    accept_ms: dict[str, float | None]
    accepted: int
    hops_ms: dict[str, dict[str, float | None]]
    hops_alarms: int
    cpu_ms_per_alarm: dict[str, float]
    cpu_ms_per_alarm_net: dict[str, float]
    cores: float
    others: float
    phone_problems: dict[str, Any] = field(default_factory=dict)
    settled_after_s: float = 0.0
    span_s: dict[str, float] = field(default_factory=dict)

    @property
    def saturated(self) -> bool:
        """Tell whether the system failed to keep up: fewer than 90 % of the offered alarms'
        jobs per second, or fewer than 90 % of the receipted alarms got a job."""
        return (
            self.skipped > 0
            or self.jobs_per_s < 0.9 * self.rate
            or self.receipted_per_s < 0.9 * self.rate
            or self.jobs < 0.9 * self.receipted
        )


async def idle_cores(sampler: CpuSampler, seconds: float) -> dict[str, float]:
    """Return the cores each process keeps busy while no alarm is offered: the phones'
    position reports, the gateway's presence records, probes, heartbeats, the sink's reads."""
    started = time.time()
    await asyncio.sleep(seconds)
    spent = sampler.spent(started, time.time())
    return {name: round(s / seconds, 4) for name, s in spent.items()}


async def settle(
    count: Callable[[], Awaitable[int]], expected: Callable[[], int], offer_end: float, s: Settle
) -> float:
    """Wait until the phones have shown and accepted a job of every expected incident, or
    stopped accepting new ones; return when."""
    last, changed = -1, time.time()
    while True:
        shown = await count()
        now = time.time()
        if shown != last:
            last, changed = shown, now
        if shown >= expected() or now - changed >= s.quiet_s or now - offer_end >= s.drain_s:
            return now
        await asyncio.sleep(POLL_S)


async def run_rate(
    *,
    rate: float,
    duration_s: float,
    offer: Offering,
    phones: Any,
    reader: TopicReader,
    postgres_url: str,
    sampler: CpuSampler,
    others: OtherLoad,
    settle_by: Settle,
    idle_cores: Mapping[str, float],
    max_in_flight: int,
) -> RateResult:
    """Offer rate alarms a second for duration_s, wait for the outcome, reduce the figures."""
    start_offsets = await reader.end_offsets()
    refused, retried = offer.refusals(), offer.retries()
    t0 = time.time()
    since = datetime.fromtimestamp(t0, UTC) - timedelta(milliseconds=5)
    load_before = others.snapshot()
    skipped = await offer.paced(rate, duration_s, max_in_flight)
    offer_end = time.time()
    receipts = offer.receipts_since(since)

    async def count() -> int:
        phones.say(f"count {t0}")
        return int(await phones.line())

    settled = await settle(count, lambda: len(receipts), offer_end, settle_by)
    load_after = others.snapshot()
    phones.say(f"dump {t0}")
    dump = json.loads(await phones.line())
    found = await reader.read(start_offsets, await reader.end_offsets())
    await read_outbox(postgres_url, since, found)
    waited = offer.waited(str(r.alarm_id) for r in receipts)
    result = reduce(
        rate=rate,
        desk_wait_ms=waited,
        duration_s=duration_s,
        receipts={str(r.alarm_id): r.received_at.timestamp() for r in receipts},
        dump=dump,
        found=found,
        sampler=sampler,
        idle_cores=idle_cores,
        others=OtherLoad.cores(load_before, load_after),
        refused=offer.refusals() - refused,
        retried=offer.retries() - retried,
        settled_after_s=settled - offer_end,
    )
    result.skipped = skipped
    return result


def reduce(
    *,
    rate: float,
    desk_wait_ms: Sequence[float],
    duration_s: float,
    receipts: Mapping[str, float],
    dump: Mapping[str, Any],
    found: Records,
    sampler: CpuSampler,
    idle_cores: Mapping[str, float],
    others: float,
    refused: int,
    retried: int,
    settled_after_s: float,
) -> RateResult:
    """Turn what the phones, the topics and the outbox said into one rate's figures."""
    frames: dict[str, tuple[str, float]] = {}  # incident -> (assignment, shown at), first job
    incident_of_job: dict[str, str] = {}
    for incident_id, assignment_id, _unit, kind, shown_at in dump["jobs"]:
        incident_of_job[assignment_id] = incident_id
        if kind == "assignment" and (
            incident_id not in frames or shown_at < frames[incident_id][1]
        ):
            frames[incident_id] = (assignment_id, shown_at)
    accepted: dict[str, float] = {}  # incident -> first ok
    for assignment_id, _sent, answered_at, code in dump["accepted"]:
        incident_id = incident_of_job.get(assignment_id)
        if code == "" and incident_id is not None:
            accepted[incident_id] = min(answered_at, accepted.get(incident_id, answered_at))
    job_ms, accept_ms, arrivals = [], [], []
    escalated = merged = undecided = 0
    for alarm_id, received_at in receipts.items():
        incident_id = str(provisional_incident_id(uuid.UUID(alarm_id)))
        if alarm_id in found.merged:
            merged += 1
        elif incident_id in frames:
            shown_at = frames[incident_id][1]
            job_ms.append((shown_at - received_at) * 1000)
            arrivals.append(shown_at)
            if incident_id in accepted:
                accept_ms.append((accepted[incident_id] - received_at) * 1000)
        elif found.decided(incident_id) == "escalated":
            escalated += 1
        else:
            undecided += 1
    first = min(receipts.values(), default=0.0)
    last_job = max(arrivals, default=first)
    received_span = max(receipts.values(), default=0.0) - first
    spent = sampler.spent(first, last_job) if arrivals else {}
    count = max(1, len(receipts))
    hops = hop_times(found, receipts, frames)
    return RateResult(
        rate=rate,
        duration_s=duration_s,
        offered=round(rate * duration_s),
        skipped=0,
        receipted=len(receipts),
        refused=refused,
        retried=retried,
        receipted_per_s=round(len(receipts) / received_span, 1) if received_span > 0 else 0.0,
        jobs=len(job_ms),
        escalated=escalated,
        merged=merged,
        undecided=undecided,
        jobs_per_s=round(len(job_ms) / (last_job - first), 1) if last_job > first else 0.0,
        job_ms=percentiles(job_ms),
        desk_wait_ms=percentiles(desk_wait_ms),
        accept_ms=percentiles(accept_ms),
        accepted=len(accept_ms),
        hops_ms={hop: percentiles(hops[hop]) for hop in HOPS},
        hops_alarms=len(hops[HOPS[0]]),
        cpu_ms_per_alarm={name: round(s * 1000 / count, 3) for name, s in spent.items()},
        cpu_ms_per_alarm_net={
            name: round((s - idle_cores.get(name, 0.0) * (last_job - first)) * 1000 / count, 3)
            for name, s in spent.items()
        },
        cores=round(sum(spent.values()) / (last_job - first), 2) if last_job > first else 0.0,
        others=round(others, 2),
        phone_problems=dict(dump.get("problems", {})),
        settled_after_s=round(settled_after_s, 1),
        span_s={
            "receipts": round(received_span, 3),
            "first_receipt_to_last_job": round(last_job - first, 3),
        },
    )
