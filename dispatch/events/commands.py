"""Commander commands (`commander.commands`): manual assign, reassign, cancel and close; and
what became of each (`commander.outcomes`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from dispatch.events.base import (
    EventId,
    EventModel,
    Identifier,
    ObservedAt,
    Text,
    UtcTimestamp,
)
from dispatch.events.dead_letters import MAX_REASON_CHARS


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


class CommandResult(StrEnum):
    """What the route stage made of a command."""

    APPLIED = "applied"
    REFUSED = "refused"


# The namespace of outcome ids: uuid5(namespace, "<command event id>:outcome").
OUTCOME_NAMESPACE = uuid.UUID("3f0c9a27-51d4-4b8e-9e63-7a2d1c5b8f04")


class CommandOutcome(EventModel):
    """Record what the route stage made of one commander command: applied, or refused and why.

    The commander's channel shows it, so a command that cannot apply is never known only by
    the absence of a change; the record keeps it in the incident's timeline.
    """

    schema_version: Literal[1] = 1
    event_id: EventId
    # The commander.commands event: the event_id of the gateway's `ok` for the command.
    command_event_id: uuid.UUID
    incident_id: uuid.UUID
    action: CommanderAction
    unit_id: Identifier | None = None
    from_unit_id: Identifier | None = None
    actor: Identifier
    issued_at: UtcTimestamp
    result: CommandResult
    reason: Text | None = Field(default=None, validate_default=True)
    at: UtcTimestamp

    @field_validator("reason")
    @classmethod
    def _refusal_says_why(cls, reason: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("result") is CommandResult.REFUSED and reason is None:
            raise PydanticCustomError("reason_required", "a refused command must say why")
        return reason

    @classmethod
    def of(
        cls, command: CommanderCommand, *, result: CommandResult, reason: str | None, at: datetime
    ) -> CommandOutcome:
        """Return the outcome of command; its id follows from the command's, so a replay
        of the command gives the same outcome id."""
        return cls(
            event_id=uuid.uuid5(OUTCOME_NAMESPACE, f"{command.event_id}:outcome"),
            command_event_id=command.event_id,
            incident_id=command.incident_id,
            action=command.action,
            unit_id=command.unit_id,
            from_unit_id=command.from_unit_id,
            actor=command.actor,
            issued_at=command.issued_at,
            result=result,
            reason=reason[:MAX_REASON_CHARS] if reason is not None else None,
            at=at,
        )
