"""Assemble stages of the stream pipeline into workers that run in one process."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaProducer, ConsumerRecord

from consumers.kafka_client import kafka_options
from consumers.kafka_producer import RecoveringProducer
from consumers.until_stopped import stop_part
from dispatch.classify import Rules, default_rules_path, load_rules
from dispatch.events import ALARMS_DLQ, UNITS_STATUS, encode, key_of
from dispatch.lifecycle import LifecyclePolicy
from dispatch.policy import policy_of
from dispatch.routing import RoutingPolicy
from dispatch.settings import Settings
from dispatch.zone import Zone, default_zone_path, load_zone
from infra.topics import TopicDecl, ensure_topics
from streams.classify import classify_stage, merge_stage
from streams.dead_letters import dead_letter_for
from streams.partitioner import keyed_partitioner
from streams.reserve import reserve_stage
from streams.route import route_stage
from streams.tables import ChangelogTable
from streams.units_board import UnitBoard
from streams.worker import Membership, StageSpec, StageWorker

log = logging.getLogger(__name__)

# The stages in the order an alarm passes them.
STAGES = ("classify", "merge", "route")
APP_ID = "alarm-dispatch"


def stage_group_id(stage: str, *, base: str = APP_ID) -> str:
    """Return the consumer group of a stage (`alarm-dispatch-route`): every worker of the stage
    is a member, and its tables' changelog topics are named after it."""
    return f"{base}-{stage}"


@dataclass
class Pipeline:
    """Workers of some stages, their shared producer and the route stage's unit board."""

    settings: Settings
    zone: Zone
    stages: tuple[str, ...]
    workers: list[StageWorker]
    producer: RecoveringProducer
    prefix: str
    # The route stage's view of the units (None when this process does not route).
    board: UnitBoard | None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        """Declare the tables' changelogs, start the producer, the board reader, the workers."""
        partitions = self.settings.kafka_partitions
        changelogs = [
            changelog_decl(table, partitions)
            for worker in self.workers
            for table in worker.spec.tables
        ]
        await ensure_topics(
            self.settings.bootstrap_servers,
            changelogs,
            replication_factor=self.settings.kafka_replication_factor,
        )
        await self.producer.start()
        if self.board is not None:
            self._tasks.append(asyncio.create_task(self._follow_units(), name="unit-board"))
        for worker in self.workers:
            await worker.start()

    async def stop(self) -> None:
        """Stop the workers (each finishes its batch), the board reader, the producer."""
        await asyncio.gather(*(worker.stop() for worker in self.workers))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await stop_part(self.producer.stop(), what="the stage workers' producer")

    async def wait_ready(self) -> None:
        """Wait until every worker handles partitions and the unit board has caught up."""
        await asyncio.gather(*(worker.ready.wait() for worker in self.workers))
        if self.board is not None:
            await self.board.ready.wait()

    async def wait_failed(self) -> str:
        """Wait until a worker or the board reader fails; return what failed and why."""
        waits: dict[asyncio.Future[Any], str] = {
            asyncio.ensure_future(worker.wait_failed()): worker.name for worker in self.workers
        }
        # The board reader runs until it is cancelled: it ending at all is a failure.
        waits.update({task: task.get_name() for task in self._tasks})
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for future in waits:
            if future not in self._tasks and not future.done():
                future.cancel()
        finished = next(iter(done))
        outcome = "ended" if finished.cancelled() else finished.exception() or finished.result()
        return f"{waits[finished]}: {outcome!r}"

    async def _follow_units(self) -> None:
        assert self.board is not None
        topic = self.prefix + UNITS_STATUS.name
        await self.board.follow(
            self.settings.bootstrap_servers, topic, self._dead_letter_unit_report, asyncio.Event()
        )

    async def _dead_letter_unit_report(
        self, record: ConsumerRecord[bytes, bytes], why: str
    ) -> None:
        letter = dead_letter_for(record, stage="route", reason=why)
        await self.producer.send_and_wait(
            self.prefix + ALARMS_DLQ.name, encode(letter), key=key_of(letter)
        )

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


def changelog_decl(table: ChangelogTable, partitions: int) -> TopicDecl:
    """Declare a table's changelog: compacted, and deleted by age when the table says so."""
    if table.retention_ms is None:
        return TopicDecl(table.changelog_topic, partitions, compacted=True)
    configs = {"cleanup.policy": "compact,delete", "retention.ms": str(table.retention_ms)}
    return TopicDecl(table.changelog_topic, partitions, configs=configs)


