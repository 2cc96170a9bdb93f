"""One row per alarm for a batch that holds its raw and its classified record
(consumers/sink/rows.py classified_over_raw): the writer's upsert may touch a row once."""

from __future__ import annotations

from datetime import UTC, datetime

from consumers.sink.rows import (
    ALARM_COLUMNS,
    classified_alarm_row,
    classified_over_raw,
    raw_alarm_row,
)
from dispatch.events import ClassifiedAlarm, RawAlarm
from tests.integration.sink_events import story

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def pair() -> tuple[RawAlarm, ClassifiedAlarm]:
    alarm, classified = story(1, T0).events[:2]
    assert isinstance(alarm, RawAlarm)
    assert isinstance(classified, ClassifiedAlarm)
    return alarm, classified


def test_the_raw_record_says_who_and_what_the_classified_adds_the_classification() -> None:
    alarm, classified = pair()
    raw = alarm.model_copy(update={"text": "raw text", "place_id": "p-raw", "place_name": "raw"})
    done = classified.model_copy(update={"text": "classified text", "place_id": "p-classified"})
    row = dict(
        zip(
            ALARM_COLUMNS,
            classified_over_raw(raw_alarm_row(raw), classified_alarm_row(done)),
            strict=True,
        )
    )
    # What the upsert keeps of a stored raw row: its text and reporter, its place where the
    # classified record names none.
    assert (row["text"], row["reporter_name"]) == ("raw text", alarm.reporter_name)
    assert (row["place_id"], row["place_name"]) == ("p-classified", "raw")
    # What it sets from the classified row.
    assert (row["incident_id"], row["classified_at"], row["grid_id"], row["category"]) == (
        classified.incident_id,
        classified.classified_at,
        classified.grid_id,
        classified.category,
    )
    assert (row["lat"], row["lon"]) == (classified.position.lat, classified.position.lon)
    assert row["alarm_id"] == alarm.alarm_id


def test_the_classified_place_stands_where_the_raw_record_had_none() -> None:
    alarm, classified = pair()
    raw = alarm.model_copy(update={"place_id": None, "place_name": None, "position": None})
    done = classified.model_copy(update={"place_id": "p-7", "place_name": "east gate"})
    merged = classified_over_raw(raw_alarm_row(raw), classified_alarm_row(done))
    row = dict(zip(ALARM_COLUMNS, merged, strict=True))
    assert (row["place_id"], row["place_name"]) == ("p-7", "east gate")
    assert (row["lat"], row["lon"]) == (classified.position.lat, classified.position.lon)
    assert row["received_at"] == alarm.received_at
