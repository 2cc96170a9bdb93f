"""Run one push gateway: `python -m consumers.push`, until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import sys

from consumers import event_loop
from consumers.db import migrate
from consumers.db.pool import open_pool
from consumers.db.url import database_problem, database_url
from consumers.kafka_client import kafka_problem
from consumers.logs import setup_logging
from consumers.push.gateway import PushGateway
from consumers.push.gc_tuning import GcTuning
from consumers.push.store import connection
from consumers.until_stopped import Stop
from dispatch.settings import Settings
from infra.topics import declare_catalog_topics

log = logging.getLogger("consumers.push")


async def serve(settings: Settings) -> int:
    """Migrate, start the gateway, and run until a signal (0) or a failed part (1)."""
    await declare_catalog_topics(settings)
    pool = await open_pool(database_url(settings), min_size=2, max_size=20)
    try:
        async with connection(pool) as conn:
            await migrate(conn)
        stop = Stop()
        # Entered first, so that the start-up state is frozen before the first connection.
        async with GcTuning.from_settings(settings), PushGateway(settings, pool) as gateway:
            log.info("push gateway on ws://%s:%d", settings.gateway_host, gateway.port)
            return await stop.or_failure(gateway.wait_failed(), what="the push gateway")
    finally:
        await pool.close()


def main() -> int:
    """Build the settings from the environment and serve."""
    setup_logging()
    settings = Settings()
    if (problem := database_problem(settings) or kafka_problem(settings)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return event_loop.run(serve(settings))


if __name__ == "__main__":
    sys.exit(main())
