"""Every service's Prometheus metrics, and how `/metrics` answers (docs/operations.md).

The metrics live in prometheus-client's default registry, one per process: a service counts
where the work happens (the stage worker, intake, the gateway, the reconciler, the sink) and
serves the registry on its existing probe or HTTP port. Figures that are cheap to read but
costly to keep current (consumer lag, connected units, the outbox backlog) are read when
Prometheus scrapes: a stage worker's lag through a collector, a service's database figures
through an async refresher that `render` awaits first.

`/metrics` needs no token, like `/healthz` and `/readyz`: it carries counts, by stage, topic,
partition, status or source kind, never an id, a place or a name. Keep it on the internal
network as the probes are (deploy/prometheus/).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST

# -- stream stages (streams/worker.py) ---------------------------------------------------------
STAGE_RECORDS = Counter(
    "dispatch_stage_records", "Records a stage worker handled and committed.", ["stage"]
)
STAGE_DEAD_LETTERS = Counter(
    "dispatch_stage_dead_letters",
    "Records a stage sent to the dead-letter topic (bad input, or a handler's bug).",
    ["stage"],
)
STAGE_BATCH_SECONDS = Histogram(
    "dispatch_stage_batch_seconds",
    "Time from a batch's fetch to its writes acknowledged and offsets committed.",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
ROUTE_DECISIONS = Counter(
    "dispatch_route_decisions",
    "What the route stage decided: an incident state it entered, or an assignment it sent.",
    ["decision"],
)
ESCALATIONS = Counter(
    "dispatch_route_escalations", "Incidents the route stage escalated to the commander."
)

# -- intake ------------------------------------------------------------------------------------
ALARMS_IN = Counter(
    "dispatch_intake_alarms", "Alarms intake accepted (Kafka acknowledged).", ["source_kind"]
)
INTAKE_REFUSALS = Counter(
    "dispatch_intake_refusals", "Intake requests answered with an error status.", ["status"]
)

# -- push gateway ------------------------------------------------------------------------------
PUSH_CONNECTED = Gauge(
    "dispatch_push_connected", "Open connections of this gateway, by channel.", ["channel"]
)
OUTBOX_BACKLOG = Gauge(
    "dispatch_push_outbox_backlog", "Jobs stored in the outbox and not acknowledged yet."
)
JOBS_PUSHED = Counter("dispatch_push_jobs_sent", "Job frames written to units' connections.")
ACK_SECONDS = Histogram(
    "dispatch_push_ack_seconds",
    "Time from the route stage's dispatch decision to the unit's acknowledgement.",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0),
)

# -- reconciler and sink -----------------------------------------------------------------------
RECONCILER_OVERDUE = Gauge(
    "dispatch_reconciler_overdue",
    "Alarms past their deadline with no incident, as of the reconciler's last pass.",
)
RECONCILER_REPORTED = Counter(
    "dispatch_reconciler_overdue_reported", "Overdue alarms the reconciler reported."
)

# Per consumer: (group, topic, partition) -> records between the committed offset and the end.
LagSource = Callable[[], Mapping[tuple[str, str, int], tuple[int, int]]]
Refresher = Callable[[], Awaitable[None]]


class _Partitions(Collector):
    """Read every registered consumer's lag and committed offsets when Prometheus scrapes."""

    def __init__(self) -> None:
        self._sources: dict[str, LagSource] = {}
        self._lock = threading.Lock()

    def add(self, name: str, source: LagSource) -> None:
        with self._lock:
            self._sources[name] = source

    def remove(self, name: str) -> None:
        with self._lock:
            self._sources.pop(name, None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "dispatch_consumer_lag",
            "Records between a partition's committed offset and its end (highwater).",
            labels=["group", "topic", "partition"],
        )
        committed = GaugeMetricFamily(
            "dispatch_consumer_committed_offset",
            "A partition's last committed offset; lag with no change here is a stall.",
            labels=["group", "topic", "partition"],
        )
        with self._lock:
            sources = list(self._sources.items())
        for name, source in sources:
            try:
                figures = source()
            except Exception:
                # A scrape must never fail for one consumer in the middle of a rebalance.
                log.debug("lag of %s not readable now", name, exc_info=True)
                continue
            for (group, topic, partition), (behind, offset) in sorted(figures.items()):
                labels = [group, topic, str(partition)]
                lag.add_metric(labels, behind)
                committed.add_metric(labels, offset)
        yield lag
        yield committed


class _Readings(Collector):
    """Figures a service already keeps in memory, read at scrape time: the sink's status
    (events stored, its delay), the route stage's escalated incidents."""

    def __init__(self) -> None:
        self._readers: dict[str, tuple[str, Callable[[], float], bool]] = {}
        self._lock = threading.Lock()

    def add(
        self, name: str, help_text: str, read: Callable[[], float], *, counter: bool = False
    ) -> None:
        """Show read() as name; a counter's name gets `_total` in the exposition."""
        with self._lock:
            self._readers[name] = (help_text, read, counter)

    def remove(self, name: str) -> None:
        with self._lock:
            self._readers.pop(name, None)

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        with self._lock:
            readers = list(self._readers.items())
        for name, (help_text, read, counter) in readers:
            try:
                value = read()
            except Exception:
                log.debug("%s not readable now", name, exc_info=True)
                continue
            if counter:
                yield CounterMetricFamily(name, help_text, value=value)
            else:
                yield GaugeMetricFamily(name, help_text, value=value)


PARTITIONS = _Partitions()
READINGS = _Readings()
REGISTRY.register(PARTITIONS)
REGISTRY.register(READINGS)

_refreshers: dict[str, Refresher] = {}


def add_refresher(name: str, refresh: Refresher) -> None:
    """Have `render` await refresh first (a database count); replaces one of the same name."""
    _refreshers[name] = refresh


def remove_refresher(name: str) -> None:
    """Forget a refresher (its service stopped)."""
    _refreshers.pop(name, None)


async def render() -> bytes:
    """Refresh the scrape-time figures, then return the registry in Prometheus' text format.

    A refresher that fails (PostgreSQL down) leaves its gauge at the last value it read: the
    scrape still answers, and `/readyz` is where the outage shows.
    """
    for name, refresh in list(_refreshers.items()):
        try:
            await refresh()
        except Exception as exc:
            log.warning("metrics: %s not refreshed: %r", name, exc)
    data: bytes = _generate_latest(REGISTRY)
    return data


async def metrics_endpoint(_: Request) -> Response:
    """Answer `/metrics` (the probe server's route, and intake's)."""
    return Response(await render(), media_type=CONTENT_TYPE)


def metrics_route() -> Route:
    """Return the Starlette route of `/metrics`."""
    return Route("/metrics", metrics_endpoint, methods=["GET"])


class CountRefusals:
    """ASGI middleware: count every HTTP answer of status 400 or more, by status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counting(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                INTAKE_REFUSALS.labels(status=str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counting)
