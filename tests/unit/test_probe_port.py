"""A service whose probe port is taken fails its start at once, naming the port (it used to
find out inside uvicorn's task and exit seconds later, unexplained)."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from consumers.probe_server import ProbePortError, serve_probes


async def ready() -> tuple[int, dict[str, Any]]:
    return 200, {"status": "ready"}


async def test_a_port_in_use_fails_at_once_and_names_the_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ProbePortError, match=f"127.0.0.1:{port}"):
            serve_probes({"/readyz": ready}, host="127.0.0.1", port=port)


async def test_a_free_port_answers_the_probes() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server, task = serve_probes({"/readyz": ready}, host="127.0.0.1", port=port)
    try:
        # Listening from the call on: no need to wait for uvicorn's start-up.
        async with httpx.AsyncClient() as client:
            reply = await client.get(f"http://127.0.0.1:{port}/readyz")
        assert reply.json() == {"status": "ready"}
    finally:
        server.should_exit = True
        await task
