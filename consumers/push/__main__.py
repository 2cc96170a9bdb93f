"""Run one push gateway: `python -m consumers.push`, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import asyncpg

from consumers.db import migrate
from consumers.push.gateway import PushGateway
from consumers.push.gc_tuning import GcTuning
from consumers.push.store import connection
from dispatch.settings import Settings
from infra.stack import postgres_url
from infra.topics import declare_catalog_topics

log = logging.getLogger("consumers.push")


async def serve(settings: Settings) -> int:
    """Migrate, start the gateway, and run until a signal (0) or a failed part (1)."""
    await declare_catalog_topics(settings)
    pool = await asyncpg.create_pool(postgres_url(settings), min_size=2, max_size=20)
    try:
        async with connection(pool) as conn:
            await migrate(conn)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        # Entered first, so that the start-up state is frozen before the first connection.
        async with GcTuning.from_settings(settings), PushGateway(settings, pool) as gateway:
            log.info("push gateway on ws://%s:%d", settings.gateway_host, gateway.port)
            stopped = asyncio.create_task(stop.wait())
            failed = asyncio.create_task(gateway.wait_failed())
            done, pending = await asyncio.wait(
                {stopped, failed}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
            if failed in done:
                log.error("the %s stopped unexpectedly; shutting down", failed.result())
                return 1
        return 0
    finally:
        await pool.close()


def main() -> int:
    """Build the settings from the environment and serve."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return asyncio.run(serve(Settings()))


if __name__ == "__main__":
    sys.exit(main())
