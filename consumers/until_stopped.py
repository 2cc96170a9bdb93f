"""Run a service until SIGINT or SIGTERM, or until one of its parts fails: what every service's
`__main__` waits for, and the exit status it returns."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable

log = logging.getLogger(__name__)


class Stop:
    """SIGINT and SIGTERM set this; installed once, before the service starts its parts."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.requested.set)

    async def unless_requested(self, step: Awaitable[object]) -> bool:
        """Await a step (a start that waits for Kafka, say) unless a stop is requested first;
        return whether it finished. A service asked to stop while it waits must still stop."""
        stopped = asyncio.create_task(self.requested.wait())
        doing = asyncio.ensure_future(step)
        done, _ = await asyncio.wait({stopped, doing}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if doing in done:
            doing.result()  # its failure is the caller's
            return True
        doing.cancel()
        await asyncio.gather(doing, return_exceptions=True)
        return False

    async def or_failure(self, failed: Awaitable[object], *, what: str) -> int:
        """Wait for a stop request (return 0) or for failed to finish (log it, return 1)."""
        stopped = asyncio.create_task(self.requested.wait())
        failure = asyncio.ensure_future(failed)
        done, _ = await asyncio.wait({stopped, failure}, return_when=asyncio.FIRST_COMPLETED)
        for task in (stopped, failure):
            task.cancel()
        if failure in done and not failure.cancelled():
            log.error("%s failed: %s; shutting down", what, failure.result())
            return 1
        return 0


# A part that needs the broker to stop cleanly (leave its group, flush) waits this long for it.
PART_STOP_S = 3.0


async def stop_part(step: Awaitable[object], *, what: str, seconds: float = PART_STOP_S) -> None:
    """Await a part's stop, but no longer than seconds: a service asked to stop while Kafka is
    away must still stop (what it did not commit is read again by the next owner)."""
    try:
        await asyncio.wait_for(step, seconds)
    except TimeoutError:
        log.warning("%s did not stop cleanly within %.0f s (Kafka away?); going on", what, seconds)
