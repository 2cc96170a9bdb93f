"""The services' event loop: uvloop unless DISPATCH_EVENT_LOOP=asyncio asks for the standard one."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from consumers import event_loop


async def loop_kind() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def test_services_run_on_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPATCH_EVENT_LOOP", raising=False)
    assert event_loop.loop_factory() is uvloop.new_event_loop
    assert event_loop.run(loop_kind()) == "uvloop"


def test_the_standard_loop_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCH_EVENT_LOOP", "asyncio")
    assert event_loop.loop_factory() is None
    assert event_loop.run(loop_kind()) == "asyncio"


def test_an_unknown_loop_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCH_EVENT_LOOP", "trio")
    with pytest.raises(ValueError, match="DISPATCH_EVENT_LOOP must be uvloop or asyncio"):
        event_loop.loop_factory()


def test_a_task_that_resists_cancellation_does_not_keep_the_service(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A library task that, cancelled, goes on waiting (for a frozen broker, say).
    monkeypatch.setenv("DISPATCH_EVENT_LOOP", "uvloop")
    released = asyncio.Event()

    async def stubborn() -> None:
        while not released.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue  # swallows every cancellation

    async def main() -> int:
        asyncio.get_running_loop().create_task(stubborn(), name="stubborn")
        await asyncio.sleep(0)
        return 7

    assert event_loop.run(main(), grace_s=0.2) == 7
    assert "did not end" in caplog.text
    assert "stubborn" in caplog.text
