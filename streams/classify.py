"""Stage 1: classify raw alarms; merge repeats of one place and kind.

The work itself is `streams.stages.Classifier` and `Merger`; this module says what each stage
reads and which tables it keeps, for a `streams.worker.StageWorker` to run.
"""

from __future__ import annotations

from datetime import timedelta

from dispatch.classify import Rules
from dispatch.events import ALARMS_LOCATED, ALARMS_RAW
from dispatch.zone import Zone
from streams.stages import Classifier, Merger
from streams.tables import ChangelogTable, changelog_topic_name
from streams.worker import StageSpec


def classify_stage(*, zone: Zone, rules: Rules, prefix: str) -> StageSpec:
    """The classify stage: stateless, `alarms.raw` to `alarms.located`."""
    handle = Classifier(zone=zone, rules=rules).alarm
    return StageSpec("classify", {prefix + ALARMS_RAW.name: handle})


def merge_stage(
    *, group_id: str, prefix: str, partitions: int, merge_window: timedelta
) -> StageSpec:
    """The merge stage: `alarms.located` to `alarms.classified`, with its merge table."""
    # merge key -> the open merge (incident id, first alarm, window end); keyed like its source.
    merges = ChangelogTable(
        "incident-merges",
        prefix + changelog_topic_name(group_id, "incident-merges"),
        partitions=partitions,
    )
    handle = Merger(merges=merges, window=merge_window).located
    return StageSpec("merge", {prefix + ALARMS_LOCATED.name: handle}, tables=(merges,))
