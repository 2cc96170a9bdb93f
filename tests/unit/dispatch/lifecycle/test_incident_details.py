"""What an incident tells the people on it: the first alarm, its words, who to call back."""

from __future__ import annotations

from datetime import timedelta

from dispatch.events import (
    AssignmentKind,
    AssignmentRole,
    ClassifiedAlarm,
    IncidentState,
    encode,
)
from dispatch.events.incidents import RECENT_MERGED_IDS
from dispatch.lifecycle import Offer, dispatch_offers, merge_alarm, open_incident
from dispatch.lifecycle.transitions import SYSTEM, state_change
from tests.unit.dispatch.lifecycle.test_lifecycle import POLICY, T0, classified

CALLER = {"reporter_name": "王丽", "reporter_phone": "+86 722 333 1234"}


def reported(**fields: object) -> ClassifiedAlarm:
    """Return a classified alarm with a caller, and any field changed."""
    return classified().model_copy(update={**CALLER, **fields})


def test_a_state_change_names_the_first_alarm_its_words_and_the_caller() -> None:
    alarm = reported(text="仓库门口有人抢劫\x00 快来", place_name="恒通 · 2号门")
    incident = open_incident(alarm)
    change = state_change(
        incident,
        IncidentState.CLASSIFIED,
        previous=incident.state,
        reason=None,
        actor=SYSTEM,
        at=T0,
    )
    assert change.first_alarm_id == alarm.alarm_id
    assert change.text == "仓库门口有人抢劫\ufffd 快来"  # printable whoever wrote the record
    assert (change.reporter_name, change.reporter_phone) == ("王丽", "+86 722 333 1234")
    assert (change.alarm_count, change.merged_alarm_ids) == (1, ())
    assert change.place_name == "恒通 · 2号门"


def test_the_text_is_cut_for_the_screen() -> None:
    incident = open_incident(reported(text="救" * 2000))
    assert incident.text == "救" * 500
    assert incident.summary == "救" * 200


def test_a_storm_carries_a_count_and_the_last_twenty_ids_not_every_id() -> None:
    first = reported()
    incident = open_incident(first)
    storm = [reported(incident_id=first.incident_id) for _ in range(300)]
    for n, alarm in enumerate(storm):
        at = T0 + timedelta(milliseconds=n)
        incident = merge_alarm(incident, alarm.model_copy(update={"classified_at": at})).incident
    change = state_change(
        incident, IncidentState.MERGED, previous=incident.state, reason=None, actor=SYSTEM, at=T0
    )
    assert change.alarm_count == 301
    assert change.first_alarm_id == first.alarm_id
    assert change.merged_alarm_ids == tuple(a.alarm_id for a in storm[-RECENT_MERGED_IDS:])
    assert len(encode(change)) < 3000  # it was 40 KB with 999 ids


def test_units_sent_get_the_callers_number_and_guards_alerted_nearby_do_not() -> None:
    incident = open_incident(reported(text="有人打架"))
    offers = (
        Offer("patrol-1", AssignmentRole.PRIMARY, AssignmentKind.ASSIGNMENT),
        Offer("guard-9", AssignmentRole.MUTUAL_AID, AssignmentKind.MUTUAL_AID_ALERT),
    )
    sent, alerted = dispatch_offers(incident, offers, now=T0, policy=POLICY).assignments
    assert (sent.reporter_name, sent.reporter_phone) == ("王丽", "+86 722 333 1234")
    assert (alerted.reporter_name, alerted.reporter_phone) == (None, None)
    assert sent.text == alerted.text == "有人打架"
