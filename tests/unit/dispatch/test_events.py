"""Tests for the event schemas, the topic catalog and the examples in docs/events.md."""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import AfterValidator, BaseModel, TypeAdapter, ValidationError

import dispatch.events as events
import dispatch.events.base as base
from dispatch.events import (
    MAX_KEY_BYTES,
    MAX_VALUE_BYTES,
    ROOT_FIELD,
    TOPICS,
    ClassifiedAlarm,
    CommanderCommand,
    DeadLetter,
    FieldError,
    IncidentTiming,
    InvalidEvent,
    Party,
    Position,
    RawAlarm,
    ResponseEvent,
    TopicSpec,
    UnitAvailability,
    UnitStatus,
    UnknownEventType,
    decode,
    encode,
    key_of,
    spec_for,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "events.md"
TOPIC_NAMES = sorted(TOPICS)
SHARED_TYPES: dict[str, type[BaseModel]] = {
    "Position": Position,
    "Party": Party,
    "IncidentTiming": IncidentTiming,
    "FieldError": FieldError,
}
CANONICAL_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
# Small example counts keep the whole file near a second; each example is a full parse.
FAST = settings(max_examples=60, deadline=None, database=None)

JsonPath = tuple[str | int, ...]
Node = tuple[str, JsonPath, dict[str, Any], Any]


@cache
def doc_sections() -> dict[str, str]:
    """Map each "## `name`" or "### `name`" heading of the doc to the text under it."""
    sections: dict[str, str] = {}
    current: str | None = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = re.fullmatch(r"#{2,3} `([^`]+)`\s*", line)
        if heading or line.startswith("#"):
            current = heading.group(1) if heading else None
            if current is not None:
                sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    return sections


def json_blocks(section: str) -> list[str]:
    return re.findall(r"```json\n(.*?)\n```", doc_sections().get(section, ""), re.DOTALL)


def table_fields(section: str) -> list[str]:
    return re.findall(r"^\| `([^`]+)` \|", doc_sections().get(section, ""), re.MULTILINE)


def example(topic: str) -> dict[str, Any]:
    """Return a fresh copy of the topic's documented example."""
    loaded: dict[str, Any] = json.loads(json_blocks(topic)[0])
    return loaded


def example_event(topic: str) -> Any:
    return decode(TOPICS[topic].model, json.dumps(example(topic)).encode())


@cache
def schema(topic: str) -> dict[str, Any]:
    model: type[BaseModel] = TOPICS[topic].model
    return model.model_json_schema()


def resolve(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow $ref and drop the null branch of an optional, giving the node that validates."""
    if "$ref" in node:
        return resolve(root, root["$defs"][node["$ref"].rsplit("/", 1)[-1]])
    if "anyOf" in node:
        (inner,) = [branch for branch in node["anyOf"] if branch.get("type") != "null"]
        return resolve(root, inner)
    return node


def walk(root: dict[str, Any], node: dict[str, Any], value: Any, path: JsonPath) -> list[Any]:
    node = resolve(root, node)
    found: list[Any] = [(path, node, value)]
    if isinstance(value, dict) and "properties" in node:
        for key, inner in value.items():
            if key not in node["properties"]:
                continue  # a derived value (computed field): written on output, never read
            found += walk(root, node["properties"][key], inner, (*path, key))
    elif isinstance(value, list) and "items" in node:
        for index, inner in enumerate(value):
            found += walk(root, node["items"], inner, (*path, index))
    return found


@cache
def nodes() -> tuple[Node, ...]:
    """Every value in every documented example, with its path and its schema node."""
    return tuple(
        (topic, path, node, value)
        for topic in TOPIC_NAMES
        # A missing example fails its own test below rather than the whole collection.
        if json_blocks(topic)
        for path, node, value in walk(schema(topic), schema(topic), example(topic), ())
    )


def pick(data: st.DataObject, keep: Callable[[Node], bool]) -> Node:
    return data.draw(st.sampled_from([node for node in nodes() if keep(node)]))


DELETE = object()


def with_value(topic: str, path: JsonPath, value: Any) -> dict[str, Any]:
    """Return the topic's example with the value at path replaced, or removed for DELETE."""
    payload = example(topic)
    parent: Any = payload
    for part in path[:-1]:
        parent = parent[part]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return payload


def assert_rejected_naming(topic: str, payload: dict[str, Any], path: JsonPath) -> None:
    field = ".".join(str(part) for part in path)
    with pytest.raises(InvalidEvent) as caught:
        decode(TOPICS[topic].model, json.dumps(payload).encode())
    assert [error.field for error in caught.value.errors] == [field]
    assert f": {field}: " in str(caught.value)


# The documentation is the contract: every topic, every field, every example.


@pytest.mark.parametrize("topic", TOPIC_NAMES)
def test_every_topic_has_a_section_with_one_complete_example(topic: str) -> None:
    assert len(json_blocks(topic)) == 1
    assert set(example(topic)) == set(TOPICS[topic].model.model_fields)


@pytest.mark.parametrize("topic", TOPIC_NAMES)
def test_doc_example_validates_and_is_written_canonically(topic: str) -> None:
    event = example_event(topic)
    assert isinstance(event, TOPICS[topic].model)
    assert json.loads(encode(event)) == example(topic)


@pytest.mark.parametrize(
    ("section", "model"),
    [(name, spec.model) for name, spec in TOPICS.items()] + list(SHARED_TYPES.items()),
)
def test_doc_table_lists_every_field(section: str, model: type[BaseModel]) -> None:
    assert table_fields(section) == list(model.model_fields)


# Round trips and the shape of every model.


@pytest.mark.parametrize("topic", TOPIC_NAMES)
def test_round_trip_through_json_bytes(topic: str) -> None:
    event = example_event(topic)
    again = decode(type(event), encode(event))
    assert again == event
    assert encode(again) == encode(event)
    assert type(event).model_validate(json.loads(encode(event))) == event


@pytest.mark.parametrize("topic", TOPIC_NAMES)
def test_events_are_frozen_and_hashable(topic: str) -> None:
    event = example_event(topic)
    for target in [event, *(v for v in dict(event).values() if isinstance(v, BaseModel))]:
        with pytest.raises(ValidationError, match="frozen"):
            setattr(target, next(iter(type(target).model_fields)), None)
    assert hash(event) == hash(example_event(topic))


def schema_nodes(node: Any) -> list[dict[str, Any]]:
    """Every object anywhere in a JSON schema, depth first."""
    found: list[dict[str, Any]] = []
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    if isinstance(node, dict):
        found.append(node)
    for child in children:
        found += schema_nodes(child)
    return found


@pytest.mark.parametrize("topic", TOPIC_NAMES)
def test_every_string_and_list_is_bounded(topic: str) -> None:
    for node in schema_nodes(schema(topic)):
        if node.get("type") == "string" and not {"enum", "format"} & set(node):
            assert "maxLength" in node, node
        if node.get("type") == "array":
            assert "maxItems" in node, node
    version = schema(topic)["properties"]["schema_version"]
    # Version 1 everywhere; dispatch.assignments also takes 2, for its stand-downs.
    assert version.get("enum", [version.get("const")]) == (
        [1, 2] if topic == "dispatch.assignments" else [1]
    )


def test_enum_values_are_lowercase_except_priority() -> None:
    enums = [v for v in vars(events).values() if isinstance(v, type) and issubclass(v, StrEnum)]
    assert events.Priority in enums
    for enum in enums:
        pattern = r"P[1-4]" if enum is events.Priority else r"[a-z][a-z_]*"
        assert all(re.fullmatch(pattern, member.value) for member in enum), enum


def test_a_record_without_its_id_is_refused() -> None:
    # A default id would give a replayed record a fresh id on every parse and defeat dedupe.
    payload = {"unit_id": "p-1", "status": "busy", "reported_at": "2026-11-26T03:04:05.123Z"}
    with pytest.raises(InvalidEvent, match="event_id: Field required"):
        decode(UnitStatus, json.dumps(payload).encode())


# Timestamps.


def status_at(reported_at: str) -> bytes:
    return json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "unit_id": "patrol-1",
            "status": "available",
            "reported_at": reported_at,
        }
    ).encode()


