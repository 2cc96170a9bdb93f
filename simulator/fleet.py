"""A fleet of unit phones: one `UnitClient` per unit, started and stopped together."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from types import TracebackType
from typing import Self

from dispatch.zone import Zone
from simulator.behaviour import Behaviour
from simulator.principals import DemoPrincipal
from simulator.records import Changes, UnitRecord
from simulator.tasks import cancel_and_wait
from simulator.unit_client import UnitClient


class Fleet:
    """Connect a phone for each unit given, each with its own behaviour; stop them all on exit."""

    def __init__(
        self,
        push_url: str,
        zone: Zone,
        principals: Mapping[str, DemoPrincipal],
        behaviours: Mapping[str, Behaviour],
        changes: Changes,
    ) -> None:
        self.clients: dict[str, UnitClient] = {}
        for unit_id, behaviour in behaviours.items():
            unit = zone.unit(unit_id)
            if behaviour.speed_kmh is None:
                behaviour = replace(behaviour, speed_kmh=unit.speed_kmh)
            self.clients[unit_id] = UnitClient(
                url=push_url,
                token=principals[unit_id].token,
                unit_id=unit_id,
                home=zone.home_position(unit),
                behaviour=behaviour,
                changes=changes,
            )
        self.tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Self:
        self.tasks = [
            asyncio.create_task(client.run(), name=f"unit {unit_id}")
            for unit_id, client in self.clients.items()
        ]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.gather(*(client.stop() for client in self.clients.values()))
        await cancel_and_wait(self.tasks)

    @property
    def records(self) -> list[UnitRecord]:
        """Return every unit's record, by unit id."""
        return [self.clients[unit_id].record for unit_id in sorted(self.clients)]
