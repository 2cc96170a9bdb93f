"""The classify stage dead-letters a raw alarm received far in the future, naming the field.

A hotline integrating straight through Kafka sets `received_at` itself; one in the year 2999
made every duration measured from it negative. RawAlarm refuses it (dispatch/events/base.py,
MAX_AHEAD_OF_CLOCK), so the stage's decoding dead-letters it and the next alarm flows.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from aiokafka import ConsumerRecord

from dispatch.events import ALARMS_DLQ, ALARMS_LOCATED, DeadLetter, decode
from dispatch.settings import Settings
from streams.pipeline import load_zone_and_rules
from streams.stages import Classifier, Queued


def raw_record(offset: int, received_at: str) -> Any:
    value = json.dumps(
        {
            "alarm_id": str(uuid.uuid4()),
            "received_at": received_at,
            "source_kind": "hotline",
            "source_id": "hotline-1",
            "text": "城东公园有人打架 / a fight in Chengdong Park",
        }
    ).encode()
    return ConsumerRecord("alarms.raw", 0, offset, 0, 0, b"k", value, None, 1, len(value), [])


def test_an_alarm_from_the_year_2999_is_dead_lettered_and_the_next_one_located() -> None:
    zone, rules = load_zone_and_rules(Settings())
    classifier = Classifier(zone=zone, rules=rules)
    out = Queued()
    now = datetime.now(UTC)
    classifier.alarm(raw_record(0, "2999-01-01T00:00:00.000Z"), out, now)
    classifier.alarm(raw_record(1, now.isoformat()), out, now)
    letters = [decode(DeadLetter, v) for spec, _, v in out.records if spec is ALARMS_DLQ]
    assert [(d.offset, d.stage) for d in letters] == [(0, "classify")]
    assert [e.field for e in letters[0].errors] == ["received_at"]
    assert "ahead of the receiver's clock" in letters[0].reason
    assert len([v for spec, _, v in out.records if spec is ALARMS_LOCATED]) == 1
