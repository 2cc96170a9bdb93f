"""The board feed: incidents.state, units.status and commander.outcomes fanned out to the
boards; presence.

Moved out of consumers.push.sessions, which still exports it under its old name.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from consumers.kafka_client import kafka_options
from consumers.push.outbox import cancel
from consumers.push.presence import PRESENCE_INTERVAL_S, PresenceBeacon
from dispatch.events import CommandOutcome, IncidentStateChange, InvalidEvent, UnitStatus, decode

if TYPE_CHECKING:
    # The hub's module exports this one: a runtime import would be circular.
    from consumers.push.sessions import Hub

log = logging.getLogger(__name__)

# A skipped record's reason may quote all of it; the log needs only the start.
MAX_LOGGED_REASON = 500


class BoardFeed:
    """Read incidents.state, units.status and commander.outcomes from the latest offset and
    fan them out to boards; announce the connected units' presence on units.status
    (consumers.push.presence).

    No consumer group: every gateway process reads every partition, because any of them may
    hold a given desk's or commander's connection.
    """

    def __init__(
        self,
        *,
        bootstrap: str,
        incidents_topic: str,
        units_topic: str,
        outcomes_topic: str,
        hub: Hub,
        presence_interval_s: float = PRESENCE_INTERVAL_S,
    ) -> None:
        self._incidents_topic = incidents_topic
        self._units_topic = units_topic
        self._outcomes_topic = outcomes_topic
        self._hub = hub
        # Presence records are best effort (the next one says the same): no idempotence to
        # wedge after a broker restart, and a leader's ack is enough.
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, **kafka_options())
        self.presence = PresenceBeacon(
            hub=hub,
            send=self._producer.send_and_wait,
            topic=units_topic,
            interval_s=presence_interval_s,
        )
        self._consumer = AIOKafkaConsumer(
            incidents_topic,
            units_topic,
            outcomes_topic,
            bootstrap_servers=bootstrap,
            # Without a group the consumer takes every partition, and new ones as they appear.
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            **kafka_options(),
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def done(self) -> asyncio.Task[None]:
        """Return the feed's task; it ends only when stopped, or by a bug."""
        assert self._task is not None, "start() first"
        return self._task

    async def start(self) -> None:
        """Take every partition at its end, then start reading."""
        await self._consumer.start()
        # Resolve "latest" now, so that a change published after start() returns is seen.
        for partition in self._consumer.assignment():
            await self._consumer.position(partition)
        self._task = asyncio.create_task(self._run(), name="board-feed")
        await self._producer.start()
        await self.presence.start()

    async def stop(self) -> None:
        """Stop announcing and reading."""
        await self.presence.stop()
        await self._producer.stop()
        if self._task is not None:
            await cancel(self._task)
        await self._consumer.stop()

    async def _run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    self._publish(record)

    def _publish(self, record: ConsumerRecord[Any, Any]) -> None:
        value = record.value if isinstance(record.value, bytes) else b""
        try:
            if record.topic == self._incidents_topic:
                self._hub.publish_incident(decode(IncidentStateChange, value))
            elif record.topic == self._outcomes_topic:
                self._hub.publish_command_outcome(decode(CommandOutcome, value))
            else:
                self._hub.publish_unit_status(decode(UnitStatus, value))
        except InvalidEvent as exc:
            # The boards are a live view; the stage that wrote it dead-letters bad records.
            self._skip(record, str(exc))
        except Exception as exc:
            # Whatever one record does, the boards must keep receiving the next ones.
            self._skip(record, f"{type(exc).__name__}: {exc}")

    @staticmethod
    def _skip(record: ConsumerRecord[Any, Any], why: str) -> None:
        log.warning(
            "board feed skips %s[%d]@%d: %s",
            record.topic,
            record.partition,
            record.offset,
            why[:MAX_LOGGED_REASON],
        )
