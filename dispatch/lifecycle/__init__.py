"""The incident lifecycle: a pure state machine whose effects are events to publish."""

from dispatch.lifecycle.commands import CommandRejected, apply_command, close, stand_down
from dispatch.lifecycle.incident import Deadline, Incident, open_incident
from dispatch.lifecycle.merging import merge_alarm
from dispatch.lifecycle.policy import LifecyclePolicy
from dispatch.lifecycle.responses import apply_response, cancel, expire_deadlines
from dispatch.lifecycle.transitions import (
    Effects,
    Offer,
    ResponseRejected,
    dispatch_offers,
    escalate,
    units_still_needed,
)

__all__ = [
    "CommandRejected",
    "Deadline",
    "Effects",
    "Incident",
    "LifecyclePolicy",
    "Offer",
    "ResponseRejected",
    "apply_command",
    "apply_response",
    "cancel",
    "close",
    "dispatch_offers",
    "escalate",
    "expire_deadlines",
    "merge_alarm",
    "open_incident",
    "stand_down",
    "units_still_needed",
]
