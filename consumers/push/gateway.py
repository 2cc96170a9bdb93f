"""One push gateway process: the websocket server and what feeds it, started and stopped together.

Several gateways may run behind a load balancer on one database and one Kafka cluster: their
outbox writers share a consumer group, each LISTENs for the others' rows, and each reads the
whole of incidents.state, units.status and commander.outcomes for its own boards.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Self

import asyncpg

from consumers import metrics
from consumers.kafka_producer import RecoveringProducer
from consumers.push.actions import PUBLISH_TIMEOUT_S, CommanderActions, UnitActions
from consumers.push.outbox import OutboxListener, OutboxWriter
from consumers.push.server import PushServer
from consumers.push.sessions import BoardFeed, Hub, RateLimiter
from consumers.readiness import check_ready
from consumers.until_stopped import stop_part
from dispatch.events import (
    ALARMS_DLQ,
    COMMANDER_COMMANDS,
    COMMANDER_OUTCOMES,
    DISPATCH_ASSIGNMENTS,
    INCIDENTS_STATE,
    RESPONSES_EVENTS,
    UNITS_STATUS,
)
from dispatch.settings import Settings

OUTBOX_GROUP = "push-outbox"


@dataclass(frozen=True)
class PushTopics:
    """The topics the gateway reads and writes."""

    assignments: str
    responses: str
    units_status: str
    incidents_state: str
    dead_letters: str
    commands: str
    outcomes: str

    @classmethod
    def with_prefix(cls, prefix: str = "") -> PushTopics:
        """Return the catalog's topic names, each with prefix in front (tests use fresh ones)."""
        return cls(
            assignments=prefix + DISPATCH_ASSIGNMENTS.name,
            responses=prefix + RESPONSES_EVENTS.name,
            units_status=prefix + UNITS_STATUS.name,
            incidents_state=prefix + INCIDENTS_STATE.name,
            dead_letters=prefix + ALARMS_DLQ.name,
            commands=prefix + COMMANDER_COMMANDS.name,
            outcomes=prefix + COMMANDER_OUTCOMES.name,
        )


class PushGateway:
    """The server, the outbox writer and listener, the board feed and their Kafka producer."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        *,
        topics: PushTopics | None = None,
        group_id: str = OUTBOX_GROUP,
        port: int | None = None,
        publish_timeout_s: float = PUBLISH_TIMEOUT_S,
    ) -> None:
        topics = topics or PushTopics.with_prefix()
        bootstrap = settings.bootstrap_servers
        self.hub = Hub()
        # Idempotent, acks=all, and replaced by a new one when it can no longer send (after a
        # broker restart), so that answers and commands go through again without a restart.
        self._producer = RecoveringProducer(bootstrap)
        self.writer = OutboxWriter(
            pool=pool,
            producer=self._producer,
            bootstrap=bootstrap,
            topic=topics.assignments,
            dead_letter_topic=topics.dead_letters,
            group_id=group_id,
            on_stored=self.hub.deliver,
        )
        self._listener = OutboxListener(
            pool=pool,
            own_pid=lambda: self.writer.backend_pid,
            on_unit=self.hub.wake_unit,
            on_relisten=self.hub.wake_all,
        )
        self._feed = BoardFeed(
            bootstrap=bootstrap,
            incidents_topic=topics.incidents_state,
            units_topic=topics.units_status,
            outcomes_topic=topics.outcomes,
            hub=self.hub,
        )
        # One bucket per principal for everything it sends, whatever the channel.
        limiter = RateLimiter(settings.rate_limit_per_minute)
        actions = UnitActions(
            pool=pool,
            producer=self._producer,
            responses_topic=topics.responses,
            units_topic=topics.units_status,
            limiter=limiter,
            publish_timeout_s=publish_timeout_s,
        )
        commands = CommanderActions(
            pool=pool,
            producer=self._producer,
            commands_topic=topics.commands,
            limiter=limiter,
            publish_timeout_s=publish_timeout_s,
        )
        self.server = PushServer(
            settings,
            pool=pool,
            hub=self.hub,
            actions=actions,
            commands=commands,
            check_ready=partial(check_ready, producer=self._producer, pool=pool),
            port=port,
        )
        self._started: list[str] = []
        self._pool = pool
        self._metrics_key = f"push-gateway/{id(self)}"

    async def refresh_metrics(self) -> None:
        """Read the figures `/metrics` shows as they are now: connections and the backlog."""
        metrics.PUSH_CONNECTED.labels(channel="unit").set(self.hub.unit_connections)
        metrics.PUSH_CONNECTED.labels(channel="board").set(self.hub.board_connections)
        async with self._pool.acquire() as conn:
            backlog = await conn.fetchval("SELECT count(*) FROM unit_outbox WHERE acked_at IS NULL")
        metrics.OUTBOX_BACKLOG.set(backlog)

    @property
    def port(self) -> int:
        """Return the port the websocket server listens on."""
        return self.server.port

    async def start(self) -> None:
        """Start every part; on a failure, stop what started and raise."""
        try:
            await self._producer.start()
            self._started.append("producer")
            await self._listener.start()
            self._started.append("listener")
            await self._feed.start()
            self._started.append("feed")
            await self.server.start()
            self._started.append("server")
            await self.writer.start()
            self._started.append("writer")
            metrics.add_refresher(self._metrics_key, self.refresh_metrics)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Close every connection, then stop the writer, the feed, the listener, the producer."""
        started, self._started = self._started, []
        metrics.remove_refresher(self._metrics_key)
        if "server" in started:
            await self.server.stop()
        if "writer" in started:
            await stop_part(self.writer.stop(), what="the outbox writer", seconds=12.0)
        if "feed" in started:
            await stop_part(self._feed.stop(), what="the board feed")
        if "listener" in started:
            await self._listener.stop()
        if "producer" in started:
            await stop_part(self._producer.stop(), what="the gateway's producer")

    async def wait_failed(self) -> str:
        """Wait until a background part ends (only a bug ends one); return which."""
        parts = {
            self.writer.done: "outbox writer",
            self._listener.done: "outbox listener",
            self._feed.done: "board feed",
        }
        done, _ = await asyncio.wait(parts, return_when=asyncio.FIRST_COMPLETED)
        return parts[next(iter(done))]

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
