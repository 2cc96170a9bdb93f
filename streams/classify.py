"""Stage 1 agents: classify raw alarms; merge repeats of one place and kind.

The work itself is `streams.stages.Classifier` and `Merger`; this module puts them on an app.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import faust

from dispatch.classify import Rules
from dispatch.zone import Zone
from streams.batching import batch_agent
from streams.stages import Classifier, Merger
from streams.tables import bytes_table
from streams.topics import Topics


def register_classify(app: faust.App, topics: Topics, *, zone: Zone, rules: Rules) -> Any:
    """Add the classify agent (stateless: `alarms.raw` to `alarms.located`) to app."""
    return batch_agent(
        app,
        topics.alarms_raw,
        name="classify-alarm",
        stage="classify",
        handle=Classifier(zone=zone, rules=rules).alarm,
        prefix=topics.prefix,
    )


def register_merge(app: faust.App, topics: Topics, *, merge_window: timedelta) -> Any:
    """Add the merge agent (`alarms.located` to `alarms.classified`) and its table to app."""
    # merge key -> the open merge (incident id, first alarm, window end); keyed like its source.
    merges = bytes_table(app, "incident-merges")
    return batch_agent(
        app,
        topics.alarms_located,
        name="merge-alarm",
        stage="merge",
        handle=Merger(merges=merges, window=merge_window).located,
        prefix=topics.prefix,
        tables=(merges,),
    )
