"""`python -m tests.integration.sink_child CONFIG`: a sink on a test's topics and schema, in a
process of its own that the test can kill; it prints `committed N` (Kafka records so far)
after each commit, which is what the test waits on.

CONFIG is JSON: bootstrap, postgres_url, schema, group_id, topics (the test's name -> the
catalog's), batch_max.
"""

from __future__ import annotations

import asyncio
import json
import sys

import asyncpg

from consumers.sink.service import Committed, Sink
from dispatch.events import TOPICS
from dispatch.zone import default_zone_path, load_zone


async def run(config: dict[str, object]) -> None:
    """Run the sink until the process is killed."""
    topics = config["topics"]
    assert isinstance(topics, dict)
    pool = await asyncpg.create_pool(
        str(config["postgres_url"]),
        min_size=1,
        max_size=4,
        server_settings={"search_path": str(config["schema"])},
    )
    total = 0

    def report(done: Committed) -> None:
        nonlocal total
        total += done.kafka_records
        print(f"committed {total}", flush=True)

    sink = Sink(
        bootstrap=str(config["bootstrap"]),
        pool=pool,
        zone=load_zone(default_zone_path()),
        topics={name: TOPICS[catalog] for name, catalog in topics.items()},
        group_id=str(config["group_id"]),
        batch_max=int(str(config["batch_max"])),
        on_commit=report,
    )
    await sink.start()
    print("started", flush=True)
    await sink.wait_failed()


if __name__ == "__main__":
    asyncio.run(run(json.loads(sys.argv[1])))
