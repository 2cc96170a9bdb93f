"""The websocket push protocol: every frame as a pydantic model, parsing, close codes.

See docs/protocol.md. Frames are JSON text objects with a `type` field that names the model.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from dispatch.events import (
    ROOT_FIELD,
    Assignment,
    CommanderAction,
    CommanderCommand,
    CommandOutcome,
    FieldError,
    Identifier,
    IncidentStateChange,
    ResponseAction,
    Text,
    UnitAvailability,
    UnitStatus,
)
from dispatch.events.dead_letters import MAX_FIELD_CHARS, MAX_REASON_CHARS

MAX_FRAME_BYTES = 64 * 1024
"""Larger client frames close the connection (the library's max_size); jobs are far smaller."""


class PushClose(IntEnum):
    """Close codes the gateway uses beyond the standard ones (1000, 1001, 1011, 1013)."""

    UNAUTHORIZED = 4001
    PROTOCOL_ERROR = 4002
    FORBIDDEN = 4003
    TOO_SLOW = 4008


class Channel(StrEnum):
    """What a connection streams; the principal's role decides it."""

    UNIT = "unit"
    COMMANDER = "commander"
    DESK = "desk"


class ErrorCode(StrEnum):
    """What went wrong with one client frame; the connection stays open unless it says so."""

    BAD_FRAME = "bad_frame"
    WRONG_CHANNEL = "wrong_channel"
    UNKNOWN_ASSIGNMENT = "unknown_assignment"
    JOB_WITHDRAWN = "job_withdrawn"
    NOT_A_JOB = "not_a_job"
    ACK_AHEAD = "ack_ahead"
    RESUME_AHEAD = "resume_ahead"
    RATE_LIMITED = "rate_limited"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    UNAVAILABLE = "unavailable"


class Frame(BaseModel):
    """Base of every frame: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


Ref = Annotated[str, StringConstraints(min_length=1, max_length=64)]
"""A client's own label for a request, echoed on its ok or error frame."""

Seq = Annotated[int, Field(ge=1, le=2**63 - 1)]


# -- client → gateway ---------------------------------------------------------------------------


class AuthFrame(Frame):
    """Authenticate as the first frame, for clients that cannot set an Authorization header."""

    type: Literal["auth"]
    token: Annotated[SecretStr, Field(min_length=1, max_length=128)]


class HelloFrame(Frame):
    """Start the unit channel: send every job after last_acked_seq (None: after the stored ack)."""

    type: Literal["hello"]
    last_acked_seq: int | None = Field(default=None, ge=0, le=2**63 - 1)


class AckFrame(Frame):
    """Acknowledge every job up to and including seq (cumulative)."""

    type: Literal["ack"]
    seq: Seq
    ref: Ref | None = None


class RespondAction(StrEnum):
    """What a unit can answer to a job (the ack is its own frame)."""

    ACCEPT = "accept"
    DECLINE = "decline"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    RESOLVED = "resolved"

    def as_response(self) -> ResponseAction:
        """Return the responses.events action of the same name."""
        return ResponseAction(self.value)


class RespondFrame(Frame):
    """Answer one of the unit's own jobs, named by its seq or its assignment_id.

    On the commander channel it records a unit's answer that came by radio or phone: then
    unit_id names the unit, and seq is that unit's. A unit may name only itself.
    """

    type: Literal["respond"]
    unit_id: Identifier | None = None
    seq: Seq | None = None
    # validate_default runs the checks below when these are left out, too.
    assignment_id: uuid.UUID | None = Field(default=None, validate_default=True)
    action: RespondAction
    reason: Text | None = Field(default=None, validate_default=True)
    ref: Ref | None = None

    # Field validators, not a model validator, so that each error names its field.
    @field_validator("assignment_id")
    @classmethod
    def _one_job_reference(
        cls, assignment_id: uuid.UUID | None, info: ValidationInfo
    ) -> uuid.UUID | None:
        if "seq" in info.data and (info.data["seq"] is None) == (assignment_id is None):
            raise PydanticCustomError("job_reference", "give exactly one of seq and assignment_id")
        return assignment_id

    @field_validator("reason")
    @classmethod
    def _decline_needs_reason(cls, reason: str | None, info: ValidationInfo) -> str | None:
        if reason is None and info.data.get("action") is RespondAction.DECLINE:
            raise PydanticCustomError("reason_required", "a decline must give a reason")
        return reason


class PositionFrame(Frame):
    """Report the unit's position and availability."""

    type: Literal["position"]
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000, allow_inf_nan=False)
    status: UnitAvailability
    ref: Ref | None = None


