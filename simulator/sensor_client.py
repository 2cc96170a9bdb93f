"""A device integration writing `RawAlarm` records straight to `alarms.raw`, as the hotline's
or a camera platform's integration would (docs/events.md#alarmsraw).

It makes the record itself (alarm id, received_at, source), writes it with an idempotent
`acks=all` producer keyed by `source_id`, and counts it as receipted once Kafka acknowledged
it. A failed send is retried with the same record (the pipeline deduplicates on alarm_id),
on a fresh producer, until a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from consumers.kafka_client import kafka_options
from dispatch.events import ALARMS_RAW, RawAlarm, SourceKind, encode, key_of
from simulator.retry import Backoff

log = logging.getLogger(__name__)

DEADLINE_S = 120.0
SEND_TIMEOUT_S = 15.0


@dataclass
class SensorRecord:
    """Every alarm written and every one given up on."""

    sent: list[RawAlarm] = field(default_factory=list)
    failed: list[tuple[RawAlarm, str]] = field(default_factory=list)
    retries: int = 0


class SensorClient:
    """Write raw alarms of devices and the hotline to Kafka; start and stop it as a context."""

    def __init__(
        self, bootstrap: str, *, topic: str = ALARMS_RAW.name, deadline_s: float = DEADLINE_S
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.deadline_s = deadline_s
        self.record = SensorRecord()
        self._producer: AIOKafkaProducer | None = None

    async def __aenter__(self) -> Self:
        self._producer = await self._new_producer()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def _new_producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=int(SEND_TIMEOUT_S * 1000),
            **kafka_options(),
        )
        try:
            await producer.start()
        except BaseException:
            # A producer whose start failed (the broker away) still holds its client: close
            # it, or it is collected unclosed and warns (which the fault tests count as a
            # failure).
            await producer.stop()
            raise
        return producer

    def alarm(self, *, source_id: str, text: str, **fields: Any) -> RawAlarm:
        """Build the raw alarm a device would write: a new id, now, source kind sensor."""
        base: dict[str, Any] = {
            "alarm_id": uuid.uuid4(),
            "received_at": datetime.now(UTC),
            "source_kind": SourceKind.SENSOR,
            "source_id": source_id,
            "text": text,
        }
        return RawAlarm.model_validate(base | fields)

    async def send(self, alarm: RawAlarm) -> bool:
        """Write one alarm and wait for Kafka's acknowledgement; False when given up."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.deadline_s
        backoff = Backoff()
        why = "no attempt"
        while loop.time() < deadline:
            try:
                if self._producer is None:
                    self._producer = await self._new_producer()
                await self._producer.send_and_wait(self.topic, encode(alarm), key=key_of(alarm))
            except (KafkaError, OSError) as exc:
                why = f"{type(exc).__name__}: {exc}"
                self.record.retries += 1
                await self._retire_producer()
                await asyncio.sleep(backoff.next())
                continue
            self.record.sent.append(alarm)
            return True
        log.warning("alarm %s from %s not written: %s", alarm.alarm_id, alarm.source_id, why)
        self.record.failed.append((alarm, why))
        return False

    async def _retire_producer(self) -> None:
        # An idempotent producer may be stuck after a broker fault (docs/intake.md): a fresh one
        # sends again. The record keeps its alarm id, so a late first copy is the same alarm.
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(KafkaError, OSError):
                await producer.stop()
