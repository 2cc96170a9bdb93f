"""Offering alarms through the intake API, and keeping the zone's units free to take them.

Alarms are the simulator's (`simulator.alarms.AlarmMaker`): what a desk says of its own
enterprise (theft, fights, disputes, fire, intrusion, injuries), posted by that enterprise's
desk principal with its place and a position near it, and street calls to the hotline at the
zone's roads, squares, parks, schools, homes and car parks. `simulator.load.Load` posts them
at a steady rate, each alarm its own request on a fixed schedule (a slow answer does not slow
the rate), with the simulator's careful desk client (an idempotency key per alarm, retries
with the same key). No device alarms: they do not pass the intake.

Units are made free again by the phones (`bench/e2e/phones.py`): each accepts its job at
once and then reports itself available.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx
from pydantic import SecretStr

from dispatch.zone import Zone
from simulator.alarms import AlarmMaker
from simulator.desk_client import DeskClient, Receipt, Refusal
from simulator.load import Load
from simulator.sensor_client import SensorClient

HTTP_CONNECTIONS = 400
LATE_S = 0.5  # an alarm this far behind its moment is skipped, not posted late


class TimedDesk(DeskClient):
    """A desk client that also notes, per alarm received, when it was posted and answered."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waited: dict[str, float] = {}  # alarm id -> seconds from the post to the 202

    async def raise_alarm(self, body: dict[str, Any]) -> Receipt | Refusal:
        """Post one alarm as DeskClient does; note how long the desk waited for its receipt."""
        posted = time.time()
        outcome = await super().raise_alarm(body)
        if isinstance(outcome, Receipt):
            self.waited[str(outcome.alarm_id)] = time.time() - posted
        return outcome


class Offer:
    """The desks and the hotline of the zone, posting alarms over one HTTP client."""

    def __init__(
        self,
        zone: Zone,
        *,
        desks: Mapping[str, tuple[str, SecretStr]],
        hotline: tuple[str, SecretStr],
        intake_url: str,
        bootstrap: str,
        seed: int,
    ) -> None:
        limits = httpx.Limits(
            max_connections=HTTP_CONNECTIONS, max_keepalive_connections=HTTP_CONNECTIONS
        )
        self.http = httpx.AsyncClient(base_url=intake_url, limits=limits)
        self.sensors = SensorClient(bootstrap)

        def desk(principal_id: str, token: SecretStr) -> TimedDesk:
            return TimedDesk(self.http, principal_id=principal_id, token=token)

        self.desks = {e: desk(*principal) for e, principal in desks.items()}
        self.hotline = desk(*hotline)
        self.load = Load(
            AlarmMaker(zone, seed),
            desks=self.desks,
            hotline=self.hotline,
            sensors=self.sensors,
            sensor_share=0.0,
        )

    @property
    def clients(self) -> Sequence[TimedDesk]:
        """Return every desk client, the hotline's included."""
        return [*self.desks.values(), self.hotline]

    def receipts_since(self, since: datetime) -> list[Receipt]:
        """Return the receipts of alarms received since then, one per alarm (a retry that
        timed out on the desk's side gets the first attempt's receipt again, replayed)."""
        found = {
            r.alarm_id: r
            for client in self.clients
            for r in client.record.receipts
            if r.received_at >= since
        }
        return list(found.values())

    async def paced(self, rate: float, duration_s: float, max_in_flight: int) -> int:
        """Post rate alarms a second for duration_s on a fixed schedule, each its own request
        (as `Load.steady` does); return how many were skipped. An alarm is skipped when its
        moment comes while max_in_flight requests are still unanswered, or when the poster
        is more than LATE_S behind its schedule (on two shared cores the posting process
        itself falls behind), so a saturated rate is not a backlog that takes hours to drain.
        Waits for every answer."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        in_flight: set[asyncio.Task[None]] = set()
        skipped = 0
        for n in range(round(rate * duration_s)):
            due = start + n / rate
            await asyncio.sleep(max(0.0, due - loop.time()))
            if len(in_flight) >= max_in_flight or loop.time() - due > LATE_S:
                skipped += 1
                continue
            task = asyncio.create_task(self.load.one())
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)
        return skipped

    def waited(self, alarm_ids: Iterable[str]) -> list[float]:
        """Return how long the desks waited for these alarms' receipts, in milliseconds."""
        waited = {a: s for client in self.clients for a, s in client.waited.items()}
        return [waited[a] * 1000 for a in alarm_ids if a in waited]

    def refusals(self) -> int:
        """Return how many alarms were refused (or given up) so far."""
        return sum(len(client.record.refusals) for client in self.clients)

    def retries(self) -> int:
        """Return how many requests were retried so far."""
        return sum(client.record.retries for client in self.clients)

    async def __aenter__(self) -> Offer:
        await self.sensors.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.sensors.__aexit__(None, None, None)
        await self.http.aclose()
