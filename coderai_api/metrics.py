"""GET /metrics for Prometheus: the API's own HTTP metrics (`HTTPMetrics`; with several uvicorn
workers, prometheus_client's multiprocess mode through PROMETHEUS_MULTIPROC_DIR, which `coderai up` sets), and the
counters every run worker adds to in Redis (engine/metrics.py): provider calls, errors by kind, retries, rate-limit
waits, breaker waits and state, tokens, call latency, documents done and failed, spend.

Open by default, as Prometheus expects on an internal network; with CODERAI_METRICS_TOKEN set, a scrape must send
it as a bearer token. No label names a tenant."""

from __future__ import annotations

import os
import secrets
import time
from collections import defaultdict
from collections.abc import Iterator

from fastapi import FastAPI, Request, Response
from fastapi.routing import iter_route_contexts
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coderai_api.errors import HTTPError
from coderai_assets.engine.metrics import COUNTERS, LATENCY_BUCKETS, Metrics, metrics_for, parse_field
from coderai_assets.engine.provider import breaker_states
from coderai_assets.settings import Settings

LATENCY_SECONDS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 10.0)


class SharedCounters(Collector):
    """The run workers' counters, read from Redis at each scrape."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        grouped: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
        for field, value in self.metrics.snapshot().items():
            name, labels = parse_field(field)
            grouped[name].append((labels, value))
        for name, help_text in COUNTERS.items():
            keys = sorted({k for labels, _ in grouped.get(name, []) for k in labels})
            family = CounterMetricFamily(f"coderai_{name}", help_text, labels=keys)
            for labels, value in grouped.get(name, []):
                family.add_metric([labels.get(k, "") for k in keys], value)
            yield family
        yield self._latency(grouped)
        state = GaugeMetricFamily(
            "coderai_llm_breaker_open",
            "1 while the provider's circuit breaker is open or half-open",
            labels=["provider"],
        )
        for provider, breaker in breaker_states(self.metrics.redis).items():
            state.add_metric([provider], 0.0 if breaker == "closed" else 1.0)
        yield state

    @staticmethod
    def _latency(grouped: dict[str, list[tuple[dict[str, str], float]]]) -> Metric:
        family = HistogramMetricFamily("coderai_llm_call_seconds", "Seconds a provider call took", labels=["provider"])
        sums = {labels.get("provider", ""): value for labels, value in grouped.get("llm_call_seconds_sum", [])}
        counts = {labels.get("provider", ""): value for labels, value in grouped.get("llm_call_seconds_count", [])}
        buckets: dict[str, dict[str, float]] = defaultdict(dict)
        for labels, value in grouped.get("llm_call_seconds_bucket", []):
            buckets[labels.get("provider", "")][labels.get("le", "")] = value
        for provider, count in counts.items():
            series = [(str(b), buckets[provider].get(str(b), 0.0)) for b in LATENCY_BUCKETS] + [("+Inf", count)]
            family.add_metric([provider], series, sums.get(provider, 0.0))
        return family


class HTTPMetrics:
    """Requests and latency by route template, method and status class, as prometheus-fastapi-instrumentator
    names them (`http_requests_total`, `http_request_duration_seconds`). The template is that of the route the
    router matched (`scope["route"]`, whose own path lacks its routers' prefixes: its full template is looked up
    in the app's routes, once); the instrumentator matched every route again on each request, which cost
    0.5 ms of CPU a request, a sixth of a read's."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry):
        self.app = app
        self._templates: dict[int, str] | None = None
        labels = ["method", "status", "handler"]
        self.requests = Counter(
            "http_requests_total", "Total number of requests by method, status and handler.", labels, registry=registry
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Latency with only few buckets by handler.",
            ["method", "handler"],
            buckets=LATENCY_SECONDS,
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            handler = self._template(scope)
            if handler != "/metrics":
                method = scope["method"]
                self.requests.labels(method, f"{status // 100}xx", handler).inc()
                self.latency.labels(method, handler).observe(time.perf_counter() - started)

    def _template(self, scope: Scope) -> str:
        """The matched route's full template; "none" for a path no route matched (a path is no label)."""
        if self._templates is None:  # FastAPI's own walk of the routes, included routers and their prefixes too
            self._templates = {id(c.original_route): c.path or "none" for c in iter_route_contexts(scope["app"].routes)}
        route = scope.get("route")
        return self._templates.get(id(route), "none") if route is not None else "none"


def install_metrics(app: FastAPI, settings: Settings) -> None:
    # A registry per app (tests build many apps in one process); with several workers the values live in
    # PROMETHEUS_MULTIPROC_DIR's files whatever the registry, and are added up at each scrape.
    own = CollectorRegistry()
    app.add_middleware(HTTPMetrics, registry=own)
    shared = CollectorRegistry()
    shared.register(SharedCounters(metrics_for(settings.redis_url)))

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        token = settings.metrics_token.get_secret_value()
        if token:
            given = request.headers.get("authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {token}".encode()):
                raise HTTPError("A metrics token is required.", code="unauthorised", status_code=401)
        registry = own
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return Response(generate_latest(registry) + generate_latest(shared), media_type=CONTENT_TYPE_LATEST)
