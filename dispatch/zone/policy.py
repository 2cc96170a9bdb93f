"""The zone file's `[policy]` table: the dispatch rules a deployment sets, checked on load.

The values are what a Suizhou commander signs for the demo zone (docs/zone.md, docs/routing.md);
`dispatch.policy` turns them into the routing and lifecycle policies and the merge window.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, model_validator

from dispatch.events import EventModel, Priority

# The most a grid's own patrol may cost a P1 or P2 incident in arrival time: a commander
# accepts half a minute or so for a crew that knows the streets, never more than a minute.
MAX_URGENT_GRID_BONUS_S = 60.0
URGENT = (Priority.P1, Priority.P2)

Seconds = Annotated[float, Field(ge=0, le=86_400, allow_inf_nan=False)]
Timeout = Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)]


def _per_priority(**values: float) -> dict[Priority, float]:
    return {Priority(p): v for p, v in values.items()}


class PolicyTable(EventModel):
    """Mutual aid, timers, the merge window, the grid bonus and the school-officer rule."""

    # Repeats of one place and kind within this time of the first alarm join its incident.
    merge_window_s: Timeout = 600.0
    # A unit's position older than this is not trusted for routing...
    position_max_age_s: Timeout = 300.0
    # ...unless its phone is connected (a presence record within this) and the fix is at most
    # connected_position_max_age_s old.
    presence_window_s: Seconds = 90.0
    connected_position_max_age_s: Seconds = 1800.0
    max_search_radius_m: float = Field(default=30_000.0, gt=0, le=500_000)
    mutual_aid_radius_m: float = Field(default=1_000.0, ge=0, le=50_000)
    mutual_aid_priorities: frozenset[Priority] = frozenset(URGENT)
    # Most ETA a grid's own patrol may cost an incident of each priority.
    grid_bonus_s: dict[Priority, Seconds] = Field(
        default_factory=lambda: _per_priority(P1=30.0, P2=30.0, P3=120.0, P4=120.0)
    )
    # At these priorities a school incident gets its officer and the nearest capable units.
    school_backup_priorities: frozenset[Priority] = frozenset(URGENT)
    school_officers_off_campus: bool = False
    # How long a unit has to accept a job, per priority; a guard to acknowledge an alert.
    accept_timeout_s: dict[Priority, Timeout] = Field(
        default_factory=lambda: _per_priority(P1=30.0, P2=60.0, P3=120.0, P4=300.0)
    )
    mutual_aid_ack_timeout_s: Timeout = 300.0
    # After this many offers of one incident only the commander sends more units.
    max_attempts: int = Field(default=6, ge=1, le=100)

    @model_validator(mode="after")
    def _complete_and_safe(self) -> Self:
        for name in ("grid_bonus_s", "accept_timeout_s"):
            missing = [p.value for p in Priority if p not in getattr(self, name)]
            if missing:
                raise ValueError(f"{name} needs a value for {', '.join(missing)}")
        urgent = max(self.grid_bonus_s[p] for p in URGENT)
        if urgent > MAX_URGENT_GRID_BONUS_S:
            raise ValueError(
                f"grid_bonus_s of {urgent:g} s for P1/P2 exceeds {MAX_URGENT_GRID_BONUS_S:g} s: "
                "the preference for a grid's own patrol must not cost an urgent incident more"
            )
        return self
