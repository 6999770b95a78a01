"""Prometheus metrics: request counts and latencies (an ASGI middleware) and the ledger's own
figures, read from the database when ``/metrics`` is scraped.

Request metrics live in one registry per process (as Prometheus expects). The ledger figures
(events appended, runs by state, each view's lag, executor queue depth) are read at scrape
time from the store and the views, so they are right even when the executor and the
projection runner are other processes. Routes are labelled by their template
(``/api/runs/{run_id}``), never by the raw path, so label cardinality stays bounded.

With ``runledger serve --workers N`` each worker process counts its own requests (scrape each
process, or run one worker per scrape target); the ledger figures are the same from any.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.runtime import Runtime

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class RequestMetrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram


@lru_cache(maxsize=1)
def request_metrics() -> RequestMetrics:
    """The process's request metrics, made on first use."""
    registry = CollectorRegistry(auto_describe=True)
    requests = Counter(
        "runledger_http_requests",
        "HTTP requests answered, by route template and status.",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "runledger_http_request_duration_seconds",
        "Time from request to the end of the response, by route template.",
        ["method", "route"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    return RequestMetrics(registry, requests, latency)


def route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


class MetricsMiddleware:
    """Counts every HTTP request by method, route template and status, and times it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.metrics = request_metrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = route_label(scope)
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)


class LedgerCollector(Collector):
    """The ledger's figures, read when collected (one scrape = a few small queries)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterable[Any]:
        events = CounterMetricFamily(
            "runledger_events_appended", "Events appended to the ledger (all streams)."
        )
        events.add_metric([], self.runtime.ledger.reader.max_position() + 1)
        yield events
        views = self.runtime.views
        by_status: dict[str, int] = dict(views.stats().get("by_status", {}))
        runs = GaugeMetricFamily("runledger_runs", "Runs by state.", labels=["status"])
        for status in ("pending", "running", "waiting", "success", "failed", "killed"):
            runs.add_metric([status], by_status.get(status, 0))
        yield runs
        queue = GaugeMetricFamily(
            "runledger_executor_queue_depth", "Runs waiting for a worker (pending runs)."
        )
        queue.add_metric([], by_status.get("pending", 0))
        yield queue
        lag = GaugeMetricFamily(
            "runledger_projection_lag_events",
            "Events a projection has yet to apply.",
            labels=["projection"],
        )
        for view in views.status():  # the metric and its label keep the contract's word
            lag.add_metric([str(view["name"])], int(view["lag"]))
        yield lag
        yield from retention_families()


def retention_families() -> Iterable[Any]:
    """What this process's retention passes removed (SPEC section 11)."""
    from ledger.retention.job import COUNTS

    for name, help, value in (
        ("runledger_retention_passes", "Retention passes run by this process.", COUNTS.passes),
        ("runledger_retention_runs_expunged", "Runs expunged by retention passes.", COUNTS.runs_expunged),
        (
            "runledger_retention_files_deleted",
            "Stored files deleted by retention passes.",
            COUNTS.files_deleted,
        ),
        (
            "runledger_retention_keys_destroyed",
            "Run keys destroyed by retention passes.",
            COUNTS.keys_destroyed,
        ),
    ):
        family = CounterMetricFamily(name, help)
        family.add_metric([], value)
        yield family


def render(runtime: Runtime) -> bytes:
    """The whole exposition: this process's request metrics, then the ledger's figures."""
    ledger_registry = CollectorRegistry(auto_describe=False)
    ledger_registry.register(LedgerCollector(runtime))
    return generate_latest(request_metrics().registry) + generate_latest(ledger_registry)
