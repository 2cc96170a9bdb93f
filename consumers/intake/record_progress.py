"""Whether the record holds every change published so far: the board's starting picture.

A board connects its live channel first, then fetches `GET /v1/board`. The channel shows every
change the gateway reads after the connection; the snapshot must hold every change before it.
The sink may lag the gateway, so a change the gateway fanned out before the board connected
could still be missing from the tables. So the board reads the topics' end offsets when it is
asked (every change published before then is below them) and waits until the sink's group has
committed at least those offsets: the sink commits only after the rows commit, so then the
tables hold everything published before the request (docs/api.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from consumers.kafka_client import kafka_options

log = logging.getLogger(__name__)

# How long a board request waits for the sink, and how often it asks the group's offsets.
WAIT_S = 5.0
POLL_S = 0.05
# Each question to Kafka (metadata, offsets) is bounded by this.
ASK_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class Progress:
    """Whether the record caught up with the topics; how many records it lacked (None:
    unknown)."""

    complete: bool
    behind: int | None


class RecordProgress:
    """Ask Kafka how far the sink's consumer group has committed on some topics.

    Its two clients (an admin client for the group's offsets and the topics' partitions, a
    consumer without a group for the end offsets) start at the first question and stay up, so
    a board fetch does not pay for connecting; `close` stops them (the intake's lifespan does,
    on shutdown). Kafka unreachable is an answer too: not known complete, and the clients are
    started afresh at the next question.
    """

    def __init__(
        self,
        *,
        bootstrap: str,
        group_id: str,
        topics: Sequence[str],
        wait_s: float = WAIT_S,
        poll_s: float = POLL_S,
    ) -> None:
        self._bootstrap = bootstrap
        self._group_id = group_id
        self._topics = tuple(topics)
        self._wait_s = wait_s
        self._poll_s = poll_s
        self._clients: tuple[AIOKafkaAdminClient, AIOKafkaConsumer] | None = None
        self._partitions: list[TopicPartition] = []
        self._lock = asyncio.Lock()

    async def caught_up(self) -> Progress:
        """Wait until the sink has stored every record published before now, or wait_s passed."""
        try:
            async with asyncio.timeout(ASK_TIMEOUT_S):
                admin, consumer, partitions = await self._ready()
                targets = await consumer.end_offsets(partitions)
            return await self._wait(admin, targets)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("board: could not tell how far the sink is: %r", exc)
            await self.close()
            return Progress(complete=False, behind=None)

    async def close(self) -> None:
        """Stop the clients; a later question starts new ones."""
        async with self._lock:
            clients, self._clients, self._partitions = self._clients, None, []
        if clients is not None:
            admin, consumer = clients
            await consumer.stop()
            await admin.close()

    async def _ready(
        self,
    ) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer, list[TopicPartition]]:
        async with self._lock:
            if self._clients is None:
                self._clients = await self._start()
            admin, consumer = self._clients
            if not self._partitions:
                self._partitions = await self._describe(admin)
            return admin, consumer, self._partitions

    async def _start(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, **kafka_options())
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            **kafka_options(),
        )
        try:
            await admin.start()
            await consumer.start()
        except BaseException:
            await consumer.stop()
            await admin.close()
            raise
        return admin, consumer

    async def _wait(
        self, admin: AIOKafkaAdminClient, targets: dict[TopicPartition, int]
    ) -> Progress:
        if not any(targets.values()):
            return Progress(complete=True, behind=0)  # nothing was ever published
        deadline = time.monotonic() + self._wait_s
        while True:
            behind: int | None
            try:
                async with asyncio.timeout(ASK_TIMEOUT_S):
                    behind = await self._behind(admin, targets)
            except KafkaError as exc:
                if not exc.retriable:
                    raise
                # The group's coordinator is moving or starting: ask again until the deadline.
                behind = None
            if behind == 0 or time.monotonic() >= deadline:
                return Progress(complete=behind == 0, behind=behind)
            await asyncio.sleep(self._poll_s)

    async def _behind(self, admin: AIOKafkaAdminClient, targets: dict[TopicPartition, int]) -> int:
        committed = await admin.list_consumer_group_offsets(
            self._group_id, partitions=list(targets)
        )
        missing = 0
        for tp, end in targets.items():
            done = committed.get(tp)
            # -1: the group never committed there (nothing read yet).
            offset = done.offset if done is not None and done.offset >= 0 else 0
            missing += max(0, end - offset)
        return missing

    async def _describe(self, admin: AIOKafkaAdminClient) -> list[TopicPartition]:
        described = await admin.describe_topics(list(self._topics))
        partitions = [
            TopicPartition(topic["topic"], p["partition"])
            for topic in described
            for p in topic["partitions"]
        ]
        if not partitions:
            raise KafkaError(f"no partitions found for {', '.join(self._topics)}")
        return partitions
