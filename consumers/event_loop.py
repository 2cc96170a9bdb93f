"""Run a service's main coroutine on uvloop, the libuv event loop asyncpg's authors wrote for
exactly this (sockets, timers and callbacks in C instead of the standard loop's Python), and
shut the loop down within a bound.

Every long-running service (`python -m streams`, `consumers.intake`, `consumers.push`,
`consumers.reconciler`, `consumers.sink`) runs through here; uvicorn parses HTTP with
httptools once it is installed (its "auto" choice), both are dependencies. docs/benchmarks.md
("End to end") has what they save. `DISPATCH_EVENT_LOOP=asyncio` runs the standard loop
instead, to tell a loop difference from a bug of ours.

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
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import uvloop

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long the tasks left when a service's main coroutine returns may take to end.
SHUTDOWN_GRACE_S = 5.0


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """Return the event loop factory the environment asks for (None: the standard loop)."""
    chosen = os.environ.get("DISPATCH_EVENT_LOOP", "uvloop").strip().lower()
    if chosen == "asyncio":
        return None
    if chosen != "uvloop":
        raise ValueError(f"DISPATCH_EVENT_LOOP must be uvloop or asyncio, not {chosen!r}")
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], *, grace_s: float = SHUTDOWN_GRACE_S) -> T:
    """Run main to completion on a fresh loop of the chosen kind, as asyncio.run does, then
    cancel what is left and give it grace_s to end before the loop is closed."""
    factory = loop_factory()
    loop = factory() if factory is not None else asyncio.new_event_loop()
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
