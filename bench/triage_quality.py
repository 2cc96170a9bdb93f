"""Measure triage on the labelled corpus: categories, P1 recall, under-triage, missing units.

Run: `python -m bench.triage_quality [--split heldout|tune|all] [--misses]` from the repository
root. Each alarm of tests/data/triage_<split>.jsonl is triaged and planned as `dispatch triage`
does (every zone unit available at home) and compared with its labels: category, the least
urgent acceptable priority, and the capabilities some unit of the plan must offer.
The held-out split is for measuring only; rules are tuned on the tune split (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dispatch.classify import Rules, default_rules_path, load_rules
from dispatch.dry_run import DryRun, dry_run, fleet_at_home
from dispatch.events import Category
from dispatch.routing import RoutingPolicy
from dispatch.zone import Zone, default_zone_path, load_zone

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data"
NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
# The held-out split first; then what the rules were tuned on, in the order it was written.
SPLITS = (
    "heldout",
    "tune",
    "retired",
    "retired2",
    "retired3",
    "retired4",
    "tune2",
    "tune3",
    "tune4",
    "tune5",
)


@dataclass
class Report:
    """The figures of one split."""

    alarms: int = 0
    correct: int = 0
    p1: int = 0
    p1_found: int = 0
    under_triaged: list[str] = field(default_factory=list)
    missing_capability: list[str] = field(default_factory=list)
    wrong_category: list[str] = field(default_factory=list)
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def accuracy(self) -> float:
        """Return the share of alarms whose category is right."""
        return self.correct / self.alarms if self.alarms else 0.0

    @property
    def p1_recall(self) -> float:
        """Return the share of P1 alarms classified P1."""
        return self.p1_found / self.p1 if self.p1 else 1.0


def load_split(split: str, corpus: Path = CORPUS) -> list[dict[str, Any]]:
    """Return the labelled alarms of one split."""
    path = corpus / f"triage_{split}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def planned_capabilities(run: DryRun, zone: Zone) -> set[str]:
    """Return every capability some unit of the plan offers."""
    chosen = run.decision.primaries if run.decision else ()
    return {c for unit in chosen for c in zone.unit(unit.unit_id).capabilities}


def evaluate(rows: Iterable[dict[str, Any]], zone: Zone, rules: Rules) -> Report:
    """Triage and plan each labelled alarm and count what went right and wrong."""
    report = Report()
    index = fleet_at_home(zone, NOW)
    routing = RoutingPolicy()
    for row in rows:
        run = dry_run(zone, rules, row, index, now=NOW, routing=routing)
        got = run.classification
        report.alarms += 1
        report.confusion[(row["category"], str(got.category))] += 1
        if got.category == row["category"]:
            report.correct += 1
        else:
            report.wrong_category.append(row["id"])
        if row["priority"] == "P1":
            report.p1 += 1
            report.p1_found += got.priority == "P1"
        if got.priority > row["priority"]:  # "P3" > "P1": less urgent than labelled
            report.under_triaged.append(row["id"])
        if not set(row["needs"]) <= planned_capabilities(run, zone):
            report.missing_capability.append(row["id"])
    return report


def confusion_table(report: Report) -> list[str]:
    """Return the confusion matrix as text: rows are labels, columns what triage said."""
    names = [c.value for c in Category]
    short = {name: name[:5] for name in names}
    lines = ["label \\ got".ljust(18) + " ".join(short[n].rjust(5) for n in names)]
    for label in names:
        counts = [report.confusion[(label, got)] for got in names]
        if sum(counts):
            cells = " ".join((str(c) if c else ".").rjust(5) for c in counts)
            lines.append(label.ljust(18) + cells)
    return lines


def describe(split: str, report: Report) -> list[str]:
    """Return the figures of a split as printed lines."""
    return [
        f"split {split}: {report.alarms} alarms",
        *confusion_table(report),
        f"category accuracy: {report.correct}/{report.alarms} = {report.accuracy:.1%}",
        f"P1 recall: {report.p1_found}/{report.p1} = {report.p1_recall:.1%}",
        f"under-triaged (priority less urgent than labelled): {len(report.under_triaged)}"
        + (f" {report.under_triaged}" if report.under_triaged else ""),
        f"a needed capability missing from the plan: {len(report.missing_capability)}"
        + (f" {report.missing_capability}" if report.missing_capability else ""),
    ]


def _misses(rows: Sequence[dict[str, Any]], zone: Zone, rules: Rules, report: Report) -> None:
    wrong = set(report.wrong_category) | set(report.under_triaged) | set(report.missing_capability)
    index = fleet_at_home(zone, NOW)
    for row in rows:
        if row["id"] in wrong:
            run = dry_run(zone, rules, row, index, now=NOW, routing=RoutingPolicy())
            got = run.classification
            print(
                f"{row['id']} want {row['category']}/{row['priority']}/{row['needs']} "
                f"got {got.category}/{got.priority}/{sorted(planned_capabilities(run, zone))} "
                f"{row['text'][:80]!r}"
            )


def main() -> None:
    """Print the figures of the chosen split."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=[*SPLITS, "all"], default="heldout")
    parser.add_argument("--misses", action="store_true", help="list each alarm that went wrong")
    parser.add_argument("--rules", type=Path, help="rules file (default: the shipped one)")
    parser.add_argument("--zone", type=Path, help="zone file (default: the demo zone)")
    args = parser.parse_args()
    rules = load_rules(args.rules or default_rules_path())
    zone = load_zone(args.zone or default_zone_path())
    for split in SPLITS if args.split == "all" else (args.split,):
        rows = load_split(split)
        report = evaluate(rows, zone, rules)
        print("\n".join(describe(split, report)), end="\n\n")
        if args.misses:
            _misses(rows, zone, rules, report)


if __name__ == "__main__":
    main()
