"""What each report figure counts: category groups, response intervals and the norms.

docs/reports.md states every definition in words; this module is the one place the code
takes them from, so the SQL, the tables and the page cannot disagree about a threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

from dispatch.events.alarms import Category


@dataclass(frozen=True, slots=True)
class CategoryGroup:
    """A figure the zone publishes that adds up several categories (刑事案件, 两抢一盗)."""

    key: str
    label: str
    categories: frozenset[Category]


# The seed article's figures, from the classifier's categories. Robbery covers robbery and
# snatching (抢劫、抢夺), so robbery + theft are the "two robberies and one theft" (两抢一盗).
# A break-in (intrusion: 入室、翻墙) is a burglary, a crime; a fight is a public-order case
# (治安案件) unless it becomes an injury case, which the classifier cannot tell.
CRIMINAL = CategoryGroup(
    "criminal",
    "刑事案件 criminal cases",
    frozenset({Category.ROBBERY, Category.THEFT, Category.INTRUSION}),
)
ROBBERY_THEFT = CategoryGroup(
    "robbery_theft",
    "两抢一盗 robbery and theft",
    frozenset({Category.ROBBERY, Category.THEFT}),
)
PUBLIC_ORDER = CategoryGroup(
    "public_order",
    "治安案件 public-order cases",
    frozenset({Category.FIGHT}),
)
CATEGORY_GROUPS = (CRIMINAL, PUBLIC_ORDER, ROBBERY_THEFT)

# The row of the change table that counts alarms rather than incidents (报警总量).
ALARMS_KEY = "alarms"
ALARMS_LABEL = "报警总量 alarms"


@dataclass(frozen=True, slots=True)
class Interval:
    """A response interval: from one milestone to a later one, in seconds."""

    key: str
    label: str
    start: str
    end: str


# Milestone names are the record_incidents columns (arrived = on_scene_at, closed = closed_at).
INTERVALS = (
    Interval("classify", "received → classified", "received", "classified"),
    Interval("dispatch", "classified → dispatched", "classified", "dispatched"),
    Interval("deliver", "dispatched → delivered", "dispatched", "delivered"),
    Interval("accept", "delivered → accepted", "delivered", "accepted"),
    Interval("travel", "accepted → arrived", "accepted", "arrived"),
    Interval("on_scene", "arrived → closed", "arrived", "closed"),
    # The two spans the norms measure: NFPA 1225 alarm processing, and arrival.
    Interval("processing", "received → dispatched", "received", "dispatched"),
    Interval("response", "received → arrived", "received", "arrived"),
)
INTERVAL_KEYS = tuple(interval.key for interval in INTERVALS)
# A unit has no classification of its own: its intervals start at its own dispatch.
UNIT_INTERVAL_KEYS = (
    "dispatch",
    "deliver",
    "accept",
    "travel",
    "on_scene",
    "processing",
    "response",
)

PERCENTILES = (0.5, 0.9, 0.99)

# NFPA 1225 (2022), 7.4: alarm processing within 60 s for 90 % of alarms.
NFPA_PROCESSING_S = 60
NFPA_TARGET_SHARE = 0.9
# The Chinese arrival norms: urban within 5 min, suburban within 10 min.
URBAN_ARRIVAL_S = 300
SUBURBAN_ARRIVAL_S = 600
# The 1-, 3- and 5-minute response circles (1、3、5 分钟快速反应圈).
CIRCLE_MINUTES = (1, 3, 5)
# Every arrival threshold the counts are taken at, in seconds.
ARRIVAL_LIMITS_S = tuple(
    sorted({*(60 * m for m in CIRCLE_MINUTES), URBAN_ARRIVAL_S, SUBURBAN_ARRIVAL_S})
)

# The grid screening (网格排查) counts disputes and hazards.
SCREENED = (Category.DISPUTE, Category.HAZARD)


def change_pct(current: int, before: int) -> float | None:
    """Return the change from before to current in percent, or None when before is 0."""
    if before == 0:
        return None
    return (current - before) * 100.0 / before


def share(part: int, whole: int) -> float | None:
    """Return part / whole, or None when there is nothing to share."""
    return part / whole if whole else None
