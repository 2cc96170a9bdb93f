"""How a simulated unit behaves: its knobs, its misbehaviours and how it moves."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from dispatch.events import Position
from dispatch.zone import haversine_m


class Misbehaviour(StrEnum):
    """A way a unit's phone or crew fails, for the fault tests."""

    NONE = "none"
    NEVER_ACK = "never_ack"  # receives, neither acknowledges nor answers
    ACK_TWICE = "ack_twice"  # acknowledges each job twice and sends each answer twice
    DECLINE = "decline"  # declines every job, with a reason
    IGNORE = "ignore"  # acknowledges, never answers


DEFAULT_SPEED_KMH = 40.0  # a patrol car in town
MISBEHAVIOURS = tuple(m for m in Misbehaviour if m is not Misbehaviour.NONE)


@dataclass(frozen=True)
class Behaviour:
    """The knobs of one unit; durations are simulated seconds unless they say real."""

    think_s: float = 20.0  # from the job on screen to the accept
    work_s: float = 600.0  # on scene until resolved
    # Travel speed; None: the zone's own figure for the unit (a car, an e-bike, on foot).
    speed_kmh: float | None = None
    # Simulated seconds per real second: 60 makes a 10-minute job take 10 real seconds.
    compression: float = 1.0
    # Real seconds between position reports while on duty (docs/protocol.md: 30 s). Not
    # compressed: the route stage judges a fix's age in real time, and reports count
    # against the gateway's rate limit.
    position_every_s: float = 30.0
    misbehaviour: Misbehaviour = Misbehaviour.NONE
    decline_reason: str = "车辆故障 / vehicle breakdown"

    def real_s(self, simulated_s: float) -> float:
        """Return the real seconds a simulated duration takes."""
        return simulated_s / self.compression

    def travel_s(self, start: Position, end: Position) -> float:
        """Return the simulated seconds to drive from start to end at this unit's speed."""
        return haversine_m(start, end) / ((self.speed_kmh or DEFAULT_SPEED_KMH) / 3.6)


def assign_misbehaviours(
    unit_ids: Sequence[str], share: float, seed: int, base: Behaviour
) -> dict[str, Behaviour]:
    """Give a share of the units (chosen by seed) a misbehaviour each, in turn; the rest none."""
    if not 0 <= share <= 1:
        raise ValueError(f"the misbehaving share must be within 0..1, not {share}")
    chosen = random.Random(seed).sample(list(unit_ids), round(len(unit_ids) * share))
    behaviours = dict.fromkeys(unit_ids, base)
    for n, unit_id in enumerate(sorted(chosen)):
        behaviours[unit_id] = replace(base, misbehaviour=MISBEHAVIOURS[n % len(MISBEHAVIOURS)])
    return behaviours


@dataclass(frozen=True)
class Leg:
    """A drive from start to end, begun at a moment of the event loop's clock (real seconds)."""

    start: Position
    end: Position
    began_at: float
    duration_s: float  # real seconds

    def where(self, now: float) -> Position:
        """Return where the unit is on its way at now (straight line, even speed)."""
        if self.duration_s <= 0:
            return self.end
        done = min(1.0, max(0.0, (now - self.began_at) / self.duration_s))
        return Position(
            lat=self.start.lat + (self.end.lat - self.start.lat) * done,
            lon=self.start.lon + (self.end.lon - self.start.lon) * done,
            accuracy_m=10.0,
        )


class Whereabouts:
    """Where a unit is: parked, or on a leg of its way."""

    def __init__(self, home: Position) -> None:
        self._parked = Position(lat=home.lat, lon=home.lon, accuracy_m=10.0)
        self._leg: Leg | None = None

    def drive(self, leg: Leg) -> None:
        """Start a leg."""
        self._leg = leg

    def at(self, now: float) -> Position:
        """Return the position at now; a finished leg parks the unit at its end."""
        if self._leg is None:
            return self._parked
        where = self._leg.where(now)
        if now >= self._leg.began_at + self._leg.duration_s:
            self._parked, self._leg = where, None
        return where

    def stop(self, now: float) -> None:
        """Stop where the unit is now (a withdrawn job ends the drive)."""
        self._parked, self._leg = self.at(now), None
