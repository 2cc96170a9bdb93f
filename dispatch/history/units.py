"""The zone's units as routing saw them through the history: where they wait, who is busy.

Units wait at their home position (docs/zone.md, `home_position`) and are routed from there;
a unit sent on a job is busy until it is back, so a later incident gets the next-best unit
the way the route stage's unit board would have given it.
"""

from __future__ import annotations

import dataclasses
import heapq
from datetime import datetime

from dispatch.events import Position, UnitAvailability
from dispatch.routing import UnitIndex, UnitRecord
from dispatch.zone import Zone


class HistoryUnits:
    """A unit index whose units are free unless a job of the history holds them."""

    def __init__(self, zone: Zone, *, since: datetime) -> None:
        self.index = UnitIndex()
        self.home: dict[str, Position] = {}
        for unit in zone.units:
            home = zone.home_position(unit)
            self.home[unit.id] = home
            self.index.upsert(
                UnitRecord(
                    unit_id=unit.id,
                    kind=str(unit.kind),
                    capabilities=frozenset(unit.capabilities),
                    speed_kmh=unit.speed_kmh,
                    home_grid_id=unit.home_grid_id,
                    home_place_id=unit.home_place_id,
                    availability=UnitAvailability.AVAILABLE,
                    position=home,
                    position_at=since,
                    seen_at=since,
                )
            )
        self._busy: list[tuple[datetime, str]] = []

    def free_until(self, now: datetime) -> None:
        """Free every unit whose job ended by now."""
        while self._busy and self._busy[0][0] <= now:
            _, unit_id = heapq.heappop(self._busy)
            self._set(unit_id, UnitAvailability.AVAILABLE)

    def take(self, unit_id: str) -> None:
        """Hold a unit the moment it is sent (until `hold` says for how long)."""
        self._set(unit_id, UnitAvailability.ASSIGNED)

    def hold(self, unit_id: str, until: datetime) -> None:
        """Keep a unit busy until it is back from its job."""
        self._set(unit_id, UnitAvailability.BUSY)
        heapq.heappush(self._busy, (until, unit_id))

    def _set(self, unit_id: str, availability: UnitAvailability) -> None:
        record = self.index.get(unit_id)
        if record is not None and record.availability is not availability:
            self.index.upsert(dataclasses.replace(record, availability=availability))
