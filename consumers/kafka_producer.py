"""An idempotent acks=all Kafka producer that replaces itself once it can no longer send.

aiokafka's idempotent producer has states it never leaves. After a broker restart a batch
may be refused with OutOfOrderSequenceNumber; the producer has already numbered the batches
behind it, so every later batch to that partition is refused the same way, for good (the
Java client resets its producer id then; aiokafka 0.14 does not). A fenced or closed
producer, or one whose sender task died, is no better. `RecoveringProducer` watches every
send's outcome and, on such an error, starts a fresh producer (backing off while the broker
is away) and retires the broken one, so a service sends again within seconds of the broker's
return without a restart by hand. The send that saw the error fails as before: its caller
already answers "unavailable, send it again".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from contextlib import suppress
from functools import partial
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    IllegalStateError,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    InvalidTimestampError,
    InvalidTopicError,
    InvalidTxnState,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    UnknownProducerId,
)

from consumers.kafka_client import kafka_options

log = logging.getLogger(__name__)

# Errors after which this producer (its producer id, its sequence numbers) cannot send again.
FATAL_ERRORS: tuple[type[KafkaError], ...] = (
    OutOfOrderSequenceNumber,
    ProducerFenced,
    InvalidProducerEpoch,
    UnknownProducerId,
    InvalidProducerIdMapping,
    InvalidTxnState,
    IllegalStateError,
    ProducerClosed,
)
# Non-retriable errors that are the record's or the topic's fault, or a full buffer: a new
# producer would meet them too, so they replace nothing.
NOT_THE_PRODUCERS_FAULT: tuple[type[KafkaError], ...] = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
    InvalidTimestampError,
    InvalidTopicError,
    TopicAuthorizationFailedError,
    KafkaTimeoutError,
)

ProducerFactory = Callable[[], AIOKafkaProducer]


def cannot_send_again(exc: BaseException) -> bool:
    """Return whether exc means the producer that raised it will never deliver again."""
    if isinstance(exc, FATAL_ERRORS):
        return True
    if not isinstance(exc, KafkaError) or isinstance(exc, NOT_THE_PRODUCERS_FAULT):
        return False
    # What is left and not retriable is the producer's own state: a dead sender task fails
    # every later send with a plain KafkaError, for instance.
    return not exc.retriable


def idempotent_producer(bootstrap_servers: str, *, request_timeout_ms: int) -> ProducerFactory:
    """Return a factory of producers whose acknowledgement means every in-sync replica has it."""

    def make() -> AIOKafkaProducer:
        # The producer's own retries never write a record twice (enable_idempotence).
        return AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=request_timeout_ms,
            **kafka_options(),
        )

    return make


class RecoveringProducer:
    """Send as AIOKafkaProducer does; replace the producer when it can no longer send."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        request_timeout_ms: int = 40_000,
        factory: ProducerFactory | None = None,
        start_timeout_s: float = 10.0,
        backoff_first_s: float = 0.2,
        backoff_max_s: float = 5.0,
        retire_timeout_s: float = 10.0,
    ) -> None:
        self._factory = factory or idempotent_producer(
            bootstrap_servers, request_timeout_ms=request_timeout_ms
        )
        self._start_timeout_s = start_timeout_s
        self._backoff_first_s = backoff_first_s
        self._backoff_max_s = backoff_max_s
        self._retire_timeout_s = retire_timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._generation = 0
        self._replacing: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._stopped = False
        self.replacements = 0

    @property
    def replacing(self) -> bool:
        """Return whether a broken producer is being replaced right now."""
        return self._replacing is not None

    async def start(self) -> None:
        """Start the first producer; raise what stopped it (as AIOKafkaProducer.start does)."""
        self._producer = await self._started()

    async def stop(self) -> None:
        """Flush and close the producer, and any broken one still being retired."""
        self._stopped = True
        if self._replacing is not None:
            self._replacing.cancel()
            await asyncio.gather(self._replacing, return_exceptions=True)
        if self._producer is not None:
            await self._producer.stop()
        await asyncio.gather(*self._retiring, return_exceptions=True)

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        """Queue a record; return the future of its acknowledgement (AIOKafkaProducer.send)."""
        producer, generation = await self._current()
        try:
            future: asyncio.Future[Any] = await producer.send(
                topic, value, key, partition, timestamp_ms, headers
            )
        except KafkaError as exc:
            self._notice(exc, generation)
            raise
        if future.done():
            self._on_outcome(generation, future)
        else:
            # Registered before the caller awaits it, so it runs before the caller resumes.
            future.add_done_callback(partial(self._on_outcome, generation))
        return future

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> Any:
        """Send a record and wait for its acknowledgement; return its RecordMetadata."""
        future = await self.send(topic, value, key, partition, timestamp_ms, headers)
        return await future

    async def unready_reason(self, timeout_s: float) -> str | None:
        """Return why Kafka cannot take a record now, or None when a metadata request answers."""
        if self._replacing is not None or self._producer is None:
            return "reconnecting: the previous producer could no longer send"
        try:
            async with asyncio.timeout(timeout_s):
                await self._producer.client.fetch_all_metadata()
        except TimeoutError:
            return f"no answer to a metadata request within {timeout_s:g} s"
        except KafkaError as exc:
            return f"metadata request failed: {exc}"
        return None

    async def _current(self) -> tuple[AIOKafkaProducer, int]:
        while self._replacing is not None or self._producer is None:
            if self._stopped:
                raise ProducerClosed()
            if self._replacing is None:
                # A replacement that ended without a producer (a bug, not the broker): again.
                self._replacing = asyncio.create_task(self._replace())
            # Shielded: a caller that gives up must not cancel the replacement for the others.
            await asyncio.shield(self._replacing)
        return self._producer, self._generation

    def _on_outcome(self, generation: int, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and (exc := future.exception()) is not None:
            self._notice(exc, generation)

    def _notice(self, exc: BaseException, generation: int) -> None:
        # Only the first error of a generation replaces it; the batches it still holds fail
        # the same way and must not start another round.
        stale = generation != self._generation or self._replacing is not None
        if self._stopped or stale or not cannot_send_again(exc):
            return
        log.warning("Kafka producer can no longer send (%r); starting a new one", exc)
        self._replacing = asyncio.create_task(self._replace(), name="replace-kafka-producer")

    async def _replace(self) -> None:
        broken, self._producer = self._producer, None
        if broken is not None:
            retiring = asyncio.create_task(self._retire(broken))
            self._retiring.add(retiring)
            retiring.add_done_callback(self._retiring.discard)
        try:
            delay = self._backoff_first_s
            while self._producer is None:
                try:
                    self._producer = await self._started()
                except (KafkaError, OSError, TimeoutError) as exc:
                    log.warning(
                        "new Kafka producer failed to start (%r); retry in %.1f s", exc, delay
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._backoff_max_s)
            self._generation += 1
            self.replacements += 1
            log.info("new Kafka producer started (replacement %d)", self.replacements)
        finally:
            self._replacing = None

    async def _started(self) -> AIOKafkaProducer:
        producer = self._factory()
        try:
            # start() waits for a producer id for as long as no broker answers: bound it.
            async with asyncio.timeout(self._start_timeout_s):
                await producer.start()
        except BaseException:
            with suppress(KafkaError, OSError):
                await producer.stop()
            raise
        return producer

    async def _retire(self, producer: AIOKafkaProducer) -> None:
        # Its queued batches fail with the same error once the broker answers; a broker that
        # does not answer would hold stop() (flushing) forever, hence the bound.
        try:
            async with asyncio.timeout(self._retire_timeout_s):
                await producer.stop()
        except TimeoutError:
            log.warning(
                "a broken Kafka producer did not close within %.0f s", self._retire_timeout_s
            )
        except KafkaError as exc:
            log.warning("a broken Kafka producer closed with %r", exc)
