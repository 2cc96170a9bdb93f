"""A small HTTP server for a service's probes (`/healthz`, `/readyz`) and its `/metrics`,
beside its real work.

The stream workers and the reconciler speak no HTTP otherwise; their supervisor (`dispatch
run`, a container engine) asks these. Probes reveal nothing about the data and need no token.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
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


class ProbePortError(OSError):
    """The probes' port cannot be had (in use, or not this host's): the service cannot be
    watched, so it does not start."""


def _listening(host: str, port: int) -> socket.socket:
    """Bind the probes' socket now, so that a port in use fails the start at once and by name
    (uvicorn would find out later, inside its task, and exit the process from there)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ProbePortError(
            exc.errno, f"cannot answer probes on {host}:{port}: {exc.strerror}"
        ) from exc
    # Listening from here on: a probe that comes before uvicorn serves waits in the backlog.
    sock.listen(128)
    return sock


class ProbeServer(uvicorn.Server):
    """A uvicorn server that leaves the signals to the service it runs beside."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def serve_probes(
    probes: Mapping[str, Probe], *, host: str, port: int
) -> tuple[ProbeServer, asyncio.Task[None]]:
    """Start answering each path with its probe; return the server and its task (set
    `should_exit` on the server to stop it). Raises ProbePortError when the port cannot be
    bound."""

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
    sock = _listening(host, port)
    server = ProbeServer(config)
    return server, asyncio.create_task(server.serve(sockets=[sock]), name="probes")