def parse_stages(
    argv: Sequence[str] | None, *, prog: str, description: str | None
) -> argparse.Namespace:
    """Parse a worker's command line: `--stage` (repeatable, default all) and `--instance`."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--stage",
        action="append",
        choices=STAGES,
        help="a stage of this worker; repeat for more (default: all)",
    )
    parser.add_argument(
        "--instance",
        default=None,
        help="this worker's static group membership id (a restarted worker with the same id "
        "takes its partitions back at once); default: none",
    )
    args = parser.parse_args(argv)
    args.stage = tuple(stage for stage in STAGES if stage in (args.stage or STAGES))
    return args


def load_zone_and_rules(settings: Settings) -> tuple[Zone, Rules]:
    """Load the configured zone and rules files, or the shipped ones."""
    zone = load_zone(settings.zone_file or default_zone_path())
    rules = load_rules(settings.rules_file or default_rules_path())
    return zone, rules


def build_pipeline(
    settings: Settings,
    *,
    stages: Sequence[str] = STAGES,
    app_id: str = APP_ID,
    topic_prefix: str = "",
    instance: str | None = None,
    routing: RoutingPolicy | None = None,
    lifecycle: LifecyclePolicy | None = None,
    merge_window: timedelta | None = None,
    tick_interval_s: float = 1.0,
) -> Pipeline:
    """Build workers for the given stages (all three by default), each a member of the group
    `stage_group_id(stage, base=app_id)` (tests and benchmarks use fresh app ids). Routing,
    lifecycle timers and the merge window are the zone file's policy unless given."""
    unknown = sorted(set(stages) - set(STAGES))
    if unknown or not stages:
        raise ValueError(f"stages must be some of {', '.join(STAGES)}; got {list(stages)}")
    zone, rules = load_zone_and_rules(settings)
    policy = policy_of(zone)
    partitions = settings.kafka_partitions
    prefix = topic_prefix
    ordered = tuple(stage for stage in STAGES if stage in stages)
    board = UnitBoard(zone) if "route" in ordered else None
    specs: list[StageSpec] = []
    for stage in ordered:
        group = stage_group_id(stage, base=app_id)
        if stage == "classify":
            specs.append(classify_stage(zone=zone, rules=rules, prefix=prefix))
        elif stage == "merge":
            specs.append(
                merge_stage(
                    group_id=group,
                    prefix=prefix,
                    partitions=partitions,
                    merge_window=merge_window or policy.merge_window,
                )
            )
        else:
            assert board is not None
            specs.append(
                route_stage(
                    group_id=group,
                    prefix=prefix,
                    partitions=partitions,
                    board=board,
                    routing=routing or policy.routing,
                    lifecycle=lifecycle or policy.lifecycle,
                    tick_interval_s=tick_interval_s,
                )
            )
            # The units' single writer runs beside route: route's jobs reach units through it.
            specs.append(
                reserve_stage(
                    group_id=stage_group_id("reserve", base=app_id),
                    prefix=prefix,
                    partitions=partitions,
                )
            )
    producer = new_producer(settings)
    workers = [
        StageWorker(
            spec,
            bootstrap=settings.bootstrap_servers,
            membership=membership(settings, stage_group_id(spec.stage, base=app_id), instance),
            producer=producer,
            prefix=prefix,
            partitions=partitions,
        )
        for spec in specs
    ]
    return Pipeline(settings, zone, ordered, workers, producer, prefix, board)


def membership(settings: Settings, group_id: str, instance: str | None) -> Membership:
    """Return a worker's group membership from settings."""
    return Membership(
        group_id=group_id,
        instance_id=f"{group_id}-{instance}" if instance else None,
        session_timeout_ms=int(settings.stream_session_timeout_s * 1000),
        heartbeat_interval_ms=int(settings.stream_heartbeat_interval_s * 1000),
    )


def new_producer(settings: Settings, **overrides: Any) -> RecoveringProducer:
    """Return the stage workers' producer: acks=all, idempotent, batching for 5 ms, replaced
    by a fresh one when it can no longer send (after a broker restart, for instance)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        # An acknowledgement means every in-sync replica has the record.
        "acks": "all",
        "enable_idempotence": True,
        # Let a produce request gather a batch's records for up to 5 ms instead of one
        # request per record (docs/benchmarks.md), for at most 5 ms more latency per hop.
        "linger_ms": 5,
        # Kafka's default partitioner without hashing the same key again and again.
        "partitioner": keyed_partitioner,
        # A send that gets nowhere fails within this and the batch is written again.
        "request_timeout_ms": 15_000,
    }
    options |= kafka_options() | overrides
    return RecoveringProducer(
        options["bootstrap_servers"], factory=lambda: AIOKafkaProducer(**options)
    )
