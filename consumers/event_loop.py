"""Run a service's main coroutine as asyncio.run does, but shut the loop down within a bound.

Every long-running service (`python -m streams`, `consumers.intake`, `consumers.push`,
`consumers.reconciler`, `consumers.sink`) runs through here, on the standard event loop.
uvloop (with httptools for uvicorn) was tried and measured: the end-to-end benchmark on a
quiet machine showed no difference in sustained rate or CPU per alarm within its noise
(docs/benchmarks.md, "End to end"), so the project does without the two dependencies.

The shutdown: asyncio.run cancels the tasks left when main returns and waits for every one of
them, however long. A client library's task that awaits a broker inside its own cleanup (a
frozen Kafka) would then keep a service that was asked to stop, and had stopped its own work,
from exiting. Here the tasks left get SHUTDOWN_GRACE_S to end after their cancellation, and the
process goes on to exit whatever they do (what was not committed is read again by the next
owner).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long the tasks left when a service's main coroutine returns may take to end.
SHUTDOWN_GRACE_S = 5.0


def run(main: Coroutine[Any, Any, T], *, grace_s: float = SHUTDOWN_GRACE_S) -> T:
    """Run main to completion on a fresh loop, as asyncio.run does, then cancel what is left
    and give it grace_s to end before the loop is closed."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            _shut_down(loop, grace_s)
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _shut_down(loop: asyncio.AbstractEventLoop, grace_s: float) -> None:
    left = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in left:
        task.cancel()
    if left:
        _, pending = loop.run_until_complete(asyncio.wait(left, timeout=grace_s))
        if pending:
            names = ", ".join(sorted(task.get_name() for task in pending))
            log.warning(
                "%d tasks did not end within %.0f s of their cancellation (%s); exiting anyway",
                len(pending), grace_s, names,
            )  # fmt: skip
        for task in left:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.warning("a task ended with %r while the service stopped", task.exception())
    bounded = [loop.shutdown_asyncgens(), loop.shutdown_default_executor()]
    for step in bounded:
        try:
            loop.run_until_complete(asyncio.wait_for(step, grace_s))
        except TimeoutError:
            log.warning("the loop's shutdown took longer than %.0f s; exiting anyway", grace_s)
