"""Request limits of the intake API: a token bucket per principal, and a cap on body size."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

Clock = Callable[[], float]
"""Seconds on a monotonic clock; tests pass a fake one."""


@dataclass(slots=True)
class TokenBucket:
    """Hold up to `capacity` tokens, refilled at `rate_per_s`; each request takes one."""

    capacity: float
    rate_per_s: float
    tokens: float
    updated_at: float

    def refill(self, now: float) -> None:
        """Add the tokens earned since the last update, up to capacity."""
        # max(): a clock that steps back (it should not, being monotonic) earns nothing.
        elapsed = max(0.0, now - self.updated_at)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate_per_s)
        self.updated_at = now

    def wait_s(self) -> float:
        """Return how long until one whole token is in the bucket (0 when one is there now)."""
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate_per_s


class RateLimiter:
    """Token buckets by key (a principal id, a client address), held in this process's memory.

    A bucket starts full: a key may burst `per_minute` requests at once, then gets one more
    every 60/per_minute seconds. Several intake processes each keep their own buckets, so the
    effective limit is per process; good enough to stop a runaway client, not a quota.
    """

    # A full bucket is the same as no bucket, so full ones are dropped once there are this
    # many keys: memory stays bounded by the keys active in the last minute or so.
    PRUNE_ABOVE = 10_000

    def __init__(self, per_minute: int, *, clock: Clock = time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.capacity = float(per_minute)
        self.rate_per_s = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def _bucket(self, key: str) -> TokenBucket:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.PRUNE_ABOVE:
                self._prune(now)
            bucket = TokenBucket(self.capacity, self.rate_per_s, self.capacity, now)
            self._buckets[key] = bucket
        else:
            bucket.refill(now)
        return bucket

    def _prune(self, now: float) -> None:
        for key, bucket in list(self._buckets.items()):
            bucket.refill(now)
            if bucket.tokens >= bucket.capacity:
                del self._buckets[key]

    def acquire(self, key: str) -> float:
        """Take a token for key; return 0 on success, else the seconds until one is free."""
        bucket = self._bucket(key)
        wait = bucket.wait_s()
        if wait == 0.0:
            bucket.tokens -= 1.0
        return wait

    def __len__(self) -> int:
        return len(self._buckets)


class BodyLimit:
    """ASGI middleware: refuse an HTTP request whose body is over max_bytes with 413.

    A declared Content-Length over the limit is refused before a byte of the body is read; a
    chunked body is read up to the limit and refused as soon as it passes it. Otherwise the
    body (at most max_bytes, so buffering it is cheap) is handed on to the app unchanged.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            # After the body, the app may wait for the client to go away: pass that through.
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        payload = json.dumps(
            {
                "error": f"request body is larger than {self.max_bytes} bytes",
                "fields": [{"field": "$", "message": f"at most {self.max_bytes} bytes"}],
            },
            separators=(",", ":"),
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    # The rest of an oversize body is never read, so the connection cannot
                    # carry another request.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
