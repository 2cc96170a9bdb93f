"""A reproducible demo history of the zone: two years of alarms and what the system did.

Pure and deterministic: the same zone, rules, seed, span and volume give the same events with
the same ids, so writing a history twice writes nothing new. The events are built by the
stages' own functions (triage, merge, routing, lifecycle) from invented alarms and invented
answers of the units, with past times; `dispatch seed-history` writes them into the record
through the sink's writer, never onto the live topics (docs/demo-history.md says why).
"""

from dispatch.history.generator import (
    HISTORY_NAMESPACE,
    HistoryMonth,
    HistoryPlan,
    generate,
    plan_history,
)
from dispatch.history.incidents import IncidentHistory
from dispatch.history.mix import ARTICLE_RATIOS, GROUPS, MIX, Scenario
from dispatch.history.schedule import Span
from dispatch.history.summary import Tally

__all__ = [
    "ARTICLE_RATIOS",
    "GROUPS",
    "HISTORY_NAMESPACE",
    "MIX",
    "HistoryMonth",
    "HistoryPlan",
    "IncidentHistory",
    "Scenario",
    "Span",
    "Tally",
    "generate",
    "plan_history",
]
