"""The zone's reports: what each figure counts, the report model, and its tables and page.

Pure: consumers/reports queries the record; this package names, compares and formats.
docs/reports.md defines every figure.
"""

from dispatch.reports.build import build_report
from dispatch.reports.model import Report
from dispatch.reports.period import (
    Period,
    PeriodError,
    last_full_month,
    month_before,
    report_period,
    year_before,
)

__all__ = [
    "Period",
    "PeriodError",
    "Report",
    "build_report",
    "last_full_month",
    "month_before",
    "report_period",
    "year_before",
]
