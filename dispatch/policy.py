"""The dispatch policy of a deployment, built from its zone file's `[policy]` table.

One object holds what the stages need: the routing policy, the lifecycle's timers and the merge
window. Build it once per worker with `policy_of(zone)` and pass its parts down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType

from dispatch.lifecycle.policy import LifecyclePolicy
from dispatch.routing.policy import RoutingPolicy
from dispatch.zone import Zone
from dispatch.zone.policy import PolicyTable


@dataclass(frozen=True, slots=True)
class DispatchPolicy:
    """Routing, lifecycle timers and the merge window of one deployment."""

    routing: RoutingPolicy
    lifecycle: LifecyclePolicy
    # Repeats of one place and kind within this time of the first alarm join its incident.
    merge_window: timedelta

    @classmethod
    def from_table(cls, table: PolicyTable) -> DispatchPolicy:
        """Build the policy objects from a validated `[policy]` table."""
        routing = RoutingPolicy(
            position_max_age=timedelta(seconds=table.position_max_age_s),
            presence_window=timedelta(seconds=table.presence_window_s),
            connected_position_max_age=timedelta(seconds=table.connected_position_max_age_s),
            grid_bonus_s=dict(table.grid_bonus_s),
            mutual_aid_radius_m=table.mutual_aid_radius_m,
            mutual_aid_priorities=table.mutual_aid_priorities,
            max_search_radius_m=table.max_search_radius_m,
            school_backup_priorities=table.school_backup_priorities,
            school_officers_off_campus=table.school_officers_off_campus,
        )
        accept = {p: timedelta(seconds=s) for p, s in table.accept_timeout_s.items()}
        lifecycle = LifecyclePolicy(
            accept_timeouts=MappingProxyType(accept),
            mutual_aid_ack_timeout=timedelta(seconds=table.mutual_aid_ack_timeout_s),
            max_attempts=table.max_attempts,
        )
        return cls(routing, lifecycle, timedelta(seconds=table.merge_window_s))


def policy_of(zone: Zone) -> DispatchPolicy:
    """Return the dispatch policy the zone file sets (its defaults where it sets none)."""
    return DispatchPolicy.from_table(zone.policy)
