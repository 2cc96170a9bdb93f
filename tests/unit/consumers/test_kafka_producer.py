"""RecoveringProducer on fake producers: which errors replace the producer, and how."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    RequestTimedOutError,
    UnknownProducerId,
)

from consumers.kafka_producer import RecoveringProducer, cannot_send_again


class FakeProducer:
    """Stand in for AIOKafkaProducer: acknowledge every send, or fail as told."""

    def __init__(self, *, start_error: BaseException | None = None) -> None:
        self.start_error = start_error
        self.delivery_error: BaseException | None = None
        self.send_error: BaseException | None = None
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []
        # When true, acknowledgements wait for fail_pending (as batches wait for the broker).
        self.hold = False
        self.pending: list[asyncio.Future[Any]] = []
        self.started = False
        self.stopped = False

    async def start(self) -> None:
        if self.start_error is not None:
            raise self.start_error
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        partition: int | None,
        timestamp_ms: int | None,
        headers: Sequence[tuple[str, bytes]] | None,
    ) -> asyncio.Future[Any]:
        if self.send_error is not None:
            raise self.send_error
        self.sent.append((topic, value, key))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.hold:
            self.pending.append(future)
        elif self.delivery_error is not None:
            future.set_exception(self.delivery_error)
        else:
            future.set_result(len(self.sent))
        return future

    def fail_pending(self, error: BaseException) -> None:
        """Fail every held acknowledgement with error, as a broker refusing the batches."""
        for future in self.pending:
            future.set_exception(error)


class Factory:
    """Make FakeProducers in turn; each made one is kept for the test to look at."""

    def __init__(self, *start_errors: BaseException | None) -> None:
        self.start_errors = list(start_errors)
        self.made: list[FakeProducer] = []

    def __call__(self) -> FakeProducer:
        error = self.start_errors.pop(0) if self.start_errors else None
        self.made.append(FakeProducer(start_error=error))
        return self.made[-1]


async def started(factory: Factory) -> RecoveringProducer:
    """Return a RecoveringProducer on factory, started, with no backoff."""
    producer = RecoveringProducer("unused:9092", factory=factory, backoff_first_s=0.0)
    await producer.start()
    return producer


@pytest.mark.parametrize(
    "error",
    [
        OutOfOrderSequenceNumber(),
        ProducerFenced(),
        UnknownProducerId(),
        ProducerClosed(),
        KafkaError("Unexpected error during batch delivery"),
    ],
)
async def test_a_fatal_error_fails_its_send_and_the_next_send_goes_to_a_new_producer(
    error: KafkaError,
) -> None:
    factory = Factory()
    producer = await started(factory)
    factory.made[0].delivery_error = error
    with pytest.raises(type(error)):
        await producer.send_and_wait("alarms.raw", b"one", b"k")
    assert await producer.send_and_wait("alarms.raw", b"two", b"k") == 1
    first, second = factory.made
    assert (first.stopped, second.started, second.sent) == (
        True,
        True,
        [("alarms.raw", b"two", b"k")],
    )
    assert producer.replacements == 1
    await producer.stop()
    assert second.stopped


async def test_an_error_raised_by_send_itself_replaces_the_producer() -> None:
    factory = Factory()
    producer = await started(factory)
    factory.made[0].send_error = ProducerClosed()
    with pytest.raises(ProducerClosed):
        await producer.send("t", b"one")
    await producer.send_and_wait("t", b"two")
    assert [len(made.sent) for made in factory.made] == [0, 1]
    await producer.stop()


@pytest.mark.parametrize(
    "error",
    [
        KafkaConnectionError(),
        RequestTimedOutError(),
        NotLeaderForPartitionError(),
        KafkaTimeoutError(),
        MessageSizeTooLargeError(),
    ],
)
async def test_a_passing_or_a_records_own_error_keeps_the_producer(error: KafkaError) -> None:
    factory = Factory()
    producer = await started(factory)
    factory.made[0].delivery_error = error
    with pytest.raises(type(error)):
        await producer.send_and_wait("t", b"one")
    factory.made[0].delivery_error = None
    await producer.send_and_wait("t", b"two")
    assert len(factory.made) == 1
    assert producer.replacements == 0
    await producer.stop()


async def test_many_failures_of_one_producer_replace_it_once() -> None:
    factory = Factory()
    producer = await started(factory)
    factory.made[0].hold = True
    queued = [await producer.send("t", b"x", str(i).encode()) for i in range(10)]
    factory.made[0].fail_pending(OutOfOrderSequenceNumber())
    outcomes = await asyncio.gather(*queued, return_exceptions=True)
    assert all(isinstance(o, OutOfOrderSequenceNumber) for o in outcomes)
    await producer.send_and_wait("t", b"after")
    assert len(factory.made) == 2
    assert producer.replacements == 1
    await producer.stop()


async def test_a_replacement_that_cannot_start_is_tried_again_until_it_starts() -> None:
    # The first producer starts; the broker is then away for two attempts at a new one.
    factory = Factory(None, KafkaConnectionError(), KafkaConnectionError())
    producer = await started(factory)
    factory.made[0].delivery_error = ProducerFenced()
    with pytest.raises(ProducerFenced):
        await producer.send_and_wait("t", b"one")
    await producer.send_and_wait("t", b"two")
    assert [made.started for made in factory.made] == [True, False, False, True]
    assert all(made.stopped for made in factory.made[:3])
    await producer.stop()


async def test_a_stopped_producer_refuses_to_send() -> None:
    factory = Factory()
    producer = await started(factory)
    await producer.stop()
    factory.made[0].send_error = ProducerClosed()
    with pytest.raises(ProducerClosed):
        await producer.send("t", b"late")
    assert len(factory.made) == 1


@pytest.mark.parametrize(
    ("error", "fatal"),
    [
        (OutOfOrderSequenceNumber(), True),
        (ProducerFenced(), True),
        (KafkaError("sender died"), True),
        (KafkaConnectionError(), False),
        (MessageSizeTooLargeError(), False),
        (KafkaTimeoutError(), False),
        (TimeoutError(), False),
        (ValueError(), False),
    ],
)
def test_which_errors_mean_the_producer_cannot_send_again(
    error: BaseException, fatal: bool
) -> None:
    assert cannot_send_again(error) is fatal
