"""Tests for `classify`: the shipped rules on realistic alarms, and the engine on small rules."""

from __future__ import annotations

import itertools
import re
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.classify import Classification, Rules, classify, default_rules_path, load_rules
from dispatch.events.alarms import Category, PlaceType, Priority, SensorKind, SourceKind

RULES = load_rules(default_rules_path())
CAPABILITY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
FAST = settings(max_examples=300, deadline=None, database=None)

# Full-width "FIRE", as a Chinese input method types it; escaped so no reader mistakes it.
FULL_WIDTH_FIRE = "\uff26\uff29\uff32\uff25"

C, P, S, K, T = Category, Priority, SourceKind, SensorKind, PlaceType


class Case(NamedTuple):
    text: str
    category: Category
    priority: Priority
    capabilities: tuple[str, ...]
    place: PlaceType | None = None
    source: SourceKind = S.HOTLINE
    sensor: SensorKind | None = None
    units: int = 1


CASES = [
    Case("化工厂仓库起火,有人受伤", C.FIRE, P.P1, ("fire", "medical"), T.ENTERPRISE, units=2),
    Case("电瓶车在小区楼道充电时起火", C.FIRE, P.P1, ("fire",), T.RESIDENTIAL, units=2),
    Case(FULL_WIDTH_FIRE + "\uff01\uff13楼冒烟", C.FIRE, P.P1, ("fire",), units=2),
    Case("Thick smoke coming out of a shop on Jiefang Road", C.FIRE, P.P1, ("fire",), units=2),
    Case("Someone snatched a bag near the station square", C.ROBBERY, P.P1, ("patrol",), units=2),
    Case("有人飞车抢夺路人手机", C.ROBBERY, P.P1, ("patrol",), T.ROAD, units=2),
    Case("有人持刀抢劫金店", C.ROBBERY, P.P1, ("patrol",), units=2),
    Case("Robbery at the warehouse office", C.ROBBERY, P.P1, ("patrol",), T.ENTERPRISE, units=2),
    Case("抢劫 and 打架", C.ROBBERY, P.P1, ("patrol",), units=2),
    Case("两人在学校门口打架", C.FIGHT, P.P1, ("patrol",), T.SCHOOL),
    Case("两伙人在KTV门口斗殴,有人拿刀", C.FIGHT, P.P1, ("patrol",), units=2),
    Case("A fight broke out at the bar, one man bleeding", C.FIGHT, P.P2, ("patrol", "medical")),
    Case("门卫室报告有醉汉闹事", C.FIGHT, P.P2, ("patrol",), T.ENTERPRISE, S.DESK),
    Case("Shots fired near the park entrance", C.FIGHT, P.P1, ("patrol",), T.PARK, units=2),
    Case("燃气泄漏,闻到很大的气味", C.HAZARD, P.P2, ("fire",), T.RESIDENTIAL),
    Case("Gas leak in the basement of building 3", C.HAZARD, P.P2, ("fire",)),
    Case("小区围墙倒塌,有人被困", C.HAZARD, P.P1, ("fire", "medical"), T.RESIDENTIAL),
    Case("A live wire is down across the footpath", C.HAZARD, P.P2, ("fire",)),
    Case("316国道发生两车追尾", C.TRAFFIC, P.P1, ("patrol",), T.ROAD),
    Case(
        "Car crash on National Road 316, driver injured",
        C.TRAFFIC,
        P.P1,
        ("patrol", "medical"),
        T.ROAD,
    ),
    Case("停车场两车剐蹭", C.TRAFFIC, P.P3, ("patrol",), T.PARKING),
    Case("路口电动车与货车相撞,司机被困", C.TRAFFIC, P.P1, ("patrol", "medical")),
    Case("老人在公园晕倒了", C.MEDICAL, P.P1, ("medical",), T.PARK),
    Case("A man collapsed and is not breathing outside the bank", C.MEDICAL, P.P1, ("medical",)),
    Case("学生在宿舍抽搐,呼吸困难", C.MEDICAL, P.P1, ("medical",), T.SCHOOL),
    Case("装修工人从脚手架摔倒受伤", C.MEDICAL, P.P1, ("medical",), T.ENTERPRISE, S.GUARD),
    Case("有人翻墙进入厂区", C.INTRUSION, P.P2, ("patrol",), T.ENTERPRISE, S.GUARD),
    Case("Intruder climbing over the school fence", C.INTRUSION, P.P1, ("patrol",), T.SCHOOL),
    Case("厂区北门有陌生人试图撬门", C.INTRUSION, P.P2, ("patrol",), T.ENTERPRISE, S.GUARD),
    Case("周界报警 防区3", C.INTRUSION, P.P2, ("patrol",), T.ENTERPRISE, S.SENSOR, K.ANTI_CLIMB),
    Case("door forced", C.INTRUSION, P.P2, ("patrol",), T.RESIDENTIAL, S.SENSOR, K.LOCK),
    Case("alarm", C.INTRUSION, P.P2, ("patrol",), T.RESIDENTIAL, S.SENSOR, K.HOME_MONITOR),
    Case("电动车被偷了", C.THEFT, P.P3, ("patrol",), T.RESIDENTIAL),
    Case("My phone was stolen on bus 12", C.THEFT, P.P3, ("patrol",)),
    Case("扒手在车站偷钱包", C.THEFT, P.P3, ("patrol",), T.STATION_SQUARE),
    Case("工厂仓库被盗,门锁被撬坏", C.THEFT, P.P2, ("patrol",), T.ENTERPRISE, S.DESK),
    Case("校门口有可疑人员徘徊", C.SUSPICIOUS_PERSON, P.P2, ("patrol",), T.SCHOOL),
    Case(
        "Suspicious man loitering in the car park",
        C.SUSPICIOUS_PERSON,
        P.P3,
        ("patrol",),
        T.PARKING,
    ),
    Case("motion zone 2", C.SUSPICIOUS_PERSON, P.P3, ("patrol",), None, S.SENSOR, K.CAMERA_A),
    Case("motion zone 9", C.SUSPICIOUS_PERSON, P.P4, ("patrol",), None, S.SENSOR, K.CAMERA_B),
    Case("邻里因噪音发生纠纷", C.DISPUTE, P.P3, ("mediation",), T.RESIDENTIAL),
    Case("邻居停车纠纷,已打电话报警", C.DISPUTE, P.P3, ("mediation",)),
    Case("因欠薪发生纠纷,双方推搡", C.DISPUTE, P.P3, ("mediation", "patrol"), T.ENTERPRISE),
    Case("商场门口有人吵架", C.DISPUTE, P.P3, ("mediation",)),
    Case(
        "Neighbours arguing, one threatened to hit the other",
        C.DISPUTE,
        P.P3,
        ("mediation", "patrol"),
    ),
    Case("孩子在火车站广场走失了", C.HELP_REQUEST, P.P2, ("patrol",), T.STATION_SQUARE),
    Case("Lost child at the train station, red coat", C.HELP_REQUEST, P.P2, ("patrol",)),
    Case("Help, I am locked out of my car", C.HELP_REQUEST, P.P3, ("patrol",), T.PARKING),
    Case("请派人过来看一下", C.OTHER, P.P3, ("patrol",)),
    Case("device 17 triggered", C.OTHER, P.P3, ("patrol",), None, S.SENSOR, K.OTHER),
    Case("The fireplace in the lobby is broken", C.OTHER, P.P3, ("patrol",)),
    Case("The robot at the gate is stuck", C.OTHER, P.P3, ("patrol",)),
    Case("有人拿着菜刀在街上走", C.OTHER, P.P1, ("patrol",), T.ROAD, units=2),
]


