"""Prometheus metrics: one CollectorRegistry per app, filled from each request's Trace.

Request counters and histograms are recorded by `Metrics.observe`, which the error-and-log
middleware calls once per request (the same moment the log line is written). Account gauges
and the refresh counter are read from the pool at scrape time by `PoolCollector`, so they can
never drift from the pool's own state. Label values are bounded: routes are the router's
templates, models outside the catalogue count as "other", accounts are `acct-<hash>` aliases.
"""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..canonical.models import MODELS
from ..canonical.request import Trace
from .auth import require_key
from .keys import SERVICE
from .status import STATES, effective_state, server_accounts, state_counts

PREFIX = "kimi_gateway"
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60)
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
METRICS = web.AppKey("metrics", object)


class Metrics:
    def __init__(self, app: web.Application):
        self.registry = CollectorRegistry(auto_describe=True)
        self._models = {name for name, _ in MODELS}
        self.requests = Counter(f"{PREFIX}_requests", "HTTP requests by route, model and status",
                                ("route", "model", "status"), registry=self.registry)
        self.ttft = Histogram(f"{PREFIX}_time_to_first_token_seconds",
                              "Time from request to the first answer token", ("route", "model"),
                              buckets=TTFT_BUCKETS, registry=self.registry)
        self.duration = Histogram(f"{PREFIX}_request_duration_seconds",
                                  "Time from request to the end of the response (streams "
                                  "included)", ("route", "status"), buckets=DURATION_BUCKETS,
                                  registry=self.registry)
        self.upstream_errors = Counter(f"{PREFIX}_upstream_errors",
                                       "Errors met while talking to Kimi, by error class and "
                                       "code (pre-stream and in-band)", ("error_class", "code"),
                                       registry=self.registry)
        self.registry.register(PoolCollector(app))

    def observe(self, request: web.Request, trace: Trace, now: float) -> None:
        route = _route_label(request)
        model = self._model_label(trace.model)
        status = str(trace.status or 0)
        self.requests.labels(route, model, status).inc()
        self.duration.labels(route, status).observe(max(0.0, now - trace.started))
        if trace.first_token is not None:
            self.ttft.labels(route, model).observe(max(0.0, trace.first_token - trace.started))
        # An error counts as upstream when it happened while an account was in use.
        if trace.error_class and trace.account:
            self.upstream_errors.labels(trace.error_class, trace.error_code or "-").inc()

    def _model_label(self, model: str | None) -> str:
        if not model:
            return "-"
        return model if model in self._models else "other"


def _route_label(request: web.Request) -> str:
    info = request.match_info
    resource = info.route.resource if info.http_exception is None else None
    path = resource.canonical if resource is not None else "unmatched"
    return f"{request.method} {path}"


class PoolCollector(Collector):
    """Per-account gauges by alias, state counts and token refreshes, read at scrape time."""

    def __init__(self, app: web.Application):
        self._app = app

    def describe(self):
        return []   # values depend on the pool at scrape time; nothing to pre-declare

    def collect(self):
        accounts = server_accounts(self._app)
        in_flight = GaugeMetricFamily(f"{PREFIX}_account_in_flight",
                                      "Streams in flight per server account", labels=["account"])
        state = GaugeMetricFamily(f"{PREFIX}_account_state",
                                  "1 for the account's current state, 0 for the others",
                                  labels=["account", "state"])
        now = time.time()
        for a in accounts:
            in_flight.add_metric([a.alias], a.in_flight)
            current = effective_state(a, now)
            for s in STATES:
                state.add_metric([a.alias, s], 1.0 if current == s else 0.0)
        counts = GaugeMetricFamily(f"{PREFIX}_accounts", "Server accounts by state",
                                   labels=["state"])
        for s, n in state_counts(accounts, now).items():
            counts.add_metric([s], n)
        refreshes = CounterMetricFamily(f"{PREFIX}_token_refreshes",
                                        "Access-token refreshes since start")
        refreshes.add_metric([], self._refresh_count())
        return [in_flight, state, counts, refreshes]

    def _refresh_count(self) -> int:
        service = self._app.get(SERVICE)
        pool = getattr(service, "pool", None)
        return int(getattr(pool, "refresh_count", 0) or 0)


async def metrics_handler(request: web.Request) -> web.Response:
    require_key(request)        # account aliases, errors and expiry are not for everyone
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": content_type})