def test_naive_timestamp_is_rejected_in_python_and_on_the_wire() -> None:
    with pytest.raises(ValidationError, match="must include a timezone"):
        UnitStatus(
            event_id=uuid.uuid4(),
            unit_id="p-1",
            status=UnitAvailability.BUSY,
            reported_at=datetime(2026, 1, 1),
        )
    with pytest.raises(InvalidEvent, match="reported_at: Timestamp must include a timezone"):
        decode(UnitStatus, status_at("2026-11-26T03:04:05.123"))


@pytest.mark.parametrize(
    ("given", "written"),
    [
        ("2026-11-26T11:04:05.123+08:00", "2026-11-26T03:04:05.123Z"),
        ("2026-11-26T03:04:05.123999Z", "2026-11-26T03:04:05.123Z"),
        ("2026-11-26T03:04:05Z", "2026-11-26T03:04:05.000Z"),
        ("2026-11-25T22:04:05.5-05:00", "2026-11-26T03:04:05.500Z"),
        ("2026-01-01T07:59:59.9999+08:00", "2025-12-31T23:59:59.999Z"),
    ],
)
def test_timestamps_are_utc_truncated_to_ms_and_written_with_z(given: str, written: str) -> None:
    event = decode(UnitStatus, status_at(given))
    assert event.reported_at.utcoffset() == timedelta(0)
    assert json.loads(encode(event))["reported_at"] == written


