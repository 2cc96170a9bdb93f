"""Declare Kafka topics with their partitions and configs; already-existing topics are kept."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from consumers.kafka_client import kafka_options
from dispatch.events import TOPICS
from dispatch.settings import Settings
from infra.errors import InfraError

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicDecl:
    """One topic to declare."""

    name: str
    partitions: int
    compacted: bool = False
    configs: dict[str, str] = field(default_factory=dict)

    def topic_configs(self) -> dict[str, str]:
        """Return the topic-level configs, with compaction when asked for."""
        base = {"cleanup.policy": "compact"} if self.compacted else {}
        return {**base, **self.configs}


async def ensure_topics(
    bootstrap: str, topics: Iterable[TopicDecl], *, replication_factor: int = 1
) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    A topic that exists with another partition count than declared is an error: the stages
    rely on it (co-partitioned inputs, bundles sent to the partition of their keys).
    """
    wanted = list(topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        await _check_partitions(admin, [t for t in wanted if t.name in existing])
        new = [
            NewTopic(
                name=t.name,
                num_partitions=t.partitions,
                replication_factor=replication_factor,
                topic_configs=t.topic_configs(),
            )
            for t in wanted
            if t.name not in existing
        ]
        if not new:
            return []
        response = await admin.create_topics(new)
        created = []
        for name, code, *rest in response.topic_errors:
            if code == 0:
                created.append(name)
            elif code != TopicAlreadyExistsError.errno:
                message = rest[0] if rest else ""
                raise InfraError(f"could not create topic {name}: error {code} {message}")
        await _until_led(admin, [t.name for t in new])
        return created
    finally:
        await admin.close()


# A topic just created has no leader for a moment; a client that writes to it then gets
# NotLeaderForPartition and waits for fresh metadata. Declaring returns once every new
# partition has a leader, or fails after this long.
LEADERS_WAIT_S = 30.0


async def _until_led(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LEADERS_WAIT_S
    while True:
        described = await admin.describe_topics(names)
        waiting = [
            topic["topic"]
            for topic in described
            if topic["error_code"] != 0
            or not topic["partitions"]
            or any(p["leader"] < 0 or p["error_code"] != 0 for p in topic["partitions"])
        ]
        if not waiting:
            return
        if loop.time() > deadline:
            raise InfraError(
                f"topics created but without a leader after {LEADERS_WAIT_S:.0f} s: "
                + ", ".join(sorted(waiting))
            )
        await asyncio.sleep(0.1)  # the controller's election: no event to await from here


async def _check_partitions(admin: AIOKafkaAdminClient, declared: list[TopicDecl]) -> None:
    if not declared:
        return
    described = await admin.describe_topics([t.name for t in declared])
    counts = {topic["topic"]: len(topic["partitions"]) for topic in described}
    # A topic another service created a moment ago can show no partitions yet: not a mismatch.
    wrong = [t for t in declared if counts.get(t.name) and counts[t.name] != t.partitions]
    if wrong:
        found = ", ".join(f"{t.name} has {counts.get(t.name)}" for t in wrong)
        raise InfraError(
            f"topics exist with another partition count than {wrong[0].partitions} "
            f"(DISPATCH_KAFKA_PARTITIONS): {found}; the stages need every catalog topic to "
            "have the same count"
        )


def catalog_declarations(settings: Settings) -> list[TopicDecl]:
    """Return a declaration for every topic of the event catalog, with its retention."""
    decls = []
    for spec in TOPICS.values():
        configs = {}
        if spec.retention_days is not None:
            configs["retention.ms"] = str(spec.retention_days * DAY_MS)
        if spec.max_message_bytes is not None:
            configs["max.message.bytes"] = str(spec.max_message_bytes)
        decls.append(TopicDecl(spec.name, settings.kafka_partitions, spec.compacted, configs))
    return decls


async def declare_catalog_topics(settings: Settings) -> list[str]:
    """Create every catalog topic that does not exist yet; return the names created."""
    return await ensure_topics(
        settings.bootstrap_servers,
        catalog_declarations(settings),
        replication_factor=settings.kafka_replication_factor,
    )
