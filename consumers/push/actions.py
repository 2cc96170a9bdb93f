"""What clients' frames do: a unit acknowledges jobs, answers them, reports its position; a
commander commands.

Each action is published to Kafka (acks=all) before anything is answered, and is audited
with the principal as actor. An answer, a command and a change of availability are recorded
with their audit entry before they are published (consumers.push.journal); an ack stamps its
jobs and audits them once its events are on Kafka. Event ids of acks and answers derive from
the assignment and the action, and those of commands from the commander and the client's
command id, so a client that sends one again after an error or a reconnect publishes the
same event, which the lifecycle applies once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from consumers.auth import audit, can_act_on_assignment, can_command
from consumers.push import journal
from consumers.push.protocol import (
    BadFrame,
    CommandFrame,
    ErrorCode,
    OkFrame,
    PositionFrame,
    RespondFrame,
)
from consumers.push.sessions import RateLimiter, Session, UnitSession
from consumers.push.store import (
    DATABASE_DOWN,
    connection,
    describe_fault,
    find_job,
    is_record_fault,
    mark_acked,
    unacked_through,
)
from dispatch.events import (
    EventModel,
    FieldError,
    Position,
    ResponseAction,
    ResponseEvent,
    UnitStatus,
    decode,
    encode,
    key_of,
)

log = logging.getLogger(__name__)

# Fixed forever: ids derived from it make a repeated ack or answer the same event.
RESPONSE_NAMESPACE = uuid.UUID("9d2f6c1a-4b7e-4f0a-8c3d-5e6f7a8b9c0d")
COMMAND_NAMESPACE = uuid.UUID("3e7a1c5b-8d2f-4a6e-9b0c-7f1e2d3c4b5a")
PUBLISH_TIMEOUT_S = 15.0
# What a commander decided; a resend with the same command_id must decide the same.
DECISION = {"incident_id", "action", "unit_id", "from_unit_id", "reason"}
E = TypeVar("E", bound=EventModel)


def now_ms() -> datetime:
    """Return now in UTC at the events' millisecond precision, so stamps and events agree."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


def response_event_id(assignment_id: uuid.UUID, action: ResponseAction) -> uuid.UUID:
    """Return the event id of one action on one assignment: a repeat is the same event."""
    return uuid.uuid5(RESPONSE_NAMESPACE, f"{assignment_id}:{action.value}")


def command_event_id(actor: str, command_id: uuid.UUID) -> uuid.UUID:
    """Return the event id of a commander's command: a repeat is the same event.

    Scoped by the commander, so that one principal's ids cannot collide with, or pre-empt,
    another's events on the incident.
    """
    return uuid.uuid5(COMMAND_NAMESPACE, f"{actor}:{command_id}")


