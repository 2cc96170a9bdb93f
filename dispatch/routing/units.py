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
    # When the unit was last heard from: a report, or the gateway's presence record of a
    # live connection (units.status `presence`), which repeats the last fix with its own time.
    seen_at: datetime | None = None

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
        """Return this record updated with a status report from `units.status`.

        A presence record only says the unit is connected now: it moves the unit only to a
        newer fix than the one held, and never changes its availability.
        """
        if status.unit_id != self.unit_id:
            raise InvalidUnitRecord(f"status for {status.unit_id} applied to unit {self.unit_id}")
        seen_at = (
            status.reported_at if self.seen_at is None else max(self.seen_at, status.reported_at)
        )
        fixed_at = status.position_at or status.reported_at
        if status.presence:
            newer = self.position_at is None or fixed_at > self.position_at
            if status.position is None or not newer:
                return dataclasses.replace(self, seen_at=seen_at)
            return dataclasses.replace(
                self, position=status.position, position_at=fixed_at, seen_at=seen_at
            )
        if status.position is None:
            # No fix in this report: keep the last one, whose own timestamp decides freshness.
            return dataclasses.replace(self, availability=status.status, seen_at=seen_at)
        return dataclasses.replace(
            self,
            availability=status.status,
            position=status.position,
            position_at=fixed_at,
            seen_at=seen_at,
        )

    def is_fresh(
        self,
        now: datetime,
        max_age_s: float,
        *,
        seen_within_s: float = 0.0,
        connected_max_age_s: float = 0.0,
    ) -> bool:
        """Return whether the unit's position can be trusted for routing: a fix at most
        max_age_s old, or, for a unit heard from within seen_within_s (connected, its phone
        quiet), a fix at most connected_max_age_s old."""
        age = self.fix_age_s(now)
        if age is None:
            return False
        # A fix stamped slightly in the future (device clock ahead) still counts as fresh.
        if age <= max_age_s:
            return True
        seen = self.seen_at
        heard = seen is not None and (now - seen).total_seconds() <= seen_within_s
        return heard and age <= connected_max_age_s

    def fix_age_s(self, now: datetime) -> float | None:
        """Return how old the unit's position is, in seconds (None without one)."""
        if self.position is None or self.position_at is None:
            return None
        return (now - self.position_at).total_seconds()
