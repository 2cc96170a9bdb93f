"""Run a stream worker: `python -m streams --stage classify` (what `dispatch run` starts, one
worker per stage); without `--stage`, one worker runs all three."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from faust import Worker

from dispatch.settings import Settings
from infra.errors import InfraError
from infra.topics import declare_catalog_topics
from streams.pipeline import build_pipeline, parse_stages


def main(argv: Sequence[str] | None = None) -> int:
    """Declare the topics, then run the stages until SIGINT/SIGTERM."""
    stages = parse_stages(argv, prog="python -m streams", description=__doc__)
    # asyncio's own loop, not uvloop: uvloop ran the pipeline faster in one process, but two
    # workers of one app on it stalled mid-run in the benchmark (docs/benchmarks.md).
    settings = Settings()
    try:
        asyncio.run(declare_catalog_topics(settings))
    except InfraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pipeline = build_pipeline(settings, stages=stages)
    # The worker installs its own SIGINT/SIGTERM handlers and stops the app cleanly on them.
    worker = Worker(pipeline.app, loglevel=logging.INFO, quiet=True)
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
