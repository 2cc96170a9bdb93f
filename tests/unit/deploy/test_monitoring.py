"""deploy/: the alert rules and the dashboard ask only for metrics the services serve."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import Counter, Gauge, Histogram

from consumers import metrics

ROOT = Path(__file__).resolve().parents[3]
NAME = re.compile(r"\bdispatch_[a-z_]+\b")
# Readings registered when a service starts (consumers/metrics.py READINGS): where, and whether
# each is a counter (exposed with `_total`).
READERS = (ROOT / "streams/probe.py", ROOT / "consumers/sink/__main__.py")


def served() -> set[str]:
    """Return every sample name the services can expose."""
    names = {"dispatch_consumer_lag", "dispatch_consumer_committed_offset"}
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            names.add(value._name + "_total")
        elif isinstance(value, Histogram):
            names |= {value._name + suffix for suffix in ("_bucket", "_count", "_sum")}
        elif isinstance(value, Gauge):
            names.add(value._name)
    for path in READERS:
        for call in re.findall(r"READINGS\.add\((.*?)\)\n", path.read_text(), flags=re.S):
            (name,) = re.findall(r'"(dispatch_[a-z_]+)"', call)[:1]
            names.add(name + "_total" if "counter=True" in call else name)
    return names


def test_every_alert_and_panel_names_a_served_metric() -> None:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((ROOT / "deploy/grafana/alarm-dispatch.json").read_text())
    exprs += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expr in exprs for name in NAME.findall(expr)}
    assert used, "no metric named"
    assert used <= served(), used - served()


def test_the_alerts_cover_lag_stalls_escalations_and_the_outbox() -> None:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    names = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {
        "DispatchConsumerLag",
        "DispatchPartitionStalled",
        "DispatchEscalationsWaiting",
        "DispatchOutboxBacklog",
    } <= names
