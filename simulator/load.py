"""Raise alarms at a steady rate, split between desks (HTTP) and devices (Kafka), or in a storm."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from simulator.alarms import AlarmMaker
from simulator.desk_client import DeskClient
from simulator.sensor_client import SensorClient

# Of the alarms that come over HTTP, the share the hotline raises (the rest: the desks).
HOTLINE_SHARE = 0.3
STORM_TEXT = "A类探头报警:人员聚集冲突"


@dataclass(frozen=True)
class Storm:
    """N alarms from one device in T seconds."""

    count: int
    seconds: float
    device_id: str = "cam-station-a1"


class Load:
    """Raise alarms through the public doors and remember which got a receipt."""

    def __init__(
        self,
        maker: AlarmMaker,
        *,
        desks: Mapping[str, DeskClient],
        hotline: DeskClient,
        sensors: SensorClient,
        sensor_share: float = 0.3,
    ) -> None:
        if not 0 <= sensor_share <= 1:
            raise ValueError(f"the sensor share must be within 0..1, not {sensor_share}")
        if not desks:
            raise ValueError("a load needs at least one desk")
        self.maker = maker
        self.desks = dict(desks)
        self.hotline = hotline
        self.sensors = sensors
        self.sensor_share = sensor_share
        self.sent = 0

    @property
    def receipted(self) -> list[uuid.UUID]:
        """Return the ids of every alarm that got a receipt (a 202, or Kafka's ack)."""
        clients = [*self.desks.values(), self.hotline]
        ids = [r.alarm_id for client in clients for r in client.record.receipts]
        return ids + [alarm.alarm_id for alarm in self.sensors.record.sent]

    def doors_summary(self) -> str:
        """Return one line on what the doors answered: attempts, retries, refusals."""
        desks = [*self.desks.values(), self.hotline]
        attempts = sum(d.record.attempts for d in desks)
        retries = sum(d.record.retries for d in desks)
        refusals = [r for d in desks for r in d.record.refusals]
        statuses = sorted({str(r.status) for r in refusals})
        refused = f"{len(refusals)} refused" + (f" ({', '.join(statuses)})" if statuses else "")
        written = self.sensors.record
        return (
            f"doors      intake: {attempts} requests, {retries} retried, {refused}; alarms.raw: "
            f"{len(written.sent)} written, {written.retries} retried, {len(written.failed)} "
            "given up"
        )

    async def one(self) -> None:
        """Raise one alarm through a door chosen by the seed."""
        self.sent += 1
        rng = self.maker.rng
        if rng.random() < self.sensor_share:
            made = self.maker.sensor_alarm()
            await self.sensors.send(self.sensors.alarm(source_id=made.source_id, text=made.text))
        elif rng.random() < HOTLINE_SHARE:
            await self.hotline.raise_alarm(self.maker.hotline_alarm())
        else:
            enterprise_id, body = self.maker.desk_alarm(sorted(self.desks))
            await self.desks[enterprise_id].raise_alarm(body)

    async def steady(self, rate: float, duration_s: float) -> None:
        """Raise rate alarms a second for duration_s seconds; wait for every outcome."""
        if rate <= 0 or duration_s < 0:
            raise ValueError("the rate must be positive and the duration not negative")
        await self._paced(int(rate * duration_s), 1.0 / rate, self.one)

    async def storm(self, storm: Storm) -> None:
        """Raise a storm from one device, evenly over its seconds; wait for every outcome."""

        async def one() -> None:
            self.sent += 1
            await self.sensors.send(self.sensors.alarm(source_id=storm.device_id, text=STORM_TEXT))

        await self._paced(storm.count, storm.seconds / max(1, storm.count), one)

    @staticmethod
    async def _paced(
        count: int, every_s: float, raise_one: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        # Each alarm its own task on a fixed schedule: a slow answer (a retry, a 503) does not
        # slow the rate, as a desk's operator does not wait for another desk.
        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks: list[asyncio.Task[None]] = []
        for n in range(count):
            await asyncio.sleep(max(0.0, start + n * every_s - loop.time()))
            tasks.append(asyncio.create_task(raise_one()))
        await asyncio.gather(*tasks)