@pytest.mark.parametrize("case", CASES, ids=[c.text[:40] for c in CASES])
def test_shipped_rules_classify_realistic_alarms(case: Case) -> None:
    got = classify(
        RULES,
        text=case.text,
        source_kind=case.source,
        sensor_kind=case.sensor,
        place_type=case.place,
    )
    assert (got.category, got.priority) == (case.category, case.priority)
    assert got.required_capabilities == case.capabilities
    assert got.units_needed == case.units


def test_matched_names_the_deciding_keywords() -> None:
    got = classify(RULES, text="化工厂仓库起火,有人受伤", source_kind=S.HOTLINE)
    assert got.matched == ("起火", "受伤")
    english = classify(RULES, text="Two men injured in a robbery", source_kind=S.DESK)
    assert english.matched == ("robber*", "injur*")  # wildcards are reported as written


def test_matched_names_the_source_rule_when_no_keyword_decided() -> None:
    got = classify(RULES, text="zone 3", source_kind=S.SENSOR, sensor_kind=K.ANTI_CLIMB)
    assert got.matched == ("source:sensor/anti_climb",)
    assert classify(RULES, text="请派人来", source_kind=S.HOTLINE).matched == ()


def test_keywords_beat_source_rules() -> None:
    got = classify(RULES, text="仓库烟雾报警", source_kind=S.SENSOR, sensor_kind=K.CAMERA_B)
    assert (got.category, got.priority) == (C.FIRE, P.P1)


