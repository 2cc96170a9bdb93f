"""A unit as routing sees it: what it is, what it can do, how fast it moves, where it was last."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime

from dispatch.events import Position, UnitAvailability, UnitStatus
from dispatch.zone.model import UnitKind

UNIT_KINDS = frozenset(UnitKind)


class InvalidUnitRecord(ValueError):
    """Raised when a unit record could never be routed correctly (bad speed, kind or clock)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UnitRecord:
    """Hold one unit's profile and its latest availability and position fix."""

    unit_id: str
    # A plain str so records can be built from table rows; it must be one of UnitKind.
    kind: str
    capabilities: frozenset[str]
    # Top speed: the index prunes its search with distance / fastest speed, so an ETA may
    # never be shorter than great-circle distance / speed_kmh.
    speed_kmh: float
    home_grid_id: str | None = None
    # The school a school officer belongs to, or the enterprise a guard unit belongs to.
    home_place_id: str | None = None
    availability: UnitAvailability = UnitAvailability.OFF_DUTY
    position: Position | None = None
    position_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.kind not in UNIT_KINDS:
            raise InvalidUnitRecord(f"unit {self.unit_id}: unknown kind {self.kind!r}")
        if not math.isfinite(self.speed_kmh) or self.speed_kmh <= 0:
            raise InvalidUnitRecord(f"unit {self.unit_id}: speed_kmh must be positive and finite")
        if self.position_at is not None and self.position_at.utcoffset() is None:
            # A naive time could be Beijing time or UTC; freshness would be off by eight hours.
            raise InvalidUnitRecord(f"unit {self.unit_id}: position_at must be timezone-aware")

    @property
    def speed_mps(self) -> float:
        """Return the top speed in metres per second."""
        return self.speed_kmh / 3.6

    def with_status(self, status: UnitStatus) -> UnitRecord:
        """Return this record updated with a status report from `units.status`."""
        if status.unit_id != self.unit_id:
            raise InvalidUnitRecord(f"status for {status.unit_id} applied to unit {self.unit_id}")
        if status.position is None:
            # No fix in this report: keep the last one, whose own timestamp decides freshness.
            return dataclasses.replace(self, availability=status.status)
        return dataclasses.replace(
            self,
            availability=status.status,
            position=status.position,
            position_at=status.reported_at,
        )

    def is_fresh(self, now: datetime, max_age_s: float) -> bool:
        """Return whether the unit has a position reported at most max_age_s before now."""
        if self.position is None or self.position_at is None:
            return False
        # A fix stamped slightly in the future (device clock ahead) still counts as fresh.
        return (now - self.position_at).total_seconds() <= max_age_s
