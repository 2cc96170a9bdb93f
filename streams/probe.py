"""A stream worker's probes over HTTP: `/healthz` (the process answers) and `/readyz` (every
worker of the process handles its partitions, and none is stuck)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

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


def probe_app(pipeline: Pipeline) -> Starlette:
    """Return the probes' ASGI app."""

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "alive", "stages": list(pipeline.stages)})

    async def readyz(_: Request) -> JSONResponse:
        found = problems(pipeline)
        if found:
            return JSONResponse({"status": "not ready", "problems": found}, status_code=503)
        return JSONResponse({"status": "ready", "stages": list(pipeline.stages)})

    return Starlette(routes=[Route("/healthz", healthz), Route("/readyz", readyz)])


class _ProbeServer(uvicorn.Server):
    """A uvicorn server that leaves the signals to the worker."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def serve_probes(
    pipeline: Pipeline, *, host: str, port: int
) -> tuple[_ProbeServer, asyncio.Task[None]]:
    """Start the probe server; return it and its task (set `should_exit` to stop it)."""
    config = uvicorn.Config(
        probe_app(pipeline),
        host=host,
        port=port,
        # The worker's own logging set-up stays as it is.
        log_config=None,
        access_log=False,
    )
    server = _ProbeServer(config)
    return server, asyncio.create_task(server.serve(), name="probes")