class CommandFrame(Frame):
    """A commander's decision about an incident: assign, reassign, cancel or close.

    Which of unit_id and from_unit_id an action needs is the rule of CommanderCommand, the
    schema of commander.commands; `command` applies it, so it is written down once.
    """

    type: Literal["command"]
    # The client's own id of this decision: sending the frame again (after `unavailable`, or
    # a reconnect) publishes the same event, which the route stage applies once.
    command_id: uuid.UUID
    action: CommanderAction
    incident_id: uuid.UUID
    unit_id: Identifier | None = None
    from_unit_id: Identifier | None = None
    reason: Text | None = None
    ref: Ref | None = None

    def command(self, *, event_id: uuid.UUID, actor: str, issued_at: datetime) -> CommanderCommand:
        """Return the commander.commands event of this frame; raise BadFrame naming the field."""
        try:
            return CommanderCommand(
                event_id=event_id,
                incident_id=self.incident_id,
                action=self.action,
                unit_id=self.unit_id,
                from_unit_id=self.from_unit_id,
                reason=self.reason,
                actor=actor,
                issued_at=issued_at,
            )
        except ValidationError as exc:
            # The frame's fields have the event's names, so each error names a frame field.
            raise BadFrame(_field_errors(exc, tagged=False), self.ref) from exc


ClientFrame = AuthFrame | HelloFrame | AckFrame | RespondFrame | PositionFrame | CommandFrame
_CLIENT_FRAMES: TypeAdapter[ClientFrame] = TypeAdapter(
    Annotated[ClientFrame, Field(discriminator="type")]
)


class BadFrame(ValueError):
    """Raise when a client frame is not one of the protocol's; `errors` names each bad field."""

    def __init__(self, errors: list[FieldError], ref: str | None = None) -> None:
        self.errors = errors
        self.ref = ref
        first = errors[0] if errors else FieldError(field=ROOT_FIELD, message="invalid frame")
        super().__init__(f"bad frame: {first.field}: {first.message}")


def _field_of(error: Any, *, tagged: bool) -> str:
    loc = tuple(str(part) for part in error["loc"])
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return "type"
    if error["type"] in ("json_invalid", "json_type", "model_attributes_type"):
        return ROOT_FIELD
    # In a frame parsed as the union, the first part of a location is the discriminator's tag
    # (`respond`), not a field.
    return ".".join(loc[1:] if tagged else loc) or ROOT_FIELD


