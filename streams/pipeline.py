"""Assemble stages of the stream pipeline on one Faust app."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import faust

from dispatch.classify import Rules, default_rules_path, load_rules
from dispatch.lifecycle import LifecyclePolicy
from dispatch.routing import RoutingPolicy
from dispatch.settings import Settings
from dispatch.zone import Zone, default_zone_path, load_zone
from streams.app import APP_ID, build_app
from streams.classify import register_classify, register_merge
from streams.route import register_route
from streams.stages import DEFAULT_MERGE_WINDOW
from streams.topics import Topics, bind_topics
from streams.units_board import UnitBoard

# The stages in the order an alarm passes them.
STAGES = ("classify", "merge", "route")


def stage_app_id(stages: Sequence[str], *, base: str = APP_ID) -> str:
    """The Faust app id (consumer group, changelog topic prefix) of a worker of these stages.

    Each set of stages is its own app: `dispatch run` runs one worker per stage (three apps,
    one member each, so both cores work and no group has to share partitions between
    members); one worker of all three is `alarm-dispatch-classify-merge-route`. A deployment
    keeps one layout: another layout is other consumer groups and other tables.
    """
    return "-".join([base, *(stage for stage in STAGES if stage in stages)])


@dataclass(frozen=True)
class Pipeline:
    """The app and everything registered on it."""

    app: faust.App
    topics: Topics
    zone: Zone
    stages: tuple[str, ...]
    # The route stage's view of the units (None when this app does not route).
    board: UnitBoard | None


def parse_stages(
    argv: Sequence[str] | None, *, prog: str, description: str | None
) -> tuple[str, ...]:
    """Return the stages a command line names with `--stage` (all of them by default)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--stage",
        action="append",
        choices=STAGES,
        help="a stage of this worker; repeat for more (default: all)",
    )
    args = parser.parse_args(argv)
    return tuple(stage for stage in STAGES if stage in (args.stage or STAGES))


def load_zone_and_rules(settings: Settings) -> tuple[Zone, Rules]:
    """Load the configured zone and rules files, or the shipped ones."""
    zone = load_zone(settings.zone_file or default_zone_path())
    rules = load_rules(settings.rules_file or default_rules_path())
    return zone, rules


def build_pipeline(
    settings: Settings,
    *,
    stages: Sequence[str] = STAGES,
    app_id: str | None = None,
    topic_prefix: str = "",
    routing: RoutingPolicy | None = None,
    lifecycle: LifecyclePolicy | None = None,
    merge_window: timedelta = DEFAULT_MERGE_WINDOW,
    tick_interval_s: float = 1.0,
) -> Pipeline:
    """Build one app running the given stages (all three by default); its id is
    `stage_app_id(stages)` unless app_id is given (tests and benchmarks use fresh ones)."""
    unknown = sorted(set(stages) - set(STAGES))
    if unknown or not stages:
        raise ValueError(f"stages must be some of {', '.join(STAGES)}; got {list(stages)}")
    zone, rules = load_zone_and_rules(settings)
    app = build_app(settings, app_id=app_id or stage_app_id(stages))
    topics = bind_topics(app, prefix=topic_prefix)
    # Each registers its agents (and tables, timers, tasks) on the app.
    board = None
    if "classify" in stages:
        register_classify(app, topics, zone=zone, rules=rules)
    if "merge" in stages:
        register_merge(app, topics, merge_window=merge_window)
    if "route" in stages:
        board = UnitBoard(zone)
        register_route(
            app,
            topics,
            board=board,
            routing=routing or RoutingPolicy(),
            lifecycle=lifecycle or LifecyclePolicy(),
            tick_interval_s=tick_interval_s,
        )
    ordered = tuple(stage for stage in STAGES if stage in stages)
    return Pipeline(app, topics, zone, ordered, board)
