"""Run the intake API: `python -m consumers.intake` (settings from `DISPATCH_*` variables)."""

from __future__ import annotations

import asyncio

import asyncpg
import uvicorn
from aiokafka import AIOKafkaProducer

from consumers.db import migrate
from consumers.intake.app import build_app
from dispatch.events import ALARMS_RAW
from dispatch.settings import Settings
from infra.stack import postgres_url
from infra.topics import catalog_declarations, ensure_topics

# The longest a client waits for Kafka's acknowledgement before it gets a 503.
KAFKA_TIMEOUT_S = 10.0


async def serve(settings: Settings) -> None:
    """Migrate the database, make sure alarms.raw exists, then serve until stopped."""
    # The topic is declared (with its retention) rather than left to auto-creation, which
    # the project's brokers disable; an existing topic is kept as it is.
    await ensure_topics(
        settings.bootstrap_servers,
        [decl for decl in catalog_declarations(settings) if decl.name == ALARMS_RAW.name],
        replication_factor=settings.kafka_replication_factor,
    )
    pool = await asyncpg.create_pool(postgres_url(settings), min_size=1, max_size=10)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)  # type: ignore[arg-type]  # a pooled connection is a Connection
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers,
            # An acknowledgement means every in-sync replica holds the alarm, and the
            # producer's own retries never write a record twice.
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=int(KAFKA_TIMEOUT_S * 1000),
        )
        await producer.start()
        try:
            app = build_app(settings, producer=producer, pool=pool, kafka_timeout_s=KAFKA_TIMEOUT_S)
            config = uvicorn.Config(
                app,
                host=settings.gateway_host,
                port=settings.intake_port,
                log_level="info",
                server_header=False,
            )
            await uvicorn.Server(config).serve()
        finally:
            await producer.stop()
    finally:
        await pool.close()


def main() -> None:
    """Build the settings and run the intake API in the foreground."""
    asyncio.run(serve(Settings()))


if __name__ == "__main__":
    main()
