"""Run a stream worker: `python -m streams --stage classify` (what `dispatch run` starts, one
worker per stage); without `--stage`, one process runs all three. SIGINT or SIGTERM stop it
(exit 0); a worker that fails exits 1, for its supervisor to start it again."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from dispatch.settings import Settings
from infra.errors import InfraError
from infra.topics import declare_catalog_topics
from streams.pipeline import build_pipeline, parse_stages
from streams.probe import serve_stream_probes

log = logging.getLogger("streams")


async def run(settings: Settings, stages: Sequence[str], instance: str | None) -> int:
    """Declare the topics, run the stages until a signal (0) or a failure (1)."""
    try:
        await declare_catalog_topics(settings)
    except InfraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    pipeline = build_pipeline(settings, stages=stages, instance=instance)
    probes = None
    if settings.stream_probe_port:
        probes, _ = serve_stream_probes(
            pipeline, host=settings.gateway_host, port=settings.stream_probe_port
        )
    try:
        await pipeline.start()
        log.info("stream worker of %s started", ", ".join(pipeline.stages))
        stopped = asyncio.create_task(stop.wait())
        failed = asyncio.create_task(pipeline.wait_failed())
        done, _ = await asyncio.wait({stopped, failed}, return_when=asyncio.FIRST_COMPLETED)
        for task in (stopped, failed):
            task.cancel()
        if failed in done and not failed.cancelled():
            log.error("stream worker failed: %s", failed.result())
            return 1
        return 0
    finally:
        await pipeline.stop()
        if probes is not None:
            probes.should_exit = True
        log.info("stream worker of %s stopped", ", ".join(pipeline.stages))


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the stages, build the settings, run."""
    args = parse_stages(argv, prog="python -m streams", description=__doc__)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return asyncio.run(run(Settings(), args.stage, args.instance))


if __name__ == "__main__":
    sys.exit(main())