def _field_errors(exc: ValidationError, *, tagged: bool) -> list[FieldError]:
    return [
        FieldError(
            field=_field_of(error, tagged=tagged)[:MAX_FIELD_CHARS],
            message=error["msg"][:MAX_REASON_CHARS],
        )
        for error in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


_LOOSE_OBJECT: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


def _ref_of(data: str | bytes) -> str | None:
    # Best effort, so that even a refused frame's error can carry the client's ref.
    try:
        loose = _LOOSE_OBJECT.validate_json(data)
    except ValidationError:
        return None
    ref = loose.get("ref")
    return ref if isinstance(ref, str) and 0 < len(ref) <= 64 else None


def parse_client_frame(data: str | bytes) -> ClientFrame:
    """Parse one client frame; raise BadFrame naming every bad field."""
    if isinstance(data, bytes):
        raise BadFrame([FieldError(field=ROOT_FIELD, message="frames are JSON text, not binary")])
    try:
        return _CLIENT_FRAMES.validate_json(data)
    except ValidationError as exc:
        raise BadFrame(_field_errors(exc, tagged=True), _ref_of(data)) from exc


# -- gateway → client ---------------------------------------------------------------------------


class WelcomeFrame(Frame):
    """Sent once authentication succeeded: who the client is and what it will stream."""

    type: Literal["welcome"] = "welcome"
    channel: Channel
    principal_id: Identifier
    unit_id: Identifier | None = None
    enterprise_id: Identifier | None = None
    heartbeat_s: float


class ResumeFrame(Frame):
    """Answer to hello: every job with seq > after_seq follows, in order; last_seq is the newest."""

    type: Literal["resume"] = "resume"
    after_seq: int = Field(ge=0)
    last_seq: int = Field(ge=0)


class JobFrame(Frame):
    """One job (assignment or mutual-aid alert) with its per-unit sequence number."""

    type: Literal["job"] = "job"
    seq: Seq
    assignment: Assignment


class OkFrame(Frame):
    """A respond, position or command frame is on Kafka (acks=all)."""

    type: Literal["ok"] = "ok"
    of: Literal["respond", "position", "command"]
    ref: Ref | None = None
    event_id: uuid.UUID


class ErrorFrame(Frame):
    """A client frame was refused; nothing was changed or published for it."""

    type: Literal["error"] = "error"
    code: ErrorCode
    message: str
    ref: Ref | None = None
    errors: tuple[FieldError, ...] = ()
    retry_after_s: float | None = None


class IncidentFrame(Frame):
    """One incident state change (commander: all; desk: its own enterprise's)."""

    type: Literal["incident"] = "incident"
    change: IncidentStateChange


class UnitStatusFrame(Frame):
    """One unit availability or position report (commander channel only)."""

    type: Literal["unit_status"] = "unit_status"
    status: UnitStatus


class CommandOutcomeFrame(Frame):
    """What the route stage made of a commander's command (commander channel only)."""

    type: Literal["command_outcome"] = "command_outcome"
    outcome: CommandOutcome


ServerFrame = (
    WelcomeFrame
    | ResumeFrame
    | JobFrame
    | OkFrame
    | ErrorFrame
    | IncidentFrame
    | UnitStatusFrame
    | CommandOutcomeFrame
)
_SERVER_FRAMES: TypeAdapter[ServerFrame] = TypeAdapter(
    Annotated[ServerFrame, Field(discriminator="type")]
)


def parse_server_frame(data: str | bytes) -> ServerFrame:
    """Parse one gateway frame, as a client does; raise ValidationError when it is not one."""
    return _SERVER_FRAMES.validate_json(data)


def job_frame(seq: int, assignment_json: str) -> str:
    """Return the text of a job frame around an assignment that is already JSON."""
    # Spliced, not re-serialised: the payload was validated when it was stored, and a push to
    # thousands of units should not parse and dump every job again.
    return f'{{"type":"job","seq":{seq},"assignment":{assignment_json}}}'


def incident_frame(change_json: str) -> str:
    """Return the text of an incident frame around a state change that is already JSON."""
    return f'{{"type":"incident","change":{change_json}}}'


def unit_status_frame(status_json: str) -> str:
    """Return the text of a unit_status frame around a status report that is already JSON."""
    return f'{{"type":"unit_status","status":{status_json}}}'


def command_outcome_frame(outcome_json: str) -> str:
    """Return the text of a command_outcome frame around an outcome that is already JSON."""
    return f'{{"type":"command_outcome","outcome":{outcome_json}}}'


def error_frame(
    code: ErrorCode,
    message: str,
    *,
    ref: str | None = None,
    errors: list[FieldError] | None = None,
    retry_after_s: float | None = None,
) -> str:
    """Return the text of an error frame."""
    frame = ErrorFrame(
        code=code,
        message=message,
        ref=ref,
        errors=tuple(errors or ()),
        retry_after_s=retry_after_s,
    )
    return frame.model_dump_json(exclude_none=True)
