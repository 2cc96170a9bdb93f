"""How long a unit has to accept, per priority, and how far re-dispatch may go."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType

from dispatch.events import Priority

_DEFAULT_ACK_TIMEOUTS: Mapping[Priority, timedelta] = MappingProxyType(
    {
        Priority.P1: timedelta(seconds=30),
        Priority.P2: timedelta(seconds=60),
        Priority.P3: timedelta(seconds=120),
        Priority.P4: timedelta(seconds=300),
    }
)


@dataclass(frozen=True)
class LifecyclePolicy:
    """The timers of the lifecycle; the defaults follow NFPA 1225's 60 s processing target."""

    accept_timeouts: Mapping[Priority, timedelta] = field(
        default_factory=lambda: _DEFAULT_ACK_TIMEOUTS
    )
    # A mutual-aid alert asks guards to respond, not to accept a job; it never re-dispatches.
    mutual_aid_ack_timeout: timedelta = timedelta(minutes=5)
    # After this many offers of one incident, only the commander can send more units.
    max_attempts: int = 6

    def accept_timeout(self, priority: Priority) -> timedelta:
        """Return how long a unit has to accept a job of this priority."""
        return self.accept_timeouts[priority]
