"""Reservations (`units.reservations`): route's jobs on their way to the unit's single writer.

Route workers own incidents, not units: two of them can choose the same free unit for two
incidents in the moment before either's `assigned` report reaches the other. So a route worker
does not write a unit's jobs to `dispatch.assignments` itself. It writes them here, keyed by
the unit, and the reserve stage (the one member that owns the unit's partition) holds the unit
for one incident at a time: it passes a job on when the unit is free or already this
incident's, and refuses it otherwise (a `taken` response to the incident, which routes again
at once). Everything for a unit travels this one way, so the unit hears of its jobs,
stand-downs and updates in the order route decided them.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from dispatch.events.assignments import Assignment, AssignmentKind
from dispatch.events.base import EventId, EventModel, Identifier, UtcTimestamp

# Event ids of reservations derive from the job they carry (a replay makes the same one).
RESERVATION_NAMESPACE = uuid.UUID("5d3f1b0e-7c62-4e8a-9a41-0b6c2e9f7d15")


class Reservation(EventModel):
    """One of route's decisions about a unit: a job or notice to deliver, and whether the
    incident takes the unit for itself (`holds`) or lets it go (`releases`)."""

    schema_version: Literal[1] = 1
    event_id: EventId
    unit_id: Identifier
    incident_id: uuid.UUID
    at: UtcTimestamp
    # What the unit is to be sent (a job, an alert, a stand-down, an update); None for a bare
    # release.
    job: Assignment | None = Field(default=None, validate_default=True)
    # The job needs the unit to itself: it goes only if no other incident holds the unit.
    holds: bool = Field(default=False, validate_default=True)
    # A commander's own choice of unit: it goes, and the incident takes the unit, whatever
    # held it (a commander may send a busy unit; the other incident keeps its record).
    force: bool = False
    # The incident lets the unit go (a stand-down that frees it): another incident may have it.
    releases: bool = False

    # Field validators, not a model validator, so that each error names its field.
    @field_validator("job")
    @classmethod
    def _job_is_this_units(cls, job: Assignment | None, info: ValidationInfo) -> Assignment | None:
        # A field that failed its own validation is not in info.data: its error says enough.
        if job is None:
            return None
        if "unit_id" in info.data and job.unit_id != info.data["unit_id"]:
            raise PydanticCustomError("unit_mismatch", "job.unit_id must be unit_id")
        if "incident_id" in info.data and job.incident_id != info.data["incident_id"]:
            raise PydanticCustomError("incident_mismatch", "job.incident_id must be incident_id")
        return job

    @field_validator("holds")
    @classmethod
    def _holds_a_job(cls, holds: bool, info: ValidationInfo) -> bool:
        if "job" not in info.data:
            return holds  # the job failed its own validation
        job = info.data["job"]
        if holds and (job is None or job.kind is not AssignmentKind.ASSIGNMENT):
            raise PydanticCustomError("job_required", "only a job (kind assignment) holds a unit")
        return holds


def reservation_for(
    job: Assignment, *, holds: bool = False, force: bool = False, releases: bool = False
) -> Reservation:
    """Return the reservation carrying job; its id derives from the job's."""
    return Reservation(
        event_id=uuid.uuid5(RESERVATION_NAMESPACE, str(job.assignment_id)),
        unit_id=job.unit_id,
        incident_id=job.incident_id,
        at=job.dispatched_at,
        job=job,
        holds=holds,
        force=force,
        releases=releases,
    )