class Refused(Exception):
    """Raise inside a frame handler to answer the client with an error frame."""

    def __init__(self, code: ErrorCode, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s


class Actions:
    """What every kind of action shares: the producer, the store, the rate limit, the audit."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        limiter: RateLimiter,
        publish_timeout_s: float = PUBLISH_TIMEOUT_S,
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._limiter = limiter
        self._publish_timeout_s = publish_timeout_s

    def spend(self, session: Session) -> None:
        """Count one message against the principal's rate, or refuse it."""
        if (wait := self._limiter.take(session.principal.id)) is not None:
            raise Refused(ErrorCode.RATE_LIMITED, "too many messages", round(wait, 1))

    async def _publish(self, topic: str, events: Sequence[EventModel]) -> None:
        try:
            # send() itself may wait (for metadata, or room in the buffer): bound it too.
            async with asyncio.timeout(self._publish_timeout_s):
                sent = [await self._producer.send(topic, encode(e), key=key_of(e)) for e in events]
                await asyncio.gather(*sent)
        except (KafkaError, TimeoutError) as exc:
            log.warning("cannot publish to %s: %r", topic, exc)
            message = "Kafka unavailable: not known to be sent; send it again"
            raise Refused(ErrorCode.UNAVAILABLE, message) from exc

    async def _record(
        self,
        topic: str,
        event: E,
        event_id: uuid.UUID,
        *,
        actor: str,
        action: str,
        subject: str,
        detail: Mapping[str, object],
    ) -> tuple[E, bool]:
        """Record an event with its audit entry, sending nothing yet; return it as first
        recorded (a resend's own copy may differ in its time) and whether Kafka has it."""
        try:
            async with connection(self._pool) as conn:
                recorded = await journal.record(
                    conn,
                    topic=topic,
                    event=event,
                    event_id=event_id,
                    actor=actor,
                    action=action,
                    subject=subject,
                    detail=detail,
                )
        except DATABASE_DOWN as exc:
            if is_record_fault(exc):
                raise Refused(
                    ErrorCode.BAD_FRAME, f"cannot be stored: {describe_fault(exc)}"
                ) from exc
            log.warning("cannot record %s %s: %s", action, event_id, describe_fault(exc))
            message = "storage unavailable: nothing was sent; send it again"
            raise Refused(ErrorCode.UNAVAILABLE, message) from exc
        return decode(type(event), recorded.event_json.encode()), recorded.published

    async def _publish_recorded(
        self, topic: str, event: EventModel, event_id: uuid.UUID, *, published: bool
    ) -> None:
        """Publish a recorded event unless Kafka has it already, then note that it has."""
        if published:
            return
        await self._publish(topic, [event])
        try:
            async with connection(self._pool) as conn:
                await journal.mark_published(conn, event_id=event_id)
        except DATABASE_DOWN as exc:
            # On Kafka and audited: only the note that Kafka has it is missing, and the answer
            # is still ok. A resend of the same frame adds the note.
            log.warning("%s is on Kafka but not marked published: %s", event_id, exc)


class UnitActions(Actions):
    """Carry out a unit's ack, respond and position frames."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        responses_topic: str,
        units_topic: str,
        limiter: RateLimiter,
        publish_timeout_s: float = PUBLISH_TIMEOUT_S,
    ) -> None:
        super().__init__(
            pool=pool, producer=producer, limiter=limiter, publish_timeout_s=publish_timeout_s
        )
        self._responses_topic = responses_topic
        self._units_topic = units_topic

    async def ack(self, session: UnitSession, seq: int) -> None:
        """Acknowledge the unit's jobs up to seq: ack events on Kafka, then stamp and audit."""
        now = now_ms()
        principal = session.principal
        try:
            async with connection(self._pool) as conn:
                jobs = await unacked_through(conn, unit_id=session.unit_id, seq=seq)
            if not jobs:
                return
            # Kafka first: a job is stamped only once its ack event is on the topic, so a
            # failure in between leaves it unstamped and the next ack publishes it again. A
            # stand-down is a job of no party: its receipt is the stamp and the audit alone.
            events = [
                ResponseEvent(
                    event_id=response_event_id(job.assignment_id, ResponseAction.ACK),
                    assignment_id=job.assignment_id,
                    incident_id=job.incident_id,
                    unit_id=job.unit_id,
                    action=ResponseAction.ACK,
                    occurred_at=now,
                    actor=principal.id,
                )
                for job in jobs
                if not job.is_stand_down
            ]
            if events:
                await self._publish(self._responses_topic, events)
            async with connection(self._pool) as conn, conn.transaction():
                seqs = [job.seq for job in jobs]
                for job in await mark_acked(conn, unit_id=session.unit_id, seqs=seqs, at=now):
                    detail = {"assignment_id": job.assignment_id, "seq": job.seq}
                    if job.is_stand_down:
                        detail["kind"] = job.kind.value
                    await audit.record(
                        conn,
                        actor=principal.id,
                        action="assignment.ack",
                        subject=f"incident:{job.incident_id}",
                        detail=detail,
                    )
        except DATABASE_DOWN as exc:
            log.warning("cannot record an ack of %s: %s", session.unit_id, exc)
            raise Refused(ErrorCode.UNAVAILABLE, "storage unavailable; ack again") from exc

    async def respond(self, session: Session, frame: RespondFrame, *, unit_id: str) -> None:
        """Publish an answer to one of unit_id's jobs; answer ok once Kafka has it.

        The session is the unit's own, or a commander's recording an answer the unit gave by
        radio: the same checks, the same event (its actor the principal who sent it), the
        same audit entry.
        """
        principal = session.principal
        try:
            async with connection(self._pool) as conn:
                job = await find_job(
                    conn, unit_id=unit_id, seq=frame.seq, assignment_id=frame.assignment_id
                )
        except DATABASE_DOWN as exc:
            raise Refused(ErrorCode.UNAVAILABLE, "storage unavailable; send it again") from exc
        # One answer for "no such job" and "another unit's job": others' ids stay unconfirmed.
        if (
            job is None
            or job.unit_id != unit_id
            or not can_act_on_assignment(principal, unit_id=job.unit_id)
        ):
            raise Refused(ErrorCode.UNKNOWN_ASSIGNMENT, "no such job for this unit")
        if job.is_stand_down:
            message = f"seq {job.seq} is a stand-down, not a job: there is nothing to answer"
            raise Refused(ErrorCode.JOB_WITHDRAWN, message)
        if job.withdrawn_by is not None:
            message = f"this job was withdrawn: see the stand-down at seq {job.withdrawn_by}"
            raise Refused(ErrorCode.JOB_WITHDRAWN, message)
        if job.is_update:
            message = f"seq {job.seq} is an update of a job, not a job: answer the job it updates"
            raise Refused(ErrorCode.NOT_A_JOB, message)
        action = frame.action.as_response()
        event = ResponseEvent(
            event_id=response_event_id(job.assignment_id, action),
            assignment_id=job.assignment_id,
            incident_id=job.incident_id,
            unit_id=job.unit_id,
            action=action,
            occurred_at=datetime.now(UTC),
            reason=frame.reason,
            actor=principal.id,
        )
        detail = {
            "assignment_id": job.assignment_id,
            "action": action.value,
            "reason": frame.reason,
            "event_id": event.event_id,
        }
        event, published = await self._record(
            self._responses_topic,
            event,
            event.event_id,
            actor=principal.id,
            action="assignment.respond",
            subject=f"incident:{job.incident_id}",
            detail=detail,
        )
        await self._publish_recorded(
            self._responses_topic, event, event.event_id, published=published
        )
        ok = OkFrame(of="respond", ref=frame.ref, event_id=event.event_id)
        session.offer_text(ok.model_dump_json(exclude_none=True))

    async def report_position(self, session: UnitSession, frame: PositionFrame) -> None:
        """Publish the unit's position and availability; answer ok once Kafka has it."""
        status = UnitStatus(
            event_id=uuid.uuid4(),
            unit_id=session.unit_id,
            status=frame.status,
            position=Position(lat=frame.lat, lon=frame.lon, accuracy_m=frame.accuracy_m),
            reported_at=datetime.now(UTC),
        )
        # Moves are telemetry, not decisions: only a change of availability is recorded and
        # audited (before it is published, like every decision).
        if frame.status == session.last_status:
            await self._publish(self._units_topic, [status])
        else:
            detail = {"status": frame.status.value, "event_id": status.event_id}
            status, published = await self._record(
                self._units_topic,
                status,
                status.event_id,
                actor=session.principal.id,
                action="unit.status",
                subject=f"unit:{session.unit_id}",
                detail=detail,
            )
            await self._publish_recorded(
                self._units_topic, status, status.event_id, published=published
            )
            session.last_status = frame.status
        ok = OkFrame(of="position", ref=frame.ref, event_id=status.event_id)
        session.offer_text(ok.model_dump_json(exclude_none=True))


class CommanderActions(Actions):
    """Carry out a commander's command frames: publish on commander.commands, then audit."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        commands_topic: str,
        limiter: RateLimiter,
        publish_timeout_s: float = PUBLISH_TIMEOUT_S,
    ) -> None:
        super().__init__(
            pool=pool, producer=producer, limiter=limiter, publish_timeout_s=publish_timeout_s
        )
        self._commands_topic = commands_topic

    async def command(self, session: Session, frame: CommandFrame) -> None:
        """Publish the commander's decision; answer ok once Kafka has it.

        The route stage applies it later, in order with the incident's other events; what it
        changes reaches the boards as incident frames with the commander as actor, and a
        command that cannot apply (a closed incident, a unit already on it) goes to the
        dead-letter topic with the reason.
        """
        principal = session.principal
        # The channel is the commander's already; the policy is asked again where it acts.
        if not can_command(principal):
            raise Refused(ErrorCode.FORBIDDEN, "only a commander may command")
        command = frame.command(
            event_id=command_event_id(principal.id, frame.command_id),
            actor=principal.id,
            issued_at=now_ms(),
        )
        # Counted once it is a valid command, as a respond or position is once it parses.
        self.spend(session)
        detail = {
            "command_id": frame.command_id,
            "event_id": command.event_id,
            "unit_id": command.unit_id,
            "from_unit_id": command.from_unit_id,
            "reason": command.reason,
        }
        # Recorded and audited first: a command on Kafka is never without its audit entry.
        recorded, published = await self._record(
            self._commands_topic,
            command,
            command.event_id,
            actor=principal.id,
            action=f"incident.{command.action.value}",
            subject=f"incident:{command.incident_id}",
            detail=detail,
        )
        if recorded.model_dump(include=DECISION) != command.model_dump(include=DECISION):
            message = "this command_id was used for another decision: send a new one"
            raise BadFrame([FieldError(field="command_id", message=message)], frame.ref)
        await self._publish_recorded(
            self._commands_topic, recorded, command.event_id, published=published
        )
        ok = OkFrame(of="command", ref=frame.ref, event_id=command.event_id)
        session.offer_text(ok.model_dump_json(exclude_none=True))
