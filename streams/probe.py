"""A stream worker's probes: `/healthz` (the process answers) and `/readyz` (every worker of
the process handles its partitions, and none is stuck); `/metrics` beside them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import TopicPartition

from consumers import metrics
from consumers.probe_server import ProbeServer, serve_probes
from streams.pipeline import Pipeline

# A worker with records waiting that handled none for this long is stalled.
STALL_AFTER_S = 30.0


def problems(pipeline: Pipeline, *, stall_after_s: float = STALL_AFTER_S) -> dict[str, list[str]]:
    """Return, per stage, why it is not ready (no entry for a stage that is)."""
    now = time.monotonic()
    found = {}
    for worker in pipeline.workers:
        if reasons := worker.problems(now=now, stall_after_s=stall_after_s):
            found[worker.name] = reasons
    if pipeline.board is not None and not pipeline.board.ready.is_set():
        found.setdefault("route", []).append("unit board still catching up")
    return found


def owned_partitions(owned: Iterable[TopicPartition]) -> dict[str, list[int]]:
    """Return the partitions a worker handles, by topic."""
    by_topic: dict[str, list[int]] = {}
    for tp in sorted(owned):
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return by_topic


# How an escalated incident's row reads in the route stage's incidents table (compact JSON;
# no party state is spelled so, and a quote inside a text field is escaped).
_ESCALATED = b'"state":"escalated"'


def escalated_incidents(pipeline: Pipeline) -> int:
    """Return how many incidents this process's route stage holds escalated: each waits for
    the commander (docs/operations.md: escalations waiting)."""
    return sum(
        sum(1 for value in table.values() if _ESCALATED in value)
        for worker in pipeline.workers
        for table in worker.spec.tables
        if table.name == "incidents"
    )


def serve_stream_probes(
    pipeline: Pipeline, *, host: str, port: int
) -> tuple[ProbeServer, asyncio.Task[None]]:
    """Start the worker's probes and `/metrics`; return the server and its task."""
    if "route" in pipeline.stages:
        metrics.READINGS.add(
            "dispatch_route_escalated_incidents",
            "Incidents the route stage holds in the escalated state (waiting for the commander).",
            lambda: escalated_incidents(pipeline),
        )

    async def healthz() -> tuple[int, dict[str, Any]]:
        return 200, {"status": "alive", "stages": list(pipeline.stages)}

    async def readyz() -> tuple[int, dict[str, Any]]:
        found = problems(pipeline)
        owned = {
            worker.name: owned_partitions(worker.progress.owned) for worker in pipeline.workers
        }
        if found:
            return 503, {"status": "not ready", "problems": found, "partitions": owned}
        return 200, {"status": "ready", "stages": list(pipeline.stages), "partitions": owned}

    return serve_probes({"/healthz": healthz, "/readyz": readyz}, host=host, port=port)
