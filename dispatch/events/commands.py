"""Commander commands (`commander.commands`): manual assign, reassign, cancel and close."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from dispatch.events.base import EventId, EventModel, Identifier, ObservedAt, Text


class CommanderAction(StrEnum):
    """What a commander decides about an incident."""

    ASSIGN = "assign"
    REASSIGN = "reassign"
    CANCEL = "cancel"
    CLOSE = "close"


class CommanderCommand(EventModel):
    """Record one commander decision; the route stage applies it to the incident."""

    schema_version: Literal[1] = 1
    event_id: EventId
    incident_id: uuid.UUID
    action: CommanderAction
    # The unit to send (assign, reassign) and the unit to take off (reassign).
    unit_id: Identifier | None = Field(default=None, validate_default=True)
    from_unit_id: Identifier | None = Field(default=None, validate_default=True)
    reason: Text | None = None
    # The commander's principal id: every manual change records who made it.
    actor: Identifier
    issued_at: ObservedAt

    # Field validators, not a model validator, so that each error names its field.
    @field_validator("unit_id")
    @classmethod
    def _unit_fits_the_action(cls, unit_id: str | None, info: ValidationInfo) -> str | None:
        action = info.data.get("action")
        sends_a_unit = action in (CommanderAction.ASSIGN, CommanderAction.REASSIGN)
        if sends_a_unit and unit_id is None:
            raise PydanticCustomError("unit_required", "assign and reassign need unit_id")
        # A cancel or close that names a unit looks like it acts on that unit alone, but it
        # ends the whole incident: refused, so the commander is not misled.
        if action in (CommanderAction.CANCEL, CommanderAction.CLOSE) and unit_id is not None:
            raise PydanticCustomError(
                "unit_not_allowed", "cancel and close act on the whole incident: omit unit_id"
            )
        return unit_id

    @field_validator("from_unit_id")
    @classmethod
    def _from_unit_fits_the_action(
        cls, from_unit_id: str | None, info: ValidationInfo
    ) -> str | None:
        action = info.data.get("action")
        if action is None:
            return from_unit_id  # the action itself is invalid and is reported on its own
        if (action is CommanderAction.REASSIGN) != (from_unit_id is not None):
            raise PydanticCustomError(
                "from_unit", "from_unit_id is required for reassign and only for reassign"
            )
        return from_unit_id
