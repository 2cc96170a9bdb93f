"""Run the reconciler: `python -m consumers.reconciler`, until SIGINT or SIGTERM (exit 0); a
part that fails ends it with 1, for its supervisor to start it again."""

from __future__ import annotations

import logging
import sys
from typing import Any

from consumers import event_loop
from consumers.db import migrate
from consumers.db.pool import connection, open_pool
from consumers.db.url import database_problem, database_url
from consumers.kafka_client import kafka_problem
from consumers.kafka_producer import RecoveringProducer
from consumers.logs import setup_logging
from consumers.probe_server import ProbePortError, serve_probes
from consumers.readiness import alive, check_ready
from consumers.reconciler.service import Reconciler, Timing
from consumers.until_stopped import Stop, stop_part
from dispatch.settings import Settings
from infra.topics import declare_catalog_topics
from streams.pipeline import load_zone_and_rules

log = logging.getLogger("consumers.reconciler")


async def serve(settings: Settings) -> int:
    """Migrate, start reading and looking, and run until a signal (0) or a failure (1)."""
    await declare_catalog_topics(settings)
    zone, rules = load_zone_and_rules(settings)
    pool = await open_pool(database_url(settings), min_size=1, max_size=4)
    producer = RecoveringProducer(settings.bootstrap_servers)
    try:
        async with connection(pool) as conn:
            await migrate(conn)
        await producer.start()
        timing = Timing(
            bound_s=settings.reconcile_after_s,
            every_s=settings.reconcile_every_s,
            report_every_s=settings.reconcile_remind_every_s,
        )
        reconciler = Reconciler(
            bootstrap=settings.bootstrap_servers,
            pool=pool,
            producer=producer,
            zone=zone,
            rules=rules,
            timing=timing,
        )

        async def healthz() -> tuple[int, dict[str, Any]]:
            return 200, alive()

        async def readyz() -> tuple[int, dict[str, Any]]:
            readiness = await check_ready(producer=producer, pool=pool)
            body = readiness.body() | {"reconciler": reconciler.status_body()}
            return readiness.status_code, body

        probes = None
        if settings.reconciler_probe_port:
            try:
                probes, _ = serve_probes(
                    {"/healthz": healthz, "/readyz": readyz},
                    host=settings.gateway_host,
                    port=settings.reconciler_probe_port,
                )
            except ProbePortError as exc:
                print(f"error: {exc.strerror}", file=sys.stderr)
                return 2
        stop = Stop()
        if not await stop.unless_requested(reconciler.start()):
            return 0
        try:
            return await stop.or_failure(reconciler.wait_failed(), what="the reconciler")
        finally:
            await reconciler.stop()
            if probes is not None:
                probes.should_exit = True
    finally:
        await stop_part(producer.stop(), what="the reconciler's producer")
        await pool.close()


def main() -> int:
    """Build the settings and run the reconciler in the foreground."""
    setup_logging()
    settings = Settings()
    if (problem := database_problem(settings) or kafka_problem(settings)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return event_loop.run(serve(settings))


if __name__ == "__main__":
    sys.exit(main())
