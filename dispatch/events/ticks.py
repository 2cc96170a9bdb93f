"""Deadline ticks (`dispatch.ticks`): the route stage's timer asking its own agent to expire.

Faust tables can only change inside a stream, keyed like the event being processed, so the
timer does not expire deadlines itself: it publishes a tick keyed by the incident, and the
agent that owns the incident's partition applies it.
"""

from __future__ import annotations

import uuid
from typing import Literal

from dispatch.events.base import EventId, EventModel, UtcTimestamp


class DeadlineTick(EventModel):
    """Ask the owner of an incident to expire every deadline due at or before due_at."""

    schema_version: Literal[1] = 1
    event_id: EventId
    incident_id: uuid.UUID
    due_at: UtcTimestamp
