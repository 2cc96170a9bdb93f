"""`python -m streams.health --stage route`: exit 0 when the stream worker of those stages
consumes, that is, its consumer group (the Faust app id) is Stable with a member; 1 otherwise.
docker-compose.yml's health check of each stream worker."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient

from dispatch.settings import Settings
from streams.pipeline import parse_stages, stage_app_id


async def group_stable(bootstrap: str, group: str) -> bool:
    """Whether the consumer group is Stable and has at least one member."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        replies = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    # Each group: (error, id, state, protocol type, protocol, members, ...).
    return any(g[2] == "Stable" and g[5] for reply in replies for g in reply.groups)


def main(argv: Sequence[str] | None = None) -> int:
    """Check the group of the stages on the command line."""
    stages = parse_stages(argv, prog="python -m streams.health", description=__doc__)
    stable = asyncio.run(group_stable(Settings().bootstrap_servers, stage_app_id(stages)))
    return 0 if stable else 1


if __name__ == "__main__":
    sys.exit(main())
