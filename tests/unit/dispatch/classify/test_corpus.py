"""The labelled corpus: triage quality on each split never gets worse than measured.

The thresholds are the figures measured when the rules were last changed (docs/benchmarks.md,
`python -m bench.triage_quality --split all`): raise them when the rules get better, never
lower them to let a change through. The held-out split is not tuned on.
"""

from __future__ import annotations

from functools import cache

import pytest

from bench.triage_quality import Report, evaluate, load_split
from dispatch.classify import default_rules_path, load_rules
from dispatch.zone import default_zone_path, load_zone

# split: (alarms, right category at least, P1 alarms, found P1 at least, under-triaged at
# most, alarms missing a needed capability at most)
FLOORS = {
    "heldout": (320, 290, 169, 164, 10, 13),
    "retired": (140, 134, 82, 82, 0, 2),
    "retired2": (130, 129, 67, 67, 0, 0),
    "retired3": (129, 126, 69, 69, 0, 2),
    "retired4": (160, 153, 85, 85, 2, 3),
    "tune": (268, 263, 134, 134, 0, 1),
    "tune2": (640, 606, 317, 317, 7, 15),
    "tune3": (1200, 1086, 587, 583, 25, 53),
    "tune4": (1200, 1123, 635, 625, 26, 41),
    "tune5": (1200, 1073, 608, 603, 27, 46),
}


@cache
def report(split: str) -> Report:
    return evaluate(
        load_split(split), load_zone(default_zone_path()), load_rules(default_rules_path())
    )


@pytest.mark.parametrize("split", sorted(FLOORS))
def test_triage_quality_does_not_get_worse(split: str) -> None:
    alarms, correct, p1, p1_found, under, missing = FLOORS[split]
    got = report(split)
    assert got.alarms == alarms
    assert got.correct >= correct
    assert got.p1 == p1
    assert got.p1_found >= p1_found
    assert len(got.under_triaged) <= under
    assert len(got.missing_capability) <= missing


def test_the_corpus_covers_every_category_and_source() -> None:
    rows = [row for split in FLOORS for row in load_split(split)]
    assert len(rows) >= 600
    assert {row["category"] for row in rows} == {
        c.value for c in load_rules(default_rules_path()).categories
    }
    assert {row["source"] for row in rows} == {"desk", "guard", "sensor", "hotline"}
    assert len({row["id"] for row in rows}) == len(rows)
    assert max(len(row["text"]) for row in rows) > 2000
