"""The load in processes of its own: each runs an `Offer` on its share of the rate.

On two cores the client that posts the alarms competes with the system for the CPU; in the
driver's process, beside the CPU sampler and the topic reader, it fell behind its schedule
before the intake did. Each load process posts `rate / N` alarms a second with its own seed
and desk clients, and answers the driver with the receipts (alarm id, `received_at`, how long
the desk waited) of the alarms it posted.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from bench.child import Child
from bench.e2e.offer import Offer
from dispatch.zone import load_zone
from simulator.desk_client import Receipt
from simulator.principals import DemoPrincipals


@dataclass(frozen=True)
class LoadSpec:
    """What a load process needs: the doors, the zone, the desks' tokens, its seed."""

    intake_url: str
    bootstrap: str
    zone_file: str
    tokens_file: str  # JSON: {"desks": {enterprise: [principal, secret]}, "hotline": [...]}
    seed: int
    nice: int = 0  # added to the process's niceness: negative, it posts before the system


def write_desk_tokens(principals: DemoPrincipals, path: Path) -> None:
    """Write the desks' and the hotline's principal ids and tokens for the load processes."""
    tokens = {
        "desks": {e: [p.id, p.token.get_secret_value()] for e, p in principals.desks.items()},
        "hotline": [principals.hotline.id, principals.hotline.token.get_secret_value()],
    }
    path.write_text(json.dumps(tokens))
    path.chmod(0o600)


async def run_loader(spec: LoadSpec) -> None:
    """Answer `offer RATE SECONDS MAX_IN_FLIGHT SINCE` lines until the input ends."""
    os.nice(spec.nice)  # root may lower it; the driver's own processes then wait for the posts
    zone = load_zone(spec.zone_file)
    tokens = json.loads(await asyncio.to_thread(Path(spec.tokens_file).read_text))
    desks = {e: (pid, SecretStr(secret)) for e, (pid, secret) in tokens["desks"].items()}
    hotline = (tokens["hotline"][0], SecretStr(tokens["hotline"][1]))
    loop = asyncio.get_running_loop()
    async with Offer(
        zone,
        desks=desks,
        hotline=hotline,
        intake_url=spec.intake_url,
        bootstrap=spec.bootstrap,
        seed=spec.seed,
    ) as offer:
        print("ready", flush=True)
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            _, rate, seconds, most, since = line.split()
            skipped = await offer.paced(float(rate), float(seconds), int(most))
            receipts = offer.receipts_since(datetime.fromtimestamp(float(since), UTC))
            waited = {a: s for client in offer.clients for a, s in client.waited.items()}
            answer = {
                "skipped": skipped,
                "receipts": [
                    (str(r.alarm_id), r.received_at.timestamp(), waited.get(str(r.alarm_id)))
                    for r in receipts
                ],
                "refusals": offer.refusals(),
                "retries": offer.retries(),
            }
            print(json.dumps(answer), flush=True)


class LoadProcesses:
    """The driver's side: the same questions as an `Offer`, answered by N load processes."""

    def __init__(self, children: Sequence[Child]) -> None:
        self.children = list(children)
        self._receipts: dict[str, Receipt] = {}
        self._waited: dict[str, float] = {}
        self._refusals = [0] * len(children)
        self._retries = [0] * len(children)

    @classmethod
    async def start(cls, spec: LoadSpec, count: int) -> LoadProcesses:
        """Start count load processes, each with its own seed; wait until all are ready."""
        children = []
        for n in range(count):
            seeded = LoadSpec(**(asdict(spec) | {"seed": spec.seed * 100 + n}))
            child = await Child.start("bench.e2e", "--loader", json.dumps(asdict(seeded)))
            children.append(child)
        for child in children:
            if (said := await child.line()) != "ready":
                raise RuntimeError(f"a load process said {said!r}")
        return cls(children)

    async def paced(self, rate: float, duration_s: float, max_in_flight: int) -> int:
        """Offer the rate, shared among the processes; return how many alarms were skipped."""
        share = len(self.children)
        since = datetime.now(UTC).timestamp() - 0.005
        for child in self.children:
            child.say(f"offer {rate / share} {duration_s} {max(1, max_in_flight // share)} {since}")
        skipped = 0
        for n, child in enumerate(self.children):
            answer = json.loads(await child.line())
            skipped += answer["skipped"]
            self._refusals[n], self._retries[n] = answer["refusals"], answer["retries"]
            for alarm_id, received_at, waited in answer["receipts"]:
                at = datetime.fromtimestamp(received_at, UTC)
                self._receipts[alarm_id] = Receipt(
                    alarm_id=uuid.UUID(alarm_id), received_at=at, key=""
                )
                if waited is not None:
                    self._waited[alarm_id] = waited
        return skipped

    def receipts_since(self, since: datetime) -> list[Receipt]:
        """Return the receipts of alarms received since then."""
        return [r for r in self._receipts.values() if r.received_at >= since]

    def waited(self, alarm_ids: Iterable[str]) -> list[float]:
        """Return how long the desks waited for these alarms' receipts, in milliseconds."""
        return [self._waited[a] * 1000 for a in alarm_ids if a in self._waited]

    def refusals(self) -> int:
        """Return how many alarms were refused (or given up) so far."""
        return sum(self._refusals)

    def retries(self) -> int:
        """Return how many requests were retried so far."""
        return sum(self._retries)

    @property
    def pids(self) -> list[int]:
        """Return the load processes' pids."""
        return [child.process.pid for child in self.children]

    async def stop(self) -> None:
        """Stop every load process."""
        await asyncio.gather(*(child.stop() for child in self.children))