def test_timestamp_out_of_range_in_utc_names_the_field() -> None:
    with pytest.raises(InvalidEvent, match="reported_at: Timestamp is out of range"):
        decode(UnitStatus, status_at("0001-01-01T00:00:00+01:00"))


offsets = st.integers(min_value=-1439, max_value=1439).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@FAST
@given(
    moment=st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30), timezones=offsets
    )
)
def test_any_aware_moment_normalises_and_round_trips(moment: datetime) -> None:
    event = UnitStatus(
        event_id=uuid.uuid4(), unit_id="patrol-1", status=UnitAvailability.BUSY, reported_at=moment
    )
    assert event.reported_at.utcoffset() == timedelta(0)
    assert event.reported_at <= moment < event.reported_at + timedelta(milliseconds=1)
    assert CANONICAL_TIMESTAMP.match(json.loads(encode(event))["reported_at"])
    assert decode(UnitStatus, encode(event)) == event


# The same reading with and without the fast path for our own form (dispatch.events.base).
PYDANTIC_ONLY = TypeAdapter(Annotated[datetime, AfterValidator(base._to_utc_millis)])
WITH_FAST_PATH = TypeAdapter(base.UtcTimestamp)


def read_both(text: str) -> tuple[object, object]:
    """Return what each reader makes of a JSON string: the instant, or the error's type."""
    answers: list[object] = []
    for reader in (PYDANTIC_ONLY, WITH_FAST_PATH):
        try:
            answers.append(reader.validate_json(json.dumps(text)))
        except ValidationError as exc:
            answers.append(exc.errors()[0]["type"])
    return answers[0], answers[1]


@FAST
@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    )
)
def test_our_own_form_reads_as_pydantic_reads_it_with_utc_itself(moment: datetime) -> None:
    written = moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    slow, fast = read_both(written)
    assert slow == fast
    assert isinstance(fast, datetime)
    assert fast.tzinfo is UTC


