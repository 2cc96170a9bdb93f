"""Run a stream worker: `python -m streams --stage classify` (what `dispatch run` starts, one
worker per stage); without `--stage`, one process runs all three. SIGINT or SIGTERM stop it
(exit 0); a worker that fails exits 1, for its supervisor to start it again."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from consumers import event_loop
from consumers.kafka_client import kafka_problem
from consumers.logs import setup_logging
from consumers.probe_server import ProbePortError
from consumers.until_stopped import Stop
from dispatch.settings import Settings
from infra.errors import InfraError
from infra.topics import declare_catalog_topics
from streams.pipeline import build_pipeline, parse_stages
from streams.probe import serve_stream_probes

log = logging.getLogger("streams")


async def run(settings: Settings, stages: Sequence[str], instance: str | None) -> int:
    """Declare the topics, run the stages until a signal (0) or a failure (1)."""
    stop = Stop()
    try:
        if not await stop.unless_requested(declare_catalog_topics(settings)):
            return 0
    except InfraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pipeline = build_pipeline(settings, stages=stages, instance=instance)
    probes = None
    if settings.stream_probe_port:
        try:
            probes, _ = serve_stream_probes(
                pipeline, host=settings.gateway_host, port=settings.stream_probe_port
            )
        except ProbePortError as exc:
            print(f"error: {exc.strerror}", file=sys.stderr)
            return 2
    try:
        if not await stop.unless_requested(pipeline.start()):
            return 0
        log.info("stream worker of %s started", ", ".join(pipeline.stages))
        return await stop.or_failure(pipeline.wait_failed(), what="the stream worker")
    finally:
        await pipeline.stop()
        if probes is not None:
            probes.should_exit = True
        log.info("stream worker of %s stopped", ", ".join(pipeline.stages))


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the stages, build the settings, run."""
    args = parse_stages(argv, prog="python -m streams", description=__doc__)
    setup_logging()
    settings = Settings()
    if (problem := kafka_problem(settings)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return event_loop.run(run(settings, args.stage, args.instance))


if __name__ == "__main__":
    sys.exit(main())
