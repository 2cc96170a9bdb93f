"""What units do with their jobs (`responses.events`): ack, accept, decline, move, resolve."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from dispatch.events.base import EventId, EventModel, Identifier, Text, UtcTimestamp


class ResponseAction(StrEnum):
    """One step a unit takes on an assignment, in the order they normally happen."""

    ACK = "ack"
    ACCEPT = "accept"
    DECLINE = "decline"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    RESOLVED = "resolved"
    # Not a unit's: the reserve stage's refusal of a job whose unit another incident holds.
    # The unit never saw the job; the incident routes again at once.
    TAKEN = "taken"


class ResponseEvent(EventModel):
    """Record one action a unit (or a commander on its behalf) took on an assignment."""

    schema_version: Literal[1] = 1
    event_id: EventId
    assignment_id: uuid.UUID
    incident_id: uuid.UUID
    unit_id: Identifier
    action: ResponseAction
    occurred_at: UtcTimestamp
    # validate_default runs the check below when reason is left out, too.
    reason: Text | None = Field(default=None, validate_default=True)
    actor: Identifier

    @field_validator("reason")
    @classmethod
    def _decline_needs_reason(cls, reason: str | None, info: ValidationInfo) -> str | None:
        # A field validator, not a model validator, so that the error names this field.
        if reason is None and info.data.get("action") is ResponseAction.DECLINE:
            raise PydanticCustomError("reason_required", "A decline must give a reason")
        return reason