@FAST
@given(
    text=st.one_of(
        st.text(alphabet="0123456789-T:.Z +,W", min_size=24, max_size=24),
        # Our form with any one character changed (other digits, other separators).
        st.tuples(
            st.integers(min_value=0, max_value=23),
            st.sampled_from("0123456789-T:.Z +,W\u0663\uff13"),
        ).map(
            lambda change: (
                "2026-11-26T03:04:05.123Z"[: change[0]]
                + change[1]
                + "2026-11-26T03:04:05.123Z"[change[0] + 1 :]
            )
        ),
    )
)
def test_any_string_of_our_forms_length_reads_as_pydantic_reads_it(text: str) -> None:
    # Digits and separators anywhere: a shape the standard library reads differently from
    # pydantic (a space for T, a day 32, a leap second) must give pydantic's answer.
    slow, fast = read_both(text)
    assert slow == fast


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-26T03:04:05.123Z",
        "2026-11-26 03:04:05.123Z",
        "2026-11-32T03:04:05.123Z",
        "2026-11-26T23:59:60.000Z",
        "2026-02-29T03:04:05.123Z",
        "0000-01-01T00:00:00.000Z",
        "2026-W48-4T03:04:05.123Z",
        "2026-11-26T03:04:05,123Z",
        "\uff12026-11-26T03:04:05.123Z",  # a fullwidth digit two
    ],
)
def test_edge_strings_of_our_forms_length_read_as_pydantic_reads_them(text: str) -> None:
    slow, fast = read_both(text)
    assert slow == fast


# Invalid payloads: break exactly one field of a valid example; the error must name that field.


def is_container(node: dict[str, Any]) -> bool:
    return "properties" in node or node.get("type") == "array"


@FAST
@given(data=st.data())
def test_wrong_type_names_the_field(data: st.DataObject) -> None:
    topic, path, node, _ = pick(data, lambda n: n[1] != ())
    wrong = "scalar" if is_container(node) else data.draw(st.sampled_from([{"x": 1}, [1, 2]]))
    assert_rejected_naming(topic, with_value(topic, path, wrong), path)


def just_past(node: dict[str, Any], side: str) -> float:
    """Return the nearest value outside one numeric bound of a schema node."""
    if node["type"] == "integer":
        return int(node[side]) + (1 if side == "maximum" else -1)
    return math.nextafter(node[side], math.inf if side == "maximum" else -math.inf)


def beyond(data: st.DataObject, node: dict[str, Any]) -> Any:
    if "const" in node:
        return data.draw(st.integers().filter(lambda i: i != node["const"]))
    if "enum" in node:
        return data.draw(st.text(max_size=20).filter(lambda s: s not in node["enum"]))
    side = data.draw(st.sampled_from([s for s in ("minimum", "maximum") if s in node]))
    edge = just_past(node, side)
    far = edge + (10**6 if side == "maximum" else -(10**6))
    if node["type"] == "integer":
        values: st.SearchStrategy[float] = st.integers(int(min(edge, far)), int(max(edge, far)))
    else:
        values = st.floats(min(edge, far), max(edge, far))
    # Hypothesis rarely lands next to a bound by chance, so offer the edge itself as well.
    return data.draw(st.one_of(st.just(edge), values))


@FAST
@given(data=st.data())
def test_out_of_range_value_names_the_field(data: st.DataObject) -> None:
    bounded = {"minimum", "maximum", "enum", "const"}
    topic, path, node, _ = pick(data, lambda n: bool(bounded & set(n[2])))
    assert_rejected_naming(topic, with_value(topic, path, beyond(data, node)), path)


@FAST
@given(data=st.data())
def test_string_too_long_or_empty_names_the_field(data: st.DataObject) -> None:
    topic, path, node, _ = pick(
        data, lambda n: "maxLength" in n[2] and "contentEncoding" not in n[2]
    )
    too_long = "a" * (node["maxLength"] + data.draw(st.integers(1, 100)))
    value = data.draw(st.sampled_from([too_long, ""] if node.get("minLength") else [too_long]))
    assert_rejected_naming(topic, with_value(topic, path, value), path)


