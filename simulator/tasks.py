"""Stopping background tasks without swallowing the caller's own cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel the tasks and wait until they have ended.

    asyncio.wait neither raises a task's own CancelledError nor hides the caller's: a
    `suppress(CancelledError)` around `await task` would swallow a cancellation of the caller
    that arrives meanwhile, and the caller would run on (asyncio.timeout would never fire).
    """
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
