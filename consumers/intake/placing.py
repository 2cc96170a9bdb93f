"""`POST /v1/alarms/{alarm_id}/place`: the commander places an alarm the zone could not.

An alarm that names no place the zone knows and gives no position is shown to the commander
as an escalation of its provisional incident (streams.stages.Classifier). Placing it writes
the very alarm again on `alarms.raw`, with the position the commander chose and `placed_by`,
so that it is located, classified, merged and routed like any other alarm, as the incident
the board already shows (docs/lifecycle.md, "Unlocated alarms").

The placement is recorded with its audit entry before it is published, in the table the
gateway keeps its commands in (consumers.push.journal), under an id derived from the alarm:
an alarm is placed once, a retry after a 503 publishes the recorded placement again, and a
second placement somewhere else is refused rather than silently ignored downstream.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoint's annotations at run
# time, and `Depends(caller)` names a local of install_placing.
import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated

import asyncpg
from aiokafka.errors import KafkaError
from fastapi import Depends, FastAPI
from pydantic import Field

from consumers.auth import Principal
from consumers.auth.policy import can_place_alarm
from consumers.intake import receipts
from consumers.intake.errors import ApiError, documented, field_error
from consumers.intake.models import ApiModel
from consumers.kafka_producer import RecoveringProducer
from consumers.push import journal
from dispatch.events import Identifier, Position, RawAlarm, decode, encode, key_of
from dispatch.locate import LocationUnresolved, locate
from dispatch.triage import provisional_incident_id, with_device_place
from dispatch.zone import Zone

log = logging.getLogger(__name__)

PLACE_PATH = "/v1/alarms/{alarm_id}/place"
PLACE_ACTION = "alarm.place"
# Fixed forever: the placement of an alarm is recorded under uuid5(this, alarm id).
PLACEMENT_NAMESPACE = uuid.UUID("6d1e8b3a-2f47-4c9a-b5e0-8a7c3d2f1e94")
_NOT_RECORDED = "the record (PostgreSQL) is unavailable; the alarm was not placed"
_NOT_SENT = (
    "Kafka did not acknowledge the placement in time; it is recorded but not known to be "
    "sent: send the same placement again"
)

Caller = Callable[..., Awaitable[Principal]]
Connection = Callable[[str], AbstractAsyncContextManager[asyncpg.Connection]]


class PlaceRequest(ApiModel):
    """Where an alarm the zone could not place happened, as the commander found out."""

    position: Position = Field(
        description="Where it happened (from a call back, or a click on the board's map)."
    )


class PlacedAlarm(ApiModel):
    """The placed alarm is on Kafka: it will be routed as the incident the board shows."""

    alarm_id: uuid.UUID
    incident_id: uuid.UUID = Field(
        description="The incident of the alarm's escalation, which is now routed."
    )
    position: Position
    placed_by: Identifier


def placement_id(alarm_id: uuid.UUID) -> uuid.UUID:
    """Return the id an alarm's placement is recorded under: one placement per alarm."""
    return uuid.uuid5(PLACEMENT_NAMESPACE, str(alarm_id))


def install_placing(
    app: FastAPI,
    *,
    caller: Caller,
    connection: Connection,
    zone: Zone,
    producer: RecoveringProducer,
    topic: str,
    kafka_timeout_s: float,
) -> None:
    """Add the placing endpoint to app."""

    @app.post(
        PLACE_PATH,
        status_code=202,
        responses=documented(400, 401, 403, 404, 409, 413, 422, 429, 503),
    )
    async def place_alarm(
        alarm_id: uuid.UUID,
        body: PlaceRequest,
        principal: Annotated[Principal, Depends(caller)],
    ) -> PlacedAlarm:
        """Place an alarm the zone could not; 202 once the placed alarm is on Kafka."""
        if not can_place_alarm(principal):
            raise ApiError(403, f"a {principal.role.value} principal may not place alarms")
        async with connection(_NOT_RECORDED) as conn:
            stored = await receipts.fetch(conn, alarm_id=alarm_id)
        if stored is None:
            raise ApiError(404, "no such alarm")
        alarm = stored.alarm
        if _zone_places(zone, alarm):
            # Placed again, it would change nothing downstream (the route stage has it).
            raise field_error(
                409,
                "the zone places this alarm itself; it was routed from there",
                "alarm_id",
                "only an alarm the zone could not place goes to the commander to be placed",
            )
        placed = RawAlarm.model_validate(
            alarm.model_dump() | {"position": body.position, "placed_by": principal.id}
        )
        event_id = placement_id(alarm_id)
        async with connection(_NOT_RECORDED) as conn:
            recorded = await journal.record(
                conn,
                topic=topic,
                event=placed,
                event_id=event_id,
                actor=principal.id,
                action=PLACE_ACTION,
                subject=receipts.alarm_subject(alarm_id),
                detail={"position": body.position.model_dump(), "event_id": event_id},
            )
        first = decode(RawAlarm, recorded.event_json.encode())
        if first.position != placed.position:
            where = f"{first.position.lat:.6f}, {first.position.lon:.6f}" if first.position else ""
            raise field_error(
                409,
                "this alarm was placed already; it is routed from there",
                "position",
                f"placed at {where} by {first.placed_by}; send units elsewhere by hand",
            )
        if not recorded.published:
            await _publish(producer, topic, first, kafka_timeout_s)
            try:
                async with connection(_NOT_RECORDED) as conn:
                    await journal.mark_published(conn, event_id=event_id)
            except ApiError:
                # On Kafka and audited; only the note is missing, which a retry adds.
                log.warning("intake: placement %s is on Kafka but not marked published", event_id)
        return PlacedAlarm(
            alarm_id=alarm_id,
            incident_id=provisional_incident_id(alarm_id),
            position=body.position,
            # Another commander may have placed it at the very same spot first.
            placed_by=first.placed_by or principal.id,
        )


def _zone_places(zone: Zone, alarm: RawAlarm) -> bool:
    try:
        locate(zone, with_device_place(zone, alarm))
    except LocationUnresolved:
        return False
    return True


async def _publish(
    producer: RecoveringProducer, topic: str, alarm: RawAlarm, timeout_s: float
) -> None:
    try:
        await asyncio.wait_for(
            producer.send_and_wait(topic, encode(alarm), key=key_of(alarm)), timeout=timeout_s
        )
    except (KafkaError, TimeoutError) as exc:
        log.warning(
            "intake: Kafka did not take the placement of %s: %r",
            alarm.alarm_id,
            exc,
            extra={"alarm_id": str(alarm.alarm_id)},
        )
        raise ApiError(503, _NOT_SENT) from None
