"""A desk, guard handheld or hotline raising alarms over the intake API (docs/intake.md).

A careful client: every alarm carries an idempotency key, and a timeout, a lost connection,
a 5xx or a 429 is retried with the same key and the same body, backing off, until a
deadline. Only a 202 is a receipt; anything else that is final is a refusal.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from pydantic import SecretStr

from simulator.retry import Backoff, retry_after_s

log = logging.getLogger(__name__)

# A request that got no answer this long is sent again (docs: intake's Kafka bound is 10 s).
REQUEST_TIMEOUT_S = 15.0
# How long one alarm is retried before the desk gives up on it.
DEADLINE_S = 120.0


@dataclass(frozen=True)
class Receipt:
    """An alarm the system accepted: from now on it must not be lost."""

    alarm_id: uuid.UUID
    received_at: datetime
    key: str
    replayed: bool = False  # the receipt of an earlier attempt with the same key


@dataclass(frozen=True)
class Refusal:
    """A final answer other than a receipt, or a deadline passed (status 0)."""

    key: str
    status: int
    body: str


@dataclass
class DeskRecord:
    """Every receipt and refusal of one desk, and how many attempts it took."""

    principal_id: str
    receipts: list[Receipt] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    attempts: int = 0
    retries: int = 0


def is_retryable(status: int) -> bool:
    """Tell whether an answer says "try again": a 5xx, or the rate limit (429)."""
    return status >= 500 or status == 429


class DeskClient:
    """Raise alarms as one principal; retry what may be retried with the same key and body."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        principal_id: str,
        token: SecretStr,
        deadline_s: float = DEADLINE_S,
    ) -> None:
        self.http = http
        self.principal_id = principal_id
        self.record = DeskRecord(principal_id)
        self.deadline_s = deadline_s
        self._token = token
        self._serial = itertools.count(1)
        # Keys unique across runs of the same principal, so a rerun is not a replay.
        self._run = uuid.uuid4().hex[:8]

    def new_key(self) -> str:
        """Return a fresh idempotency key: `<principal>:<run>:<serial>`."""
        return f"{self.principal_id}:{self._run}:{next(self._serial)}"

    async def raise_alarm(self, body: dict[str, Any]) -> Receipt | Refusal:
        """Post one alarm (a key is added when the body has none); return its final outcome."""
        body = {"idempotency_key": self.new_key(), **body}
        key = str(body["idempotency_key"])
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.deadline_s
        backoff = Backoff(most_s=10.0)
        why = "no attempt"
        while loop.time() < deadline:
            self.record.attempts += 1
            try:
                answer = await self.http.post(
                    "/v1/alarms", json=body, headers=headers, timeout=REQUEST_TIMEOUT_S
                )
            except httpx.TransportError as exc:  # timeouts, refused and dropped connections
                why = f"{type(exc).__name__}: {exc}"
                wait = backoff.next()
            else:
                if answer.status_code == 202:
                    return self._received(answer, key)
                if not is_retryable(answer.status_code):
                    return self._refused(key, answer.status_code, answer.text)
                why = f"{answer.status_code} {answer.text}"
                wait = retry_after_s(answer.headers) or backoff.next()
            self.record.retries += 1
            await asyncio.sleep(min(wait, max(0.0, deadline - loop.time())))
        return self._refused(key, 0, f"gave up after {self.deadline_s} s; last: {why}")

    def _received(self, answer: httpx.Response, key: str) -> Receipt:
        data = answer.json()
        receipt = Receipt(
            alarm_id=uuid.UUID(data["alarm_id"]),
            received_at=datetime.fromisoformat(data["received_at"]),
            key=key,
            replayed=answer.headers.get("Idempotent-Replayed") == "true",
        )
        self.record.receipts.append(receipt)
        return receipt

    def _refused(self, key: str, status: int, body: str) -> Refusal:
        refusal = Refusal(key, status, body[:2000])
        log.warning("%s: alarm %s refused: %s %s", self.principal_id, key, status, body[:200])
        self.record.refusals.append(refusal)
        return refusal