@FAST
@given(data=st.data())
def test_list_too_long_names_the_field(data: st.DataObject) -> None:
    topic, path, node, value = pick(data, lambda n: "maxItems" in n[2] and bool(n[3]))
    too_long = value[:1] * (node["maxItems"] + data.draw(st.integers(1, 20)))
    assert_rejected_naming(topic, with_value(topic, path, too_long), path)


@FAST
@given(data=st.data())
def test_unknown_field_names_the_field(data: st.DataObject) -> None:
    topic, path, node, _ = pick(data, lambda n: "properties" in n[2] and isinstance(n[3], dict))
    names = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
    name = data.draw(names.filter(lambda s: s not in node["properties"]))
    extra: object = data.draw(st.sampled_from([1, "x", None, [], {}]))
    assert_rejected_naming(topic, with_value(topic, (*path, name), extra), (*path, name))


@FAST
@given(data=st.data())
def test_missing_required_field_names_the_field(data: st.DataObject) -> None:
    topic, path, node, value = pick(
        data, lambda n: isinstance(n[3], dict) and bool(set(n[2].get("required", [])) & set(n[3]))
    )
    name = data.draw(st.sampled_from([key for key in node["required"] if key in value]))
    assert_rejected_naming(topic, with_value(topic, (*path, name), DELETE), (*path, name))


def node_at(topic: str, path: JsonPath) -> dict[str, Any]:
    return next(node for t, p, node, _ in nodes() if (t, p) == (topic, path))


def cases(keep: Callable[[dict[str, Any]], bool], sides: tuple[str, ...] = ()) -> list[Any]:
    """Parametrize over (topic, path[, side]) for every documented value whose node passes keep."""
    if not sides:
        return [
            pytest.param(topic, path, id=":".join([topic, *map(str, path)]))
            for topic, path, node, _ in nodes()
            if keep(node)
        ]
    return [
        pytest.param(topic, path, side, id=":".join([topic, *map(str, path), side]))
        for topic, path, node, _ in nodes()
        if keep(node)
        for side in sides
        if side in node
    ]


@pytest.mark.parametrize(
    ("topic", "path", "side"), cases(lambda n: "type" in n, ("minimum", "maximum"))
)
def test_numeric_bounds_are_inclusive(topic: str, path: JsonPath, side: str) -> None:
    node = node_at(topic, path)
    decode(TOPICS[topic].model, json.dumps(with_value(topic, path, node[side])).encode())
    assert_rejected_naming(topic, with_value(topic, path, just_past(node, side)), path)


# Rules that span fields.


def test_ack_deadline_must_follow_dispatch() -> None:
    payload = example("dispatch.assignments")
    for deadline in [payload["dispatched_at"], "2026-11-26T03:00:00.000Z"]:
        payload["ack_deadline"] = deadline
        assert_rejected_naming("dispatch.assignments", payload, ("ack_deadline",))


def test_decline_needs_a_reason_and_other_actions_do_not() -> None:
    payload = example("responses.events")
    del payload["reason"]
    assert_rejected_naming("responses.events", payload, ("reason",))
    payload["action"] = "accept"
    assert decode(ResponseEvent, json.dumps(payload).encode()).reason is None


def test_merged_into_must_be_the_alarms_own_incident() -> None:
    payload = example("alarms.classified")
    payload["merged_into"] = payload["incident_id"]
    assert decode(ClassifiedAlarm, json.dumps(payload).encode()).merged_into is not None
    payload["merged_into"] = str(uuid.uuid4())
    assert_rejected_naming("alarms.classified", payload, ("merged_into",))


@pytest.mark.parametrize(("topic", "path"), cases(lambda n: n.get("type") == "number"))
def test_numbers_reject_nan_and_infinity(topic: str, path: JsonPath) -> None:
    for value in [math.nan, math.inf, -math.inf]:
        # json.dumps writes these as the NaN / Infinity tokens that some producers emit.
        assert_rejected_naming(topic, with_value(topic, path, value), path)


