"""The token bucket per key, on a fake clock, and the body-size cap as plain ASGI."""

from __future__ import annotations

import json

import pytest
from starlette.types import Message, Receive, Scope, Send

from consumers.intake.limits import BodyLimit, RateLimiter


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_a_new_key_may_burst_the_whole_minute_then_waits(clock: FakeClock) -> None:
    limiter = RateLimiter(60, clock=clock)
    assert [limiter.acquire("desk-1") for _ in range(60)] == [0.0] * 60
    assert limiter.acquire("desk-1") == pytest.approx(1.0)


def test_tokens_come_back_at_the_rate(clock: FakeClock) -> None:
    limiter = RateLimiter(6, clock=clock)  # one token every 10 s
    for _ in range(6):
        limiter.acquire("k")
    clock.advance(4.0)
    assert limiter.acquire("k") == pytest.approx(6.0)
    clock.advance(6.0)
    assert limiter.acquire("k") == 0.0
    assert limiter.acquire("k") == pytest.approx(10.0)


def test_a_refused_request_takes_nothing(clock: FakeClock) -> None:
    limiter = RateLimiter(1, clock=clock)
    assert limiter.acquire("k") == 0.0
    for _ in range(5):
        assert limiter.acquire("k") == pytest.approx(60.0)
    clock.advance(60.0)
    assert limiter.acquire("k") == 0.0


def test_the_bucket_never_holds_more_than_a_minute(clock: FakeClock) -> None:
    limiter = RateLimiter(3, clock=clock)
    clock.advance(3600.0)
    assert [limiter.acquire("k") for _ in range(3)] == [0.0] * 3
    assert limiter.acquire("k") > 0


def test_keys_have_their_own_buckets(clock: FakeClock) -> None:
    limiter = RateLimiter(1, clock=clock)
    assert limiter.acquire("desk-1") == 0.0
    assert limiter.acquire("desk-1") > 0
    assert limiter.acquire("desk-2") == 0.0


def test_a_clock_stepping_back_earns_nothing(clock: FakeClock) -> None:
    limiter = RateLimiter(1, clock=clock)
    limiter.acquire("k")
    clock.advance(-30.0)
    assert limiter.acquire("k") == pytest.approx(60.0)


def test_full_buckets_are_pruned_so_memory_stays_bounded(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RateLimiter, "PRUNE_ABOVE", 3)
    limiter = RateLimiter(2, clock=clock)
    for key in ("a", "b", "c"):
        limiter.acquire(key)
    clock.advance(10.0)
    limiter.acquire("c")  # c is down to a third of a token
    clock.advance(25.0)  # a and b are full again (one token per 30 s); c holds 1.17
    limiter.acquire("d")  # the fourth key: the full buckets of a and b go
    assert len(limiter) == 2
    # c kept its state: one whole token, not a fresh bucket's two.
    assert limiter.acquire("c") == 0.0
    assert limiter.acquire("c") > 0


def test_the_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RateLimiter(0)


# -- BodyLimit ------------------------------------------------------------------------------


class Recorder:
    """An ASGI app that records the body it read and answers 200."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def call(
    app: BodyLimit, chunks: list[bytes], headers: list[tuple[bytes, bytes]]
) -> tuple[list[Message], int]:
    """Send chunks through app; return what it sent and how many chunks it read."""
    scope: Scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    sent: list[Message] = []
    read = 0

    async def receive() -> Message:
        nonlocal read
        read += 1
        if read > len(chunks):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent, read


async def test_a_declared_oversize_body_is_refused_unread() -> None:
    inner = Recorder()
    app = BodyLimit(inner, max_bytes=10)
    sent, read = await call(app, [b"x" * 11], [(b"content-length", b"11")])
    assert sent[0]["status"] == 413
    assert read == 0
    assert inner.bodies == []
    body = json.loads(sent[1]["body"])
    assert body["fields"] == [{"field": "$", "message": "at most 10 bytes"}]


async def test_a_chunked_body_is_refused_once_it_passes_the_limit() -> None:
    inner = Recorder()
    app = BodyLimit(inner, max_bytes=10)
    sent, read = await call(app, [b"12345", b"67890", b"1", b"never read"], [])
    assert sent[0]["status"] == 413
    assert read == 3
    assert inner.bodies == []


async def test_a_body_at_the_limit_reaches_the_app_whole() -> None:
    inner = Recorder()
    app = BodyLimit(inner, max_bytes=10)
    sent, _ = await call(app, [b"12345", b"67890"], [(b"content-length", b"10")])
    assert sent[0]["status"] == 200
    assert inner.bodies == [b"1234567890"]


async def test_other_scopes_pass_through() -> None:
    seen: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def nothing() -> Message:
        return {"type": "lifespan.startup"}

    async def ignore(message: Message) -> None:
        return None

    await BodyLimit(inner, max_bytes=10)({"type": "lifespan"}, nothing, ignore)
    assert seen == ["lifespan"]
