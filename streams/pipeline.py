"""Assemble the whole stream pipeline on one Faust app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import faust

from dispatch.classify import Rules, default_rules_path, load_rules
from dispatch.lifecycle import LifecyclePolicy
from dispatch.routing import RoutingPolicy
from dispatch.settings import Settings
from dispatch.zone import Zone, default_zone_path, load_zone
from streams.app import APP_ID, build_app
from streams.classify import ClassifyAgents, register_classify
from streams.route import RouteAgents, register_route
from streams.stages import DEFAULT_MERGE_WINDOW
from streams.topics import Topics, bind_topics
from streams.units_board import UnitBoard


@dataclass(frozen=True)
class Pipeline:
    """The app and everything registered on it."""

    app: faust.App
    topics: Topics
    classify: ClassifyAgents
    route: RouteAgents
    zone: Zone


def load_zone_and_rules(settings: Settings) -> tuple[Zone, Rules]:
    """Load the configured zone and rules files, or the shipped ones."""
    zone = load_zone(settings.zone_file or default_zone_path())
    rules = load_rules(settings.rules_file or default_rules_path())
    return zone, rules


def build_pipeline(
    settings: Settings,
    *,
    app_id: str = APP_ID,
    topic_prefix: str = "",
    routing: RoutingPolicy | None = None,
    lifecycle: LifecyclePolicy | None = None,
    merge_window: timedelta = DEFAULT_MERGE_WINDOW,
    tick_interval_s: float = 1.0,
) -> Pipeline:
    """Build the app with the classify, merge and route stages."""
    zone, rules = load_zone_and_rules(settings)
    app = build_app(settings, app_id=app_id)
    topics = bind_topics(app, prefix=topic_prefix)
    classify = register_classify(app, topics, zone=zone, rules=rules, merge_window=merge_window)
    route = register_route(
        app,
        topics,
        board=UnitBoard(zone),
        routing=routing or RoutingPolicy(),
        lifecycle=lifecycle or LifecyclePolicy(),
        tick_interval_s=tick_interval_s,
    )
    return Pipeline(app=app, topics=topics, classify=classify, route=route, zone=zone)
