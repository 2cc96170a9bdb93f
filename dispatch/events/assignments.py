"""Jobs pushed to units (`dispatch.assignments`): assignments and mutual-aid alerts."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from dispatch.events.alarms import Category, Priority
from dispatch.events.base import (
    EventId,
    EventModel,
    Identifier,
    Name,
    Phone,
    Position,
    Summary,
    Text,
    UtcTimestamp,
)

EXCERPT_CHARS = 500
Excerpt = Annotated[str, StringConstraints(min_length=1, max_length=EXCERPT_CHARS)]
"""The first alarm's own words, cut for a screen (alarms.raw keeps them whole)."""


class AssignmentKind(StrEnum):
    """Whether a unit is sent to the incident, alerted to help nearby, or stood down."""

    ASSIGNMENT = "assignment"
    MUTUAL_AID_ALERT = "mutual_aid_alert"
    # Withdraws an earlier job or alert of this unit (reassigned, cancelled, closed, resolved,
    # timed out): it travels the same way, so a unit hears of it in order with its jobs.
    STAND_DOWN = "stand_down"
    # Tells the units on an incident what a later alarm changed (more urgent, more needed):
    # the same way as jobs, so a unit on its way hears of it in order with its jobs.
    UPDATE = "update"


class AssignmentRole(StrEnum):
    """The part a unit plays at an incident."""

    PRIMARY = "primary"
    SUPPORT = "support"
    MUTUAL_AID = "mutual_aid"


class Assignment(EventModel):
    """Send one unit one job, with the deadline by which it must acknowledge, or stand it down."""

    # 2 for a stand-down, which a reader of version 1 does not know; jobs and alerts stay 1,
    # so a reader not yet upgraded still reads every one of them.
    schema_version: Literal[1, 2] = 1
    assignment_id: EventId
    incident_id: uuid.UUID
    unit_id: Identifier
    kind: AssignmentKind
    role: AssignmentRole
    # 1 for the first offer of this role; each redispatch after a timeout or decline adds one.
    attempt: int = Field(ge=1, le=100)
    priority: Priority
    category: Category
    position: Position
    place_name: Name | None = None
    eta_s: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    dispatched_at: UtcTimestamp
    ack_deadline: UtcTimestamp
    summary: Summary
    text: Excerpt | None = None
    # Who called it in and the number to call back: for the units sent, not those alerted.
    reporter_name: Name | None = None
    reporter_phone: Phone | None = None
    # A stand-down's: the assignment id it withdraws, and why.
    withdraws: uuid.UUID | None = Field(default=None, validate_default=True)
    reason: Text | None = None
    # An update's: the assignment id whose incident changed (the reason says what changed).
    updates: uuid.UUID | None = Field(default=None, validate_default=True)

    # Field validators, not model validators, so that each error names its field.
    @field_validator("kind")
    @classmethod
    def _stand_down_is_version_2(cls, kind: AssignmentKind, info: ValidationInfo) -> AssignmentKind:
        notice = kind in (AssignmentKind.STAND_DOWN, AssignmentKind.UPDATE)
        if notice and info.data.get("schema_version") != 2:
            raise PydanticCustomError("notice_version", f"a {kind} is schema_version 2")
        return kind

    @field_validator("withdraws")
    @classmethod
    def _only_a_stand_down_withdraws(
        cls, withdraws: uuid.UUID | None, info: ValidationInfo
    ) -> uuid.UUID | None:
        if "kind" not in info.data:
            return withdraws  # the kind itself is wrong: its own error says so
        standing_down = info.data["kind"] is AssignmentKind.STAND_DOWN
        if standing_down and withdraws is None:
            raise PydanticCustomError("withdraws_required", "a stand_down names what it withdraws")
        if not standing_down and withdraws is not None:
            raise PydanticCustomError("withdraws_forbidden", "only a stand_down withdraws a job")
        return withdraws

    @field_validator("updates")
    @classmethod
    def _only_an_update_updates(
        cls, updates: uuid.UUID | None, info: ValidationInfo
    ) -> uuid.UUID | None:
        if "kind" not in info.data:
            return updates  # the kind itself is wrong: its own error says so
        updating = info.data["kind"] is AssignmentKind.UPDATE
        if updating and updates is None:
            raise PydanticCustomError("updates_required", "an update names the job it updates")
        if not updating and updates is not None:
            raise PydanticCustomError("updates_forbidden", "only an update updates a job")
        return updates

    @field_validator("ack_deadline")
    @classmethod
    def _deadline_after_dispatch(cls, ack_deadline: datetime, info: ValidationInfo) -> datetime:
        # A field validator, not a model validator, so that the error names this field.
        dispatched_at = info.data.get("dispatched_at")
        if dispatched_at is not None and ack_deadline <= dispatched_at:
            raise PydanticCustomError(
                "ack_deadline_order", "ack_deadline must be after dispatched_at"
            )
        return ack_deadline
