"""Declare Kafka topics with their partitions and configs; already-existing topics are kept."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from infra.errors import InfraError


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
    """Create the topics that do not exist yet; return the names created."""
    wanted = list(topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
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
        for name, code, *rest in response.topic_errors:
            if code not in (0, TopicAlreadyExistsError.errno):
                message = rest[0] if rest else ""
                raise InfraError(f"could not create topic {name}: error {code} {message}")
        return [t.name for t in new]
    finally:
        await admin.close()