def test_negation_is_out_of_scope() -> None:
    # Documented limit: a denial matches like the word it denies; the commander cancels.
    assert classify(RULES, text="没有着火,误报", source_kind=S.HOTLINE).category is C.FIRE
    assert classify(RULES, text="There is no fire", source_kind=S.HOTLINE).category is C.FIRE


# One plain keyword per category, to check that the more severe category always wins.
SAMPLES = {
    C.FIRE: "起火", C.ROBBERY: "抢劫", C.FIGHT: "fight", C.HAZARD: "燃气", C.TRAFFIC: "车祸",
    C.MEDICAL: "晕倒", C.INTRUSION: "intruder", C.THEFT: "盗窃", C.SUSPICIOUS_PERSON: "可疑",
    C.DISPUTE: "dispute", C.HELP_REQUEST: "求助",
}  # fmt: skip


@pytest.mark.parametrize(
    ("severe", "mild"),
    [(a, b) for a, b in itertools.combinations(SAMPLES, 2)],
    ids=lambda c: str(c),
)
def test_more_severe_category_wins_in_either_order(severe: Category, mild: Category) -> None:
    for text in (f"{SAMPLES[severe]} {SAMPLES[mild]}", f"{SAMPLES[mild]},{SAMPLES[severe]}"):
        assert classify(RULES, text=text, source_kind=S.HOTLINE).category is severe


def test_samples_cover_every_keyword_category_in_rank_order() -> None:
    assert list(SAMPLES) == [c for c, _ in RULES.ranked_matchers]


def small_rules(**changes: Any) -> Rules:
    """Build rules where every category has one keyword, its own name, then apply changes."""
    keyword_categories = [c for c in Category if c is not C.OTHER]
    categories: dict[str, Any] = {
        c.value: {"rank": i, "priority": "P3", "capabilities": ["patrol"], "keywords": [c.value]}
        for i, c in enumerate(keyword_categories, start=1)
    }
    categories["other"] = {"priority": "P3", "capabilities": ["patrol"]}
    return Rules.model_validate({"schema_version": 1, "categories": categories, **changes})


@pytest.mark.parametrize(
    ("raise_by", "expected"),
    [(3, P.P1), (1, P.P2), (0, P.P3), (-1, P.P4), (-3, P.P4)],
)
def test_place_shift_clamps_to_p1_and_p4(raise_by: int, expected: Priority) -> None:
    rules = small_rules(
        place_rules=[{"place_type": "park", "categories": ["theft"], "raise_by": raise_by}]
    )
    got = classify(rules, text="theft", source_kind=S.DESK, place_type=T.PARK)
    assert got.priority is expected
    assert classify(rules, text="theft", source_kind=S.DESK, place_type=T.ROAD).priority is P.P3


def test_modifier_escalates_after_place_and_never_lowers() -> None:
    rules = small_rules(
        place_rules=[{"place_type": "parking", "categories": ["traffic"], "raise_by": -1}],
        modifiers=[
            {"name": "weapon", "keywords": ["knife"], "priority": "P1", "min_units": 3},
            {"name": "minor", "keywords": ["scratch"], "priority": "P4"},
        ],
    )
    got = classify(rules, text="traffic, knife, scratch", source_kind=S.DESK, place_type=T.PARKING)
    assert (got.priority, got.units_needed) == (P.P1, 3)
    assert got.matched == ("traffic", "knife", "scratch")
    assert classify(rules, text="traffic scratch", source_kind=S.DESK).priority is P.P3


