"""What events become in the record's tables (consumers/sink/rows.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from consumers.sink.rows import (
    ALARM_COLUMNS,
    INCIDENT_COLUMNS,
    classified_alarm_row,
    event_row,
    incident_rows,
    raw_alarm_row,
    sink_skip,
)
from dispatch.events import (
    Category,
    ClassifiedAlarm,
    DeadLetter,
    EventModel,
    IncidentState,
    IncidentStateChange,
    IncidentTiming,
    Position,
    Priority,
    RawAlarm,
    SourceKind,
    UnitAvailability,
    UnitStatus,
)
from tests.integration.sink_events import story

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
INCIDENT = uuid.uuid4()


def change(
    seconds: float, state: IncidentState, *, position: Position | None = None
) -> IncidentStateChange:
    return IncidentStateChange(
        event_id=uuid.uuid4(),
        incident_id=INCIDENT,
        state=state,
        actor="system",
        at=T0 + timedelta(seconds=seconds),
        priority=Priority.P1,
        category=Category.FIRE,
        position=position,
        timing=IncidentTiming(received_at=T0),
    )


def fields(row: tuple[object, ...]) -> dict[str, object]:
    return dict(zip(INCIDENT_COLUMNS, row, strict=True))


def test_the_latest_change_makes_the_row_and_the_first_closing_one_closes_it() -> None:
    changes = [
        change(1, IncidentState.CLASSIFIED),
        change(9, IncidentState.CANCELLED),
        change(5, IncidentState.DISPATCHED),
        change(12, IncidentState.RESOLVED),
    ]
    (row,) = incident_rows([(c, "{}") for c in changes])
    got = fields(row)
    assert (got["state"], got["last_event_id"]) == ("resolved", changes[3].event_id)
    assert got["opened_at"] == T0 + timedelta(seconds=1)
    assert got["updated_at"] == T0 + timedelta(seconds=12)
    assert got["closed_at"] == T0 + timedelta(seconds=9)
    assert got["is_open"] is False


def test_merged_leaves_an_incident_open() -> None:
    (row,) = incident_rows([(change(1, IncidentState.MERGED), "{}")])
    assert (fields(row)["is_open"], fields(row)["closed_at"]) == (True, None)


def test_of_two_changes_at_one_instant_the_later_read_wins() -> None:
    first, second = change(3, IncidentState.DECLINED), change(3, IncidentState.ESCALATED)
    (row,) = incident_rows([(first, "{}"), (second, "{}")])
    assert fields(row)["last_event_id"] == second.event_id


def test_the_grid_comes_from_the_zone_at_the_position() -> None:
    where = Position(lat=31.7, lon=113.4)
    seen: list[Position] = []

    def grid_of(position: Position) -> str | None:
        seen.append(position)
        return "cd-g03"

    (row,) = incident_rows([(change(1, IncidentState.CLASSIFIED, position=where), "{}")], grid_of)
    assert fields(row)["grid_id"] == "cd-g03"
    assert seen == [where]
    # Without a position (or a zone) it is left to the first alarm's grid, in SQL.
    (row,) = incident_rows([(change(1, IncidentState.CLASSIFIED), "{}")], grid_of)
    assert fields(row)["grid_id"] is None


def test_each_event_has_its_kind_time_and_id_in_the_timeline() -> None:
    s = story(3, T0)
    made = [
        event_row(e, detail="{}", topic="t", partition=1, offset=7)
        for e in s.events
        if not isinstance(e, RawAlarm | UnitStatus)
    ]
    rows = [r for r in made if r is not None]
    assert len(rows) == len(made)
    assert {r.event_id for r in rows} == s.timeline_ids
    kinds = [(r.kind, r.at - T0, r.unit_id) for r in rows]
    assert kinds[:4] == [
        ("alarm", timedelta(seconds=0.05), None),
        ("state", timedelta(seconds=0.05), None),
        ("assignment", timedelta(seconds=1), s.unit_id),
        ("state", timedelta(seconds=1), None),
    ]
    assert ("response", timedelta(seconds=2), s.unit_id) in kinds  # the ack: the delivery
    assert ("command", timedelta(seconds=300), None) in kinds
    assert ("command_outcome", timedelta(seconds=300), None) in kinds
    assert all((r.source_topic, r.source_partition, r.source_offset) == ("t", 1, 7) for r in rows)


def test_raw_alarms_and_unit_reports_make_no_timeline_row() -> None:
    s = story(1, T0)
    assert event_row(s.events[0], detail="{}", topic=None, partition=None, offset=None) is None
    status = UnitStatus(
        event_id=uuid.uuid4(), unit_id="u", status=UnitAvailability.BUSY, reported_at=T0
    )
    assert event_row(status, detail="{}", topic=None, partition=None, offset=None) is None


def test_an_alarm_moved_to_a_new_incident_gets_a_row_in_each() -> None:
    classified = story(1, T0).events[1]
    moved: EventModel = classified.model_copy(update={"incident_id": uuid.uuid4()})
    first = event_row(classified, detail="{}", topic=None, partition=None, offset=None)
    second = event_row(moved, detail="{}", topic=None, partition=None, offset=None)
    assert first is not None
    assert second is not None
    assert first.event_id != second.event_id


def test_the_classified_record_completes_the_raw_one() -> None:
    s = story(1, T0)
    alarm, classified = s.events[:2]
    assert isinstance(alarm, RawAlarm)
    assert isinstance(classified, ClassifiedAlarm)
    raw = dict(zip(ALARM_COLUMNS, raw_alarm_row(alarm), strict=True))
    done = dict(zip(ALARM_COLUMNS, classified_alarm_row(classified), strict=True))
    assert raw["classified_at"] is None
    assert raw["source_kind"] == SourceKind.HOTLINE.value
    assert (done["incident_id"], done["category"], done["grid_id"]) == (
        s.incident_id,
        "fight",
        "cd-g03",
    )


def test_what_the_sink_sets_aside_is_a_dead_letter_of_its_own() -> None:
    def mine() -> DeadLetter:
        return sink_skip(
            topic="alarms.raw", partition=2, offset=40, index=None, key=b"k", value=b"\x00",
            reason="no", at=T0,
        )  # fmt: skip

    stage = DeadLetter.capture(
        source_topic="alarms.raw", partition=2, offset=40, key=b"k", value=b"\x00",
        reason="no", stage="classify", failed_at=T0,
    )  # fmt: skip
    assert mine().stage == "sink"
    assert mine().event_id == mine().event_id  # read again, set aside under the same id
    assert mine().event_id != stage.event_id  # beside the stage's own letter, not instead
