"""Run one stream worker: `python -m streams` (what `dispatch run` starts)."""

from __future__ import annotations

import asyncio
import logging
import sys

import mode.loop
from faust import Worker

from dispatch.settings import Settings
from infra.topics import declare_catalog_topics
from streams.pipeline import build_pipeline


def main() -> int:
    """Declare the topics, then run the classify, merge and route stages until stopped."""
    # uvloop (Faust's recommended loop): the pipeline benchmark measured the shipped pipeline
    # and the bare aiokafka loops both faster on it (docs/benchmarks.md). Set before any loop.
    mode.loop.use("uvloop")
    settings = Settings()
    asyncio.run(declare_catalog_topics(settings))
    pipeline = build_pipeline(settings)
    # The worker installs its own SIGINT/SIGTERM handlers and stops the app cleanly on them.
    worker = Worker(pipeline.app, loglevel=logging.INFO, quiet=True)
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
