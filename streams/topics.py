"""The catalog's topics bound to a Faust app, carrying raw bytes.

Pydantic models are not Faust records, so every topic carries raw bytes and each agent decodes
with `dispatch.events.decode` at its edge (bad bytes go to the dead-letter topic).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust

from dispatch.events import (
    ALARMS_CLASSIFIED,
    ALARMS_DLQ,
    ALARMS_LOCATED,
    ALARMS_RAW,
    COMMANDER_COMMANDS,
    DISPATCH_ASSIGNMENTS,
    DISPATCH_TICKS,
    INCIDENTS_STATE,
    RESPONSES_EVENTS,
    UNITS_STATUS,
    TopicSpec,
)


@dataclass(frozen=True)
class Topics:
    """Every topic of the pipeline, as Faust topic objects of one app."""

    alarms_raw: Any
    alarms_located: Any
    alarms_classified: Any
    assignments: Any
    responses: Any
    units_status: Any
    incidents_state: Any
    dead_letters: Any
    ticks: Any
    commands: Any
    # Put before every catalog name (tests and benchmarks use fresh topics).
    prefix: str = ""


def bind_topics(app: faust.App, *, prefix: str = "") -> Topics:
    """Declare the catalog topics on app; prefix renames them (tests use fresh topics)."""

    def topic(spec: TopicSpec[Any]) -> Any:
        return app.topic(
            prefix + spec.name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            # The project declares its topics (infra.topics) with their retention and configs.
            internal=False,
        )

    return Topics(
        alarms_raw=topic(ALARMS_RAW),
        alarms_located=topic(ALARMS_LOCATED),
        alarms_classified=topic(ALARMS_CLASSIFIED),
        assignments=topic(DISPATCH_ASSIGNMENTS),
        responses=topic(RESPONSES_EVENTS),
        units_status=topic(UNITS_STATUS),
        incidents_state=topic(INCIDENTS_STATE),
        dead_letters=topic(ALARMS_DLQ),
        ticks=topic(DISPATCH_TICKS),
        commands=topic(COMMANDER_COMMANDS),
        prefix=prefix,
    )
