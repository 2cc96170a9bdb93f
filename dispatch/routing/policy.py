"""The routing policy: freshness, grid bonus, mutual aid, search radius and the school rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType

from dispatch.events import Priority
from dispatch.zone.policy import MAX_URGENT_GRID_BONUS_S as MAX_URGENT_GRID_BONUS_S

URGENT = frozenset({Priority.P1, Priority.P2})

_DEFAULT_GRID_BONUS: Mapping[Priority, float] = MappingProxyType(
    {Priority.P1: 30.0, Priority.P2: 30.0, Priority.P3: 120.0, Priority.P4: 120.0}
)


class InvalidRoutingPolicy(ValueError):
    """Raised when a routing policy could send the wrong units (negative radius, big bonus)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingPolicy:
    """Tunable routing rules; the defaults are the demo zone's (docs/routing.md)."""

    position_max_age: timedelta = timedelta(minutes=5)
    # A unit whose phone is connected (its gateway's presence record within presence_window)
    # keeps an older fix routable, up to connected_position_max_age: a parked patrol that
    # stopped reporting is still where it said it was. Its ETA counts the fix's age beyond
    # position_max_age at STALE_FIX_PENALTY, so an equally near fresh unit goes first.
    presence_window: timedelta = timedelta(seconds=90)
    connected_position_max_age: timedelta = timedelta(minutes=30)
    # Taken off the grid's own patrols' ETA when ranking, per priority: it is the most ETA the
    # preference for them can cost an incident of that priority.
    grid_bonus_s: Mapping[Priority, float] | float = field(
        default_factory=lambda: _DEFAULT_GRID_BONUS
    )
    mutual_aid_radius_m: float = 1000.0
    mutual_aid_priorities: frozenset[Priority] = URGENT
    max_search_radius_m: float = 30_000.0
    # At these priorities a school incident gets its own officer AND the nearest capable
    # units; below them the officer may fill a part alone (and goes whatever the distance).
    school_backup_priorities: frozenset[Priority] = URGENT
    # False: an officer is sent only to its own school; the commander can still assign one.
    school_officers_off_campus: bool = False

    def __post_init__(self) -> None:
        bonus = self.grid_bonus_s
        table = {p: float(bonus) for p in Priority} if isinstance(bonus, int | float) else bonus
        if set(table) != set(Priority):
            raise InvalidRoutingPolicy("grid_bonus_s needs a value for each of P1..P4")
        object.__setattr__(self, "grid_bonus_s", MappingProxyType(dict(table)))
        if min(table.values()) < 0 or self.mutual_aid_radius_m < 0 or self.max_search_radius_m < 0:
            raise InvalidRoutingPolicy("policy bonus and radii must not be negative")
        urgent = max(table[p] for p in URGENT)
        if urgent > MAX_URGENT_GRID_BONUS_S:
            raise InvalidRoutingPolicy(
                f"grid bonus {urgent:g} s for P1/P2 exceeds {MAX_URGENT_GRID_BONUS_S:g} s: "
                "the preference for a grid's own patrol must not cost an urgent incident more"
            )
        if self.position_max_age <= timedelta(0):
            raise InvalidRoutingPolicy("position_max_age must be positive")
        if self.presence_window < timedelta(0) or self.connected_position_max_age < timedelta(0):
            raise InvalidRoutingPolicy("presence_window and connected_position_max_age >= 0")

    def grid_bonus_for(self, priority: Priority) -> float:
        """Return the grid bonus in seconds for an incident of this priority."""
        bonus = self.grid_bonus_s
        return bonus if isinstance(bonus, float) else bonus[priority]
