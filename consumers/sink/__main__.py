"""Run the sink: `python -m consumers.sink`, until SIGINT or SIGTERM (exit 0); a part that
fails ends it with 1, for its supervisor to start it again."""

from __future__ import annotations

import logging
import sys
from typing import Any

from consumers import event_loop, metrics
from consumers.db import migrate
from consumers.db.pool import connection, open_pool
from consumers.db.url import database_problem, database_url
from consumers.kafka_client import kafka_problem
from consumers.logs import setup_logging
from consumers.probe_server import ProbePortError, serve_probes
from consumers.readiness import OK, Readiness, alive, postgres_answers
from consumers.sink.service import Sink, collect_less
from consumers.until_stopped import Stop
from dispatch.settings import Settings
from dispatch.zone import default_zone_path, load_zone
from infra.topics import declare_catalog_topics

log = logging.getLogger("consumers.sink")


def watch_sink(sink: Sink) -> None:
    """Show the sink's own figures on `/metrics` (docs/operations.md): the events it stored,
    and its delay, from the oldest record of its last batch to that batch's commit."""
    metrics.READINGS.add(
        "dispatch_sink_events_stored",
        "Kafka records the sink wrote to PostgreSQL and committed.",
        lambda: sink.status.kafka_records,
        counter=True,
    )
    metrics.READINGS.add(
        "dispatch_sink_delay_seconds",
        "From the oldest record of the sink's last batch (its Kafka timestamp) to its commit.",
        lambda: sink.status.last_delay_s or 0.0,
    )


async def serve(settings: Settings) -> int:
    """Migrate, start reading and writing, and run until a signal (0) or a failure (1)."""
    await declare_catalog_topics(settings)
    zone = load_zone(settings.zone_file or default_zone_path())
    pool = await open_pool(database_url(settings), min_size=1, max_size=4)
    try:
        async with connection(pool) as conn:
            await migrate(conn)
        collect_less()
        sink = Sink(
            bootstrap=settings.bootstrap_servers,
            pool=pool,
            zone=zone,
            group_id=settings.sink_group,
            batch_max=settings.sink_batch_max,
        )
        watch_sink(sink)

        async def healthz() -> tuple[int, dict[str, Any]]:
            return 200, alive()

        async def readyz() -> tuple[int, dict[str, Any]]:
            postgres = await postgres_answers(pool, 2.0)
            if postgres == OK and sink.status.waiting is not None:
                postgres = f"writing fails: {sink.status.waiting}"
            readiness = Readiness(kafka=sink.kafka_answer(), postgres=postgres)
            return readiness.status_code, readiness.body() | {"sink": sink.status_body()}

        probes = None
        if settings.sink_probe_port:
            try:
                probes, _ = serve_probes(
                    {"/healthz": healthz, "/readyz": readyz},
                    host=settings.gateway_host,
                    port=settings.sink_probe_port,
                )
            except ProbePortError as exc:
                print(f"error: {exc.strerror}", file=sys.stderr)
                return 2
        stop = Stop()
        try:
            if not await stop.unless_requested(sink.start()):
                return 0
            return await stop.or_failure(sink.wait_failed(), what="the sink")
        finally:
            await sink.stop()
            if probes is not None:
                probes.should_exit = True
    finally:
        await pool.close()


def main() -> int:
    """Build the settings and run the sink in the foreground."""
    setup_logging()
    settings = Settings()
    if (problem := database_problem(settings) or kafka_problem(settings)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return event_loop.run(serve(settings))


if __name__ == "__main__":
    sys.exit(main())
