"""A unit's phone, frame by frame, without a network: what it sends back and what it keeps."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from pydantic import SecretStr

from dispatch.events import Position
from simulator.behaviour import Behaviour, Misbehaviour
from simulator.unit_client import UnitClient

UNIT = "cd-patrol-1"


class Phone(UnitClient):
    """A unit client whose sent frames are kept instead of going to a gateway."""

    def __init__(self, misbehaviour: Misbehaviour = Misbehaviour.NONE) -> None:
        super().__init__(
            url="ws://unused/",
            token=SecretStr("dsp_unused"),
            unit_id=UNIT,
            home=Position(lat=31.7, lon=113.4),
            behaviour=Behaviour(misbehaviour=misbehaviour),
        )
        self.sent: list[dict[str, Any]] = []
        self.resyncs = 0

    async def send(self, frame: dict[str, Any]) -> None:
        self.sent.append(frame)

    async def resync(self) -> None:
        self.resyncs += 1

    async def receive(self, **frame: Any) -> bool:
        return await self._handler.handle(json.dumps(frame))


def job(
    seq: int,
    kind: str = "assignment",
    withdraws: uuid.UUID | None = None,
    updates: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Return a job frame as the gateway sends it."""
    assignment: dict[str, Any] = {
        "assignment_id": str(uuid.uuid4()),
        "incident_id": str(uuid.uuid4()),
        "unit_id": UNIT,
        "kind": kind,
        "position": {"lat": 31.71, "lon": 113.41},
        "dispatched_at": "2026-11-26T03:04:05.230Z",
    }
    if withdraws is not None:
        assignment["withdraws"] = str(withdraws)
    if updates is not None:
        assignment["updates"] = str(updates)
    return {"type": "job", "seq": seq, "assignment": assignment}


async def connect(phone: Phone, after_seq: int = 0, last_seq: int = 0) -> None:
    """Take a welcome and a resume, as on every connection."""
    await phone.receive(type="welcome", channel="unit", principal_id=UNIT, unit_id=UNIT)
    assert await phone.receive(type="resume", after_seq=after_seq, last_seq=last_seq)


async def test_a_new_phone_says_hello_null_and_takes_the_gateways_record() -> None:
    phone = Phone()
    await connect(phone, after_seq=7, last_seq=7)
    assert phone.sent == [{"type": "hello", "last_acked_seq": None}]
    await phone.receive(**job(8))
    assert phone.sent[-1] == {"type": "ack", "seq": 8}
    # Its next connection resumes from its own record.
    await connect(phone, after_seq=8, last_seq=8)
    assert phone.sent[-1] == {"type": "hello", "last_acked_seq": 8}
    assert phone.record.violations == []


async def test_a_job_is_shown_acked_and_handed_to_the_crew_once() -> None:
    phone = Phone()
    await connect(phone)
    first = job(1)
    await phone.receive(**first)
    await phone.receive(**first)
    assert [j.seq for j in phone.record.shown] == [1]
    assert phone.record.duplicates == 1
    assert [f for f in phone.sent if f["type"] == "ack"] == [{"type": "ack", "seq": 1}]
    assert phone.crew.waiting == 1


async def test_a_stand_down_withdraws_the_job_and_is_acked() -> None:
    phone = Phone()
    await connect(phone)
    first = job(1)
    await phone.receive(**first)
    withdrawn = uuid.UUID(first["assignment"]["assignment_id"])
    await phone.receive(**job(2, kind="stand_down", withdraws=withdrawn))
    assert phone.record.withdrawn_told == {withdrawn}
    assert phone.crew.is_withdrawn(withdrawn)
    assert phone.sent[-1] == {"type": "ack", "seq": 2}


async def test_an_update_is_shown_and_acked_but_is_no_job_for_the_crew() -> None:
    phone = Phone()
    await connect(phone)
    first = job(1)
    await phone.receive(**first)
    updated = uuid.UUID(first["assignment"]["assignment_id"])
    await phone.receive(**job(2, kind="update", updates=updated))
    assert phone.sent[-1] == {"type": "ack", "seq": 2}
    assert phone.record.updates_told == 1
    assert [j.seq for j in phone.record.jobs] == [1]
    assert phone.crew.waiting == 1


async def test_a_gap_makes_the_phone_resume_once_then_show_past_it() -> None:
    phone = Phone()
    await connect(phone)
    await phone.receive(**job(2))
    assert (phone.resyncs, phone.record.shown) == (1, [])
    await phone.receive(**job(2))
    assert phone.resyncs == 1
    assert [j.seq for j in phone.record.shown] == [2]
    assert len(phone.record.violations) == 2


@pytest.mark.parametrize(
    ("misbehaviour", "acks"),
    [(Misbehaviour.NEVER_ACK, []), (Misbehaviour.ACK_TWICE, [1, 1]), (Misbehaviour.IGNORE, [1])],
)
async def test_misbehaving_phones_ack_as_they_misbehave(
    misbehaviour: Misbehaviour, acks: list[int]
) -> None:
    phone = Phone(misbehaviour)
    await connect(phone)
    await phone.receive(**job(1))
    assert [f["seq"] for f in phone.sent if f["type"] == "ack"] == acks
    crew_takes = misbehaviour is Misbehaviour.ACK_TWICE
    assert phone.crew.waiting == (1 if crew_takes else 0)


async def test_resume_ahead_makes_the_phone_forget_its_record() -> None:
    phone = Phone()
    await connect(phone)
    await phone.receive(**job(1))
    await phone.receive(type="error", code="resume_ahead", message="beyond the last seq")
    await connect(phone, after_seq=0, last_seq=0)
    assert phone.sent[-1] == {"type": "hello", "last_acked_seq": None}
    assert phone.record.errors == [("resume_ahead", "beyond the last seq")]


async def test_unknown_and_misplaced_frames_are_recorded_not_fatal() -> None:
    phone = Phone()
    await connect(phone)
    await phone.receive(type="notice", text="a frame type of a later protocol")
    await phone.receive(type="incident", change={})
    await phone._handler.handle("not json")
    assert phone.record.unknown_frames == ["notice", "unparseable"]
    assert phone.record.violations == ["incident frame on the unit channel"]