# The limits the brief sets, pinned: the generated tests above derive theirs from the schema.
PINNED_LIMITS: dict[tuple[str, str], dict[str, Any]] = {
    ("alarms.raw", "text"): {"minLength": 1, "maxLength": 20_000},
    ("alarms.raw", "idempotency_key"): {"maxLength": 128},
    ("alarms.raw", "place_name"): {"minLength": 1, "maxLength": 200},
    ("alarms.raw", "source_id"): {"pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"},
    ("alarms.raw", "position.lat"): {"minimum": -90, "maximum": 90},
    ("alarms.raw", "position.lon"): {"minimum": -180, "maximum": 180},
    ("alarms.raw", "position.accuracy_m"): {"minimum": 0, "maximum": 100_000},
    ("alarms.classified", "required_capabilities"): {"maxItems": 8},
    ("dispatch.assignments", "attempt"): {"minimum": 1, "maximum": 100},
    ("dispatch.assignments", "eta_s"): {"minimum": 0},
    ("incidents.state", "parties"): {"maxItems": 64},
    ("incidents.state", "merged_alarm_ids"): {"maxItems": 1000},
    ("alarms.dlq", "partition"): {"minimum": 0},
    ("alarms.dlq", "offset"): {"minimum": 0},
    ("alarms.dlq", "errors"): {"maxItems": 50},
}


@pytest.mark.parametrize(("topic", "path", "limits"), [(*k, v) for k, v in PINNED_LIMITS.items()])
def test_limits_are_the_agreed_ones(topic: str, path: str, limits: dict[str, Any]) -> None:
    node = node_at(topic, tuple(path.split(".")))
    assert {key: node.get(key) for key in limits} == limits


def test_timing_durations_count_from_received() -> None:
    timing = example_event("incidents.state").timing
    assert timing.to_classify_s == pytest.approx(0.057)
    assert timing.to_dispatch_s == pytest.approx(0.107)
    assert timing.to_deliver_s == pytest.approx(0.289)
    assert timing.to_accept_s == pytest.approx(14.887)
    assert timing.to_scene_s is None
    assert timing.to_resolve_s is None
    assert IncidentTiming().to_dispatch_s is None


# The catalog: keys, decode errors, unknown types.


def test_catalog_keys_and_compaction() -> None:
    assert {name: (spec.key_field, spec.compacted) for name, spec in TOPICS.items()} == {
        "alarms.raw": ("source_id", False),
        "alarms.located": ("merge_key", False),
        "alarms.classified": ("incident_id", False),
        "dispatch.assignments": ("unit_id", False),
        "responses.events": ("incident_id", False),
        "units.status": ("unit_id", True),
        "units.reservations": ("unit_id", False),
        "incidents.state": ("incident_id", False),
        "alarms.dlq": ("source_topic", False),
        "dispatch.ticks": ("incident_id", False),
        "commander.commands": ("incident_id", False),
        "commander.outcomes": ("incident_id", False),
    }


@pytest.mark.parametrize("topic", TOPIC_NAMES)
def test_key_of_is_the_key_field_as_text(topic: str) -> None:
    event = example_event(topic)
    assert spec_for(type(event)) is TOPICS[topic]
    assert key_of(event) == example(topic)[TOPICS[topic].key_field].encode()


def test_key_of_follows_subclasses_and_rejects_other_models() -> None:
    class ReplayedAlarm(RawAlarm):
        pass

    raw = example_event("alarms.raw")
    assert key_of(ReplayedAlarm.model_validate(dict(raw))) == key_of(raw)
    with pytest.raises(UnknownEventType, match="Position"):
        key_of(Position(lat=0, lon=0))
    with pytest.raises(ValueError, match="no key field 'nope'"):
        TopicSpec(name="x", model=RawAlarm, key_field="nope", compacted=False, description="")


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'"text"', b""])
def test_payload_that_is_not_an_object_names_the_root(raw: bytes) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode(RawAlarm, raw)
    assert [error.field for error in caught.value.errors] == [ROOT_FIELD]


