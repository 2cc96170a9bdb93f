"""The report's figures from the record tables (asyncpg, parametrised SQL); docs/reports.md."""

from consumers.reports.summary import collect_figures, summarize

__all__ = ["collect_figures", "summarize"]
