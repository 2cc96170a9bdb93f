"""Offering alarms through the intake API, and keeping the zone's units free to take them.

Alarms are the simulator's (`simulator.alarms.AlarmMaker`): what a desk says of its own
enterprise (theft, fights, disputes, fire, intrusion, injuries), posted by that enterprise's
desk principal with its place and a position near it, and street calls to the hotline at the
zone's roads, squares, parks, schools, homes and car parks. `simulator.load.Load` posts them
at a steady rate, each alarm its own request on a fixed schedule (a slow answer does not slow
the rate), with the simulator's careful desk client (an idempotency key per alarm, retries
with the same key). No device alarms: they do not pass the intake.

The demo zone has 53 units, and the route stage sends only units that are available; a unit
it sends is `assigned` until a newer report says otherwise. At hundreds of alarms a second no
crew could answer each job through the protocol fast enough (accept, on the way, on scene,
resolved, available: five answers, each a PostgreSQL transaction and a Kafka write in the
gateway), so, as `bench/pipeline` does, the bench reports every unit `available` again at its
home on `units.status` at short intervals (`UnitFreer`), about two reports per alarm offered,
which is what a unit reporting itself free after each job would write. The phones accept each
job at once (`bench/e2e/phones.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import datetime

import httpx
from aiokafka import AIOKafkaProducer

from bench.pipeline.workload import unit_reports
from dispatch.events import UNITS_STATUS
from dispatch.zone import Zone
from simulator.alarms import AlarmMaker
from simulator.desk_client import DeskClient, Receipt
from simulator.load import Load
from simulator.principals import DemoPrincipals
from simulator.sensor_client import SensorClient

FREE_EVERY_MIN_S = 0.02
FREE_EVERY_MAX_S = 1.0
REPORTS_PER_ALARM = 2.0
HTTP_CONNECTIONS = 400


def free_every_s(units: int, rate: float) -> float:
    """Return how often every unit is reported free at an offered rate."""
    return min(FREE_EVERY_MAX_S, max(FREE_EVERY_MIN_S, units / (REPORTS_PER_ALARM * rate)))


class UnitFreer:
    """Report every unit of the zone available at its home, every `every_s` seconds."""

    def __init__(self, zone: Zone, bootstrap: str) -> None:
        self.zone = zone
        self.every_s = FREE_EVERY_MAX_S
        self.sent = 0
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
        )

    async def run(self) -> None:
        """Report until cancelled."""
        await self._producer.start()
        try:
            while True:
                sends = [
                    await self._producer.send(UNITS_STATUS.name, value, key=key)
                    for key, value in unit_reports(self.zone)
                ]
                await asyncio.gather(*sends)
                self.sent += len(sends)
                await asyncio.sleep(self.every_s)
        finally:
            with contextlib.suppress(Exception):
                await self._producer.stop()


class Offer:
    """The desks and the hotline of the zone, posting alarms over one HTTP client."""

    def __init__(
        self, zone: Zone, principals: DemoPrincipals, intake_url: str, bootstrap: str, seed: int
    ) -> None:
        limits = httpx.Limits(
            max_connections=HTTP_CONNECTIONS, max_keepalive_connections=HTTP_CONNECTIONS
        )
        self.http = httpx.AsyncClient(base_url=intake_url, limits=limits)
        self.sensors = SensorClient(bootstrap)

        def desk(principal_id: str, token: object) -> DeskClient:
            return DeskClient(self.http, principal_id=principal_id, token=token)  # type: ignore[arg-type]  # a SecretStr

        self.desks = {e: desk(p.id, p.token) for e, p in principals.desks.items()}
        self.hotline = desk(principals.hotline.id, principals.hotline.token)
        self.load = Load(
            AlarmMaker(zone, seed),
            desks=self.desks,
            hotline=self.hotline,
            sensors=self.sensors,
            sensor_share=0.0,
        )

    @property
    def clients(self) -> Sequence[DeskClient]:
        """Return every desk client, the hotline's included."""
        return [*self.desks.values(), self.hotline]

    def receipts_since(self, since: datetime) -> list[Receipt]:
        """Return the receipts of alarms received since then (first attempts, no replays)."""
        return [
            r
            for client in self.clients
            for r in client.record.receipts
            if r.received_at >= since and not r.replayed
        ]

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
