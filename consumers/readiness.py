"""Liveness and readiness of a service that writes to Kafka and PostgreSQL (`/healthz`, `/readyz`).

`/healthz` says only that the process answers. `/readyz` asks both dependencies something
cheap within a short bound: Kafka a metadata request on the service's own producer, and
PostgreSQL `SELECT 1` on a pooled connection. Neither answer reveals anything about the data,
so both are served without a token (docs/intake.md, docs/protocol.md).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import asyncpg

from consumers.kafka_producer import RecoveringProducer

# Short enough for a load balancer's probe, long enough for a busy server on two cores.
READY_TIMEOUT_S = 2.0
OK = "ok"
# Errors of a PostgreSQL that cannot answer now (down, starting, shutting down, overloaded).
POSTGRES_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


@dataclass(frozen=True, slots=True)
class Readiness:
    """What each dependency answered: "ok", or what is wrong with it."""

    kafka: str
    postgres: str

    @property
    def ready(self) -> bool:
        """Return whether every dependency answered."""
        return self.kafka == OK and self.postgres == OK

    @property
    def status_code(self) -> int:
        """Return the HTTP status of this answer: 200 ready, else 503."""
        return 200 if self.ready else 503

    def body(self) -> dict[str, Any]:
        """Return the JSON body: the status, each check, and the names of those not ready."""
        checks = {"kafka": self.kafka, "postgres": self.postgres}
        return {
            "status": "ready" if self.ready else "not ready",
            "checks": checks,
            "not_ready": [name for name, answer in checks.items() if answer != OK],
        }


def alive() -> dict[str, str]:
    """Return the liveness body: the process answers, nothing more is claimed."""
    return {"status": "ok"}


async def postgres_answers(pool: asyncpg.Pool, timeout_s: float) -> str:
    """Return "ok" if a pooled connection answers SELECT 1 within timeout_s, else why not."""
    try:
        async with asyncio.timeout(timeout_s), pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
    except TimeoutError:
        return f"no answer to SELECT 1 within {timeout_s:g} s"
    except POSTGRES_UNAVAILABLE as exc:
        return f"SELECT 1 failed: {type(exc).__name__}"
    return OK


async def check_ready(
    *, producer: RecoveringProducer, pool: asyncpg.Pool, timeout_s: float = READY_TIMEOUT_S
) -> Readiness:
    """Ask Kafka and PostgreSQL at once; return what each answered."""
    kafka, postgres = await asyncio.gather(
        producer.unready_reason(timeout_s), postgres_answers(pool, timeout_s)
    )
    return Readiness(kafka=kafka or OK, postgres=postgres)