def test_capabilities_keep_order_without_repeats() -> None:
    rules = small_rules(
        place_rules=[
            {"place_type": "school", "categories": ["fire"], "add_capabilities": ["patrol"]}
        ],
        modifiers=[
            {"name": "hurt", "keywords": ["hurt"], "add_capabilities": ["medical", "patrol"]}
        ],
    )
    got = classify(rules, text="fire, hurt", source_kind=S.DESK, place_type=T.SCHOOL)
    assert got.required_capabilities == ("patrol", "medical")


def test_modifier_limited_to_its_categories() -> None:
    rules = small_rules(
        modifiers=[
            {"name": "push", "categories": ["dispute"], "keywords": ["push"], "priority": "P1"}
        ]
    )
    assert classify(rules, text="dispute push", source_kind=S.DESK).priority is P.P1
    assert classify(rules, text="theft push", source_kind=S.DESK).priority is P.P3


def test_source_rule_naming_the_sensor_wins_over_the_general_one() -> None:
    rules = small_rules(
        source_rules=[
            {"source_kind": "sensor", "category": "suspicious_person", "priority": "P4"},
            {"source_kind": "sensor", "sensor_kind": "lock", "category": "intrusion"},
        ]
    )
    lock = classify(rules, text="x", source_kind=S.SENSOR, sensor_kind=K.LOCK)
    assert (lock.category, lock.priority, lock.matched) == (
        C.INTRUSION,
        P.P3,
        ("source:sensor/lock",),
    )
    camera = classify(rules, text="x", source_kind=S.SENSOR, sensor_kind=K.CAMERA_A)
    assert (camera.category, camera.priority, camera.matched) == (
        C.SUSPICIOUS_PERSON,
        P.P4,
        ("source:sensor",),
    )
    assert classify(rules, text="x", source_kind=S.DESK).category is C.OTHER


def test_keywords_of_other_never_outrank_a_category() -> None:
    rules = small_rules()
    categories = rules.model_dump()["categories"]
    categories["other"]["keywords"] = ["noise"]
    categories["other"]["priority"] = "P4"
    rules = Rules.model_validate({"schema_version": 1, "categories": categories})
    assert classify(rules, text="noise", source_kind=S.DESK).priority is P.P4
    assert classify(rules, text="noise, dispute", source_kind=S.DESK).category is C.DISPUTE


def test_classification_is_frozen() -> None:
    got = classify(RULES, text="fire", source_kind=S.DESK)
    assert isinstance(got, Classification)
    with pytest.raises(AttributeError):
        got.priority = P.P4  # type: ignore[misc]  # the point: it must refuse


ALL_KEYWORDS = sorted(
    {k.rstrip("*") for rule in (RULES.categories.get(c) for c in Category) for k in rule.keywords}
    | {k.rstrip("*") for m in RULES.modifiers for k in m.keywords}
)
ALARM_TEXT = st.text(max_size=2000) | st.lists(
    st.sampled_from(ALL_KEYWORDS) | st.text(max_size=8), max_size=40
).map("".join).map(lambda text: text[:2000])


@FAST
@given(
    text=ALARM_TEXT,
    source=st.sampled_from(SourceKind),
    sensor=st.none() | st.sampled_from(SensorKind),
    place=st.none() | st.sampled_from(PlaceType),
)
def test_classify_never_raises_and_always_gives_a_usable_answer(
    text: str, source: SourceKind, sensor: SensorKind | None, place: PlaceType | None
) -> None:
    got = classify(RULES, text=text, source_kind=source, sensor_kind=sensor, place_type=place)
    assert got.category in Category
    assert got.priority in Priority
    assert 1 <= len(got.required_capabilities) <= 8
    assert all(CAPABILITY.match(capability) for capability in got.required_capabilities)
    assert 1 <= got.units_needed <= 10
    assert len(set(got.matched)) == len(got.matched)
