"""Run one stream worker: `python -m streams` (what `dispatch run` starts)."""

from __future__ import annotations

import asyncio
import logging
import sys

from faust import Worker

from dispatch.settings import Settings
from infra.topics import declare_catalog_topics
from streams.pipeline import build_pipeline


def main() -> int:
    """Declare the topics, then run the classify, merge and route stages until stopped."""
    # asyncio's own loop, not uvloop: uvloop ran the pipeline faster in one process, but two
    # workers of one app on it stalled mid-run in the benchmark (docs/benchmarks.md).
    settings = Settings()
    asyncio.run(declare_catalog_topics(settings))
    pipeline = build_pipeline(settings)
    # The worker installs its own SIGINT/SIGTERM handlers and stops the app cleanly on them.
    worker = Worker(pipeline.app, loglevel=logging.INFO, quiet=True)
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
