"""Run the intake API: `python -m consumers.intake`, until SIGINT or SIGTERM (then exit 0)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterator

import uvicorn

from consumers import event_loop
from consumers.db import migrate
from consumers.db.pool import open_pool
from consumers.db.url import database_problem, database_url
from consumers.intake.app import build_app
from consumers.kafka_client import kafka_problem
from consumers.kafka_producer import RecoveringProducer
from consumers.logs import setup_logging
from dispatch.events import ALARMS_RAW
from dispatch.settings import Settings
from infra.topics import catalog_declarations, ensure_topics

# The longest a client waits for Kafka's acknowledgement before it gets a 503.
KAFKA_TIMEOUT_S = 10.0


class IntakeServer(uvicorn.Server):
    """A uvicorn server that leaves the signals to `serve`.

    uvicorn's own handlers shut the server down and then raise the signal again, so that the
    process dies of it: SIGTERM, the way `dispatch run` and container engines stop a service,
    would end every clean shutdown with exit status -15.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(settings: Settings) -> None:
    """Migrate the database, make sure alarms.raw exists, then serve until SIGINT or SIGTERM."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    # The topic is declared (with its retention) rather than left to auto-creation, which
    # the project's brokers disable; an existing topic is kept as it is.
    await ensure_topics(
        settings.bootstrap_servers,
        [decl for decl in catalog_declarations(settings) if decl.name == ALARMS_RAW.name],
        replication_factor=settings.kafka_replication_factor,
    )
    pool = await open_pool(database_url(settings), min_size=1, max_size=10)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)  # type: ignore[arg-type]  # a pooled connection is a Connection
        # Idempotent, acks=all: an acknowledgement means every in-sync replica holds the
        # alarm, and the producer's own retries never write a record twice. Replaced by a new
        # one when it can no longer send (after a broker restart), so intake recovers alone.
        producer = RecoveringProducer(
            settings.bootstrap_servers, request_timeout_ms=int(KAFKA_TIMEOUT_S * 1000)
        )
        await producer.start()
        try:
            app = build_app(settings, producer=producer, pool=pool, kafka_timeout_s=KAFKA_TIMEOUT_S)
            config = uvicorn.Config(
                app,
                host=settings.gateway_host,
                port=settings.intake_port,
                log_config=None,  # consumers/logs.py's set-up, done in main()
                server_header=False,
            )
            server = IntakeServer(config)
            serving = asyncio.create_task(server.serve())
            stopped = asyncio.create_task(stopping.wait())
            await asyncio.wait({serving, stopped}, return_when=asyncio.FIRST_COMPLETED)
            # Stop accepting, finish the requests in flight (each waits at most for its Kafka
            # acknowledgement), then close the producer and the pool.
            server.should_exit = True
            stopped.cancel()
            await serving
        finally:
            await producer.stop()
    finally:
        await pool.close()


def main() -> int:
    """Build the settings and run the intake API in the foreground."""
    setup_logging()
    settings = Settings()
    if (problem := database_problem(settings) or kafka_problem(settings)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    event_loop.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
