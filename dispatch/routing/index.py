"""Spatial index of units: H3 cell buckets per capability and kind, searched ring by ring."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

# h3 ships no type hints (pyproject lets mypy treat it as Any): values are converted on use.
from h3.api import basic_int as h3

from dispatch.events import Position, UnitAvailability
from dispatch.routing.eta import distance_m
from dispatch.routing.units import UnitRecord
from dispatch.zone.geo import Point, haversine_m

# Resolution 7: mean edge about 1.4 km, so one ring step covers about 2 km and a 1 km
# mutual-aid search needs one ring (7 cells); a 30 km search stays under 1,000 cells.
DEFAULT_RESOLUTION = 7
# H3 cells are not perfect hexagons, and neighbours differ slightly in size from the centre
# cell that is measured: 10 % slack keeps the covered radius a true lower bound.
_SLACK = 0.9

# (dimension, value, available units only). Every positioned unit is filed under all units,
# its kind and each capability; an available one under the same keys for available units too,
# so a search for a free unit never walks rings of busy ones (with every capable unit busy, it
# ends at once instead of widening until it has met them all).
BucketKey = tuple[str, str, bool]


def _all_key(available: bool) -> BucketKey:
    return ("all", "", available)


def _capability_key(capability: str, available: bool) -> BucketKey:
    return ("capability", capability, available)


def _kind_key(kind: str, available: bool) -> BucketKey:
    return ("kind", kind, available)


def _keys(record: UnitRecord) -> tuple[BucketKey, ...]:
    flags = (False, True) if record.availability is UnitAvailability.AVAILABLE else (False,)
    return tuple(
        key
        for available in flags
        for key in (
            _all_key(available),
            _kind_key(record.kind, available),
            *(_capability_key(c, available) for c in sorted(record.capabilities)),
        )
    )


@lru_cache(maxsize=8192)
def _cell_extent_m(cell: int) -> tuple[float, float]:
    """Return (shortest edge, longest centre-to-vertex distance) of a cell in metres."""
    lat, lon = h3.cell_to_latlng(cell)
    centre = Point(float(lat), float(lon))
    ring = [Point(float(a), float(b)) for a, b in h3.cell_to_boundary(cell)]
    edges = [haversine_m(ring[i - 1], ring[i]) for i in range(len(ring))]
    reach = [haversine_m(centre, vertex) for vertex in ring]
    return min(edges), max(reach)


def covered_radius_m(cell: int, k: int) -> float:
    """Return a radius around any point of cell inside which every point lies within k rings."""
    # A disk of k rings of regular hexagons with edge e contains the circle of radius
    # (1.5 k + 0.5) e about the centre cell's centre (the jagged sides come closest); the
    # query point may be up to one centre-to-vertex distance away from that centre.
    edge, reach = _cell_extent_m(cell)
    return (1.5 * k + 0.5) * edge * _SLACK - reach


@dataclass(frozen=True, slots=True)
class RingScan:
    """The units met in ring k, and the radius about the query now searched completely."""

    k: int
    covered_m: float
    # Fastest unit in the searched bucket: turns covered_m into a lower bound on ETA.
    fastest_kmh: float
    units: tuple[UnitRecord, ...]


class UnitIndex:
    """Hold the latest record of every unit and find units near a point without a full scan."""

    def __init__(self, resolution: int = DEFAULT_RESOLUTION) -> None:
        self.resolution = resolution
        self._records: dict[str, UnitRecord] = {}
        # Where each positioned unit is filed: its cell and the buckets it is in.
        self._placed: dict[str, tuple[int, tuple[BucketKey, ...]]] = {}
        self._cells: dict[BucketKey, dict[int, dict[str, UnitRecord]]] = {}
        self._sizes: Counter[BucketKey] = Counter()
        self._speeds: dict[BucketKey, Counter[float]] = {}
        self._homes: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[UnitRecord]:
        return iter(list(self._records.values()))

    def get(self, unit_id: str) -> UnitRecord | None:
        """Return the record of unit_id, or None if the index does not hold it."""
        return self._records.get(unit_id)

    def upsert(self, record: UnitRecord) -> None:
        """Add a unit or replace its record, moving it between cells and buckets as needed."""
        self.remove(record.unit_id)
        self._records[record.unit_id] = record
        if record.home_place_id is not None:
            self._homes.setdefault(record.home_place_id, set()).add(record.unit_id)
        if record.position is None:
            return
        cell = int(h3.latlng_to_cell(record.position.lat, record.position.lon, self.resolution))
        keys = _keys(record)
        self._placed[record.unit_id] = (cell, keys)
        for key in keys:
            self._cells.setdefault(key, {}).setdefault(cell, {})[record.unit_id] = record
            self._sizes[key] += 1
            self._speeds.setdefault(key, Counter())[record.speed_kmh] += 1

    def remove(self, unit_id: str) -> UnitRecord | None:
        """Forget unit_id and return its last record, or None if it was not held."""
        record = self._records.pop(unit_id, None)
        if record is None:
            return None
        if record.home_place_id is not None:
            homed = self._homes[record.home_place_id]
            homed.discard(unit_id)
            if not homed:
                del self._homes[record.home_place_id]
        placed = self._placed.pop(unit_id, None)
        if placed is None:
            return record
        cell, keys = placed
        for key in keys:
            # Empty cells and buckets are dropped so memory follows the units, not history.
            cells = self._cells[key]
            del cells[cell][unit_id]
            if not cells[cell]:
                del cells[cell]
            speeds = self._speeds[key]
            speeds[record.speed_kmh] -= 1
            if speeds[record.speed_kmh] == 0:
                del speeds[record.speed_kmh]
            self._sizes[key] -= 1
            if self._sizes[key] == 0:
                del self._sizes[key], self._speeds[key], self._cells[key]
        return record

    def homed_at(self, place_id: str) -> Iterator[UnitRecord]:
        """Yield the units whose home place is place_id (a school's officers, a firm's guards)."""
        for unit_id in sorted(self._homes.get(place_id, ())):
            yield self._records[unit_id]

    def nearest_rings(
        self,
        position: Position,
        *,
        max_radius_m: float,
        capabilities: Iterable[str] = (),
        kind: str | None = None,
        available_only: bool = False,
    ) -> Iterator[RingScan]:
        """Yield positioned units ring by ring outwards until max_radius_m is fully searched."""
        needed = frozenset(capabilities)
        key = self._smallest_bucket(needed, kind, available_only)
        size = self._sizes[key]
        if size == 0:
            return
        cells = self._cells[key]
        fastest = max(self._speeds[key])
        origin = int(h3.latlng_to_cell(position.lat, position.lon, self.resolution))
        seen = 0
        k = 0
        while True:
            units: list[UnitRecord] = []
            for cell in h3.grid_ring(origin, k):
                bucket = cells.get(int(cell))
                if bucket is None:
                    continue
                seen += len(bucket)
                units.extend(
                    unit
                    for unit in bucket.values()
                    if needed <= unit.capabilities and (kind is None or unit.kind == kind)
                )
            # Once every unit of the bucket has been met, nothing lies farther out.
            covered = math.inf if seen >= size else covered_radius_m(origin, k)
            yield RingScan(k=k, covered_m=covered, fastest_kmh=fastest, units=tuple(units))
            if covered >= max_radius_m:
                return
            k += 1

    def nearby(
        self,
        position: Position,
        radius_m: float,
        *,
        capabilities: Iterable[str] = (),
        kind: str | None = None,
        available_only: bool = False,
    ) -> Iterator[UnitRecord]:
        """Yield every positioned unit within radius_m (great-circle) of position."""
        for scan in self.nearest_rings(
            position,
            max_radius_m=radius_m,
            capabilities=capabilities,
            kind=kind,
            available_only=available_only,
        ):
            for unit in scan.units:
                # Filed units always have a position; the check keeps mypy and readers sure.
                if unit.position is not None and distance_m(unit.position, position) <= radius_m:
                    yield unit

    def _smallest_bucket(
        self, capabilities: frozenset[str], kind: str | None, available: bool
    ) -> BucketKey:
        # Scan the rarest bucket that every match must be in, and filter by the rest.
        keys = [_capability_key(c, available) for c in capabilities]
        if kind is not None:
            keys.append(_kind_key(kind, available))
        if not keys:
            return _all_key(available)
        return min(keys, key=lambda key: (self._sizes[key], key))
