"""Stage 1 agents: classify raw alarms, then merge repeats of one place and kind.

The work itself is `streams.stages.Classifier` and `Merger`; this module puts them on the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import faust

from dispatch.classify import Rules
from dispatch.zone import Zone
from streams.batching import batch_agent
from streams.stages import Classifier, Merger
from streams.tables import bytes_table
from streams.topics import Topics


@dataclass(frozen=True)
class ClassifyAgents:
    """The classify and merge agents of one app, and the merge table."""

    classify_agent: Any
    merge_agent: Any
    merges: Any


def register_classify(
    app: faust.App, topics: Topics, *, zone: Zone, rules: Rules, merge_window: timedelta
) -> ClassifyAgents:
    """Add the classify and merge agents to app."""
    # merge key -> the open merge (incident id, first alarm, window end); keyed like its source.
    merges = bytes_table(app, "incident-merges")
    classifier = Classifier(zone=zone, rules=rules)
    merger = Merger(merges=merges, window=merge_window)
    return ClassifyAgents(
        classify_agent=batch_agent(
            app,
            topics.alarms_raw,
            name="classify-alarm",
            stage="classify",
            handle=classifier.alarm,
            prefix=topics.prefix,
        ),
        merge_agent=batch_agent(
            app,
            topics.alarms_located,
            name="merge-alarm",
            stage="merge",
            handle=merger.located,
            prefix=topics.prefix,
            tables=(merges,),
        ),
        merges=merges,
    )
