"""Ports for tests and benchmarks, and the readiness probe when what answers is not HTTP.

CI once failed with "BadStatusLine: GET /readyz HTTP/1.1": a probe sent to a port in the kernel's
ephemeral range before the service listened was given that same port as its own end, connected to
itself and read its own request back, and the probe raised instead of saying "not ready".
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.processes import (
    LINUX_EPHEMERAL_RANGE,
    LOWEST_TEST_PORT,
    ephemeral_range,
    free_port,
    free_port_range,
    ports_outside,
)
from infra.supervisor import readiness


def test_free_ports_lie_outside_the_ephemeral_range_and_are_never_given_twice() -> None:
    low, high = ephemeral_range()
    given = [free_port() for _ in range(200)]
    assert len(set(given)) == len(given)
    for port in given:
        assert port >= LOWEST_TEST_PORT
        assert not low <= port <= high
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # nothing listens there


def test_a_range_of_free_ports_is_consecutive_outside_the_range_and_not_given_again() -> None:
    low, high = ephemeral_range()
    first = free_port_range(3)
    block = set(range(first, first + 3))
    assert all(not low <= port <= high for port in block)
    assert block.isdisjoint(free_port() for _ in range(200))


def test_a_port_that_is_listened_on_is_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # Only that port and one other may be chosen: the other one comes back.
        monkeypatch.setattr("infra.processes.ports_outside", lambda _range: (port, port + 1))
        with socket.socket() as other:
            try:
                other.bind(("127.0.0.1", port + 1))
            except OSError:
                pytest.fail(f"port {port + 1} is in use on this machine; the test needs it free")
        assert free_port() == port + 1


def test_the_ephemeral_range_is_read_from_the_kernel_or_taken_as_linux_default(
    tmp_path: Path,
) -> None:
    written = tmp_path / "ip_local_port_range"
    written.write_text("40000\t50000\n")
    assert ephemeral_range(written) == (40000, 50000)
    written.write_text("garbled\n")
    assert ephemeral_range(written) == LINUX_EPHEMERAL_RANGE
    assert ephemeral_range(tmp_path / "missing") == LINUX_EPHEMERAL_RANGE
    ports = ports_outside((40000, 50000))
    assert ports[0] == LOWEST_TEST_PORT
    assert ports[-1] == 65535
    assert 39999 in ports
    assert 50001 in ports
    assert not any(40000 <= port <= 50000 for port in ports)


@pytest.fixture
def echo_server() -> Iterator[int]:
    """A server that sends back what it is sent: what a probe connected to itself reads."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        with server:
            connection, _ = server.accept()
            with connection:
                request = connection.recv(65536)
                connection.sendall(request)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    thread.join(timeout=10)


def test_a_probe_answered_by_its_own_request_is_not_ready_and_does_not_raise(
    echo_server: int,
) -> None:
    ready, said = readiness(f"http://127.0.0.1:{echo_server}/readyz")
    assert not ready
    assert said.startswith("no HTTP answer: BadStatusLine(")
    assert "GET /readyz HTTP/1.1" in said