def test_invalid_event_lists_every_field_and_bounds_hostile_names() -> None:
    payload = example("alarms.raw")
    del payload["text"]
    payload["x" * 10_000] = 1
    with pytest.raises(InvalidEvent) as caught:
        decode(RawAlarm, json.dumps(payload).encode())
    fields = [error.field for error in caught.value.errors]
    assert fields == ["text", "x" * 200]
    assert str(caught.value) == "invalid RawAlarm: text: Field required (and 1 more)"
    assert isinstance(caught.value.__cause__, ValidationError)


# Dead letters keep the original bytes, cut to the bounds.


def capture(**overrides: Any) -> DeadLetter:
    fields: dict[str, Any] = {
        "source_topic": "alarms.raw",
        "partition": 0,
        "offset": 7,
        "key": b"desk-1",
        "value": b"\xff\x00 not json",
        "reason": "not JSON",
        "stage": "classify",
        "failed_at": datetime(2026, 11, 26, tzinfo=UTC),
    }
    return DeadLetter.capture(**{**fields, **overrides})


def test_dead_letter_keeps_arbitrary_bytes_as_base64() -> None:
    letter = capture()
    wire = json.loads(encode(letter))
    assert (wire["key"], wire["value"]) == ("ZGVzay0x", "/wAgbm90IGpzb24=")
    assert decode(DeadLetter, encode(letter)) == letter
    assert not letter.key_truncated
    assert not letter.value_truncated


def test_dead_letter_capture_cuts_everything_oversized() -> None:
    assert (MAX_KEY_BYTES, MAX_VALUE_BYTES) == (1024, 1024 * 1024)
    errors = [FieldError(field=f"f{i}", message="bad") for i in range(60)]
    letter = capture(
        key=b"k" * (MAX_KEY_BYTES + 1),
        value=b"v" * (MAX_VALUE_BYTES + 1),
        reason="r" * 5000,
        errors=errors,
    )
    assert (len(letter.key or b""), letter.key_truncated) == (MAX_KEY_BYTES, True)
    assert (len(letter.value), letter.value_truncated) == (MAX_VALUE_BYTES, True)
    assert (len(letter.reason), len(letter.errors)) == (2000, 50)
    assert decode(DeadLetter, encode(letter)) == letter


def test_dead_letter_capture_of_a_tombstone_without_key() -> None:
    letter = capture(key=None, value=None, reason="")
    assert (letter.key, letter.value, letter.reason) == (None, b"", "unknown")
    assert not letter.key_truncated


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not base64!", "not valid base64"),
        ("YWJj\nZGVm", "not valid base64"),
        ("YWJjZ", "not valid base64"),
        ({"x": 1}, "valid bytes"),
    ],
)
def test_dead_letter_rejects_bad_base64_naming_the_field(value: object, message: str) -> None:
    payload = with_value("alarms.dlq", ("value",), value)
    with pytest.raises(InvalidEvent, match=f"^invalid DeadLetter: value: .*{message}"):
        decode(DeadLetter, json.dumps(payload).encode())


