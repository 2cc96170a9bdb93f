"""The services' event loop ends when their work ends, whatever a library's task does."""

from __future__ import annotations

import asyncio

import pytest

from consumers import event_loop


def test_a_task_that_resists_cancellation_does_not_keep_the_service(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A library task that, cancelled, goes on waiting (for a frozen broker, say).
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
