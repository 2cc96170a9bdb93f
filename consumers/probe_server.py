"""A small HTTP server for a service's probes (`/healthz`, `/readyz`) and its `/metrics`,
beside its real work.

The stream workers and the reconciler speak no HTTP otherwise; their supervisor (`dispatch
run`, a container engine) asks these. Probes reveal nothing about the data and need no token.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from consumers.metrics import metrics_route

# A probe answers (HTTP status, JSON body).
Probe = Callable[[], Awaitable[tuple[int, dict[str, Any]]]]


class ProbeServer(uvicorn.Server):
    """A uvicorn server that leaves the signals to the service it runs beside."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def serve_probes(
    probes: Mapping[str, Probe], *, host: str, port: int
) -> tuple[ProbeServer, asyncio.Task[None]]:
    """Start answering each path with its probe; return the server and its task (set
    `should_exit` on the server to stop it)."""

    def route(path: str, probe: Probe) -> Route:
        async def answer(_: Request) -> JSONResponse:
            status, body = await probe()
            return JSONResponse(body, status_code=status)

        return Route(path, answer)

    # `/metrics` beside the probes: the process's whole registry (consumers/metrics.py).
    routes = [route(path, probe) for path, probe in probes.items()] + [metrics_route()]
    app = Starlette(routes=routes)
    # log_config=None: the service's own logging set-up stays as it is.
    # No lifespan: the probes need no start-up, and a stopped lifespan task logs a traceback.
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
    )
    server = ProbeServer(config)
    return server, asyncio.create_task(server.serve(), name="probes")