def test_dead_letter_rejects_a_decoded_value_over_one_mib() -> None:
    oversized = encode(capture()).replace(
        b"/wAgbm90IGpzb24=", b"A" * (MAX_VALUE_BYTES // 3 * 4 + 4)
    )
    with pytest.raises(InvalidEvent, match=r"^invalid DeadLetter: value: Data should have at most"):
        decode(DeadLetter, oversized)


def test_dead_letter_id_is_the_same_for_the_same_record() -> None:
    # A replayed bad record must produce the same dead letter, not a second one.
    assert capture().event_id == capture(reason="other wording").event_id
    assert capture().event_id != capture(offset=8).event_id
    assert capture().event_id != capture(partition=1).event_id


def test_timing_durations_are_written_but_recomputed_on_read() -> None:
    timing = example_event("incidents.state").timing
    wire = json.loads(timing.model_dump_json())
    assert wire["to_accept_s"] == pytest.approx(14.887)
    wire["to_accept_s"] = 0.001  # a producer cannot make the duration disagree
    assert IncidentTiming.model_validate(wire).to_accept_s == pytest.approx(14.887)


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"action": "assign"}, "unit_id"),
        ({"action": "reassign", "unit_id": "p-2"}, "from_unit_id"),
        ({"action": "cancel", "from_unit_id": "p-1"}, "from_unit_id"),
        ({"action": "cancel", "unit_id": "p-1"}, "unit_id"),
        ({"action": "close", "unit_id": "p-1"}, "unit_id"),
    ],
)
def test_commander_command_units_fit_the_action(fields: dict[str, Any], bad_field: str) -> None:
    payload = {
        "event_id": str(uuid.uuid4()),
        "incident_id": str(uuid.uuid4()),
        "actor": "commander-1",
        "issued_at": "2026-11-26T03:04:05.123Z",
        **fields,
    }
    with pytest.raises(InvalidEvent) as caught:
        decode(CommanderCommand, json.dumps(payload).encode())
    assert [e.field for e in caught.value.errors] == [bad_field]


# Instants already observed may be a little ahead of the reader's clock, never far ahead.


def raw_alarm_at(received_at: str) -> bytes:
    return json.dumps(
        {
            "alarm_id": str(uuid.uuid4()),
            "received_at": received_at,
            "source_kind": "hotline",
            "source_id": "hotline-1",
            "text": "fire",
        }
    ).encode()


def ahead(by: timedelta) -> str:
    """Return the instant by ahead of now; called in the test, not when tests are collected."""
    return (datetime.now(UTC) + by).isoformat()


@pytest.mark.parametrize(
    "received_at",
    [
        lambda: "2999-01-01T00:00:00.000Z",
        lambda: "9999-12-31T23:59:59.999Z",
        lambda: ahead(events.base.MAX_AHEAD_OF_CLOCK + timedelta(minutes=1)),
    ],
    ids=["year-2999", "year-9999", "six-minutes-ahead"],
)
def test_a_raw_alarm_received_far_in_the_future_is_invalid_naming_received_at(
    received_at: Callable[[], str],
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode(RawAlarm, raw_alarm_at(received_at()))
    assert [e.field for e in caught.value.errors] == ["received_at"]
    assert "5 minutes ahead of the receiver's clock" in caught.value.errors[0].message


@pytest.mark.parametrize(
    "received_at",
    [
        lambda: ahead(events.base.MAX_AHEAD_OF_CLOCK - timedelta(minutes=1)),
        lambda: ahead(timedelta(0)),
        lambda: "2026-11-26T03:04:05.123Z",
        lambda: "1970-01-02T00:00:00.000Z",
    ],
    ids=["four-minutes-ahead", "now", "last-month", "1970"],
)
def test_a_raw_alarm_a_little_ahead_now_or_past_is_valid(received_at: Callable[[], str]) -> None:
    assert decode(RawAlarm, raw_alarm_at(received_at())).received_at.year >= 1970


def test_a_command_issued_far_in_the_future_is_invalid_naming_issued_at() -> None:
    payload = {
        "event_id": str(uuid.uuid4()),
        "incident_id": str(uuid.uuid4()),
        "action": "cancel",
        "actor": "commander-1",
        "issued_at": "2999-01-01T00:00:00.000Z",
    }
    with pytest.raises(InvalidEvent) as caught:
        decode(CommanderCommand, json.dumps(payload).encode())
    assert [e.field for e in caught.value.errors] == ["issued_at"]
