"""Operator metrics that every process adds to and one endpoint shows: run workers (short-lived processes, one per
Dagster run, possibly in other containers) add to counters in Redis, the same Redis that holds the provider's
rate limit and breaker; the API's /metrics reads them and renders them for Prometheus (coderai_api/metrics.py),
beside its own HTTP metrics. Without Redis the counters stay in the process (a warning is logged by the guard).

Labels stay few and never name a tenant: `provider` (the hashed provider key), the error `kind`, the document
failure `code`."""

from __future__ import annotations

import threading
import time
import weakref
from collections import defaultdict
from typing import Any

KEY = "coderai:metrics"
# Seconds a provider call took (the model's answer, not the wait for the rate limit).
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)

COUNTERS = {
    "llm_calls": "Calls made to the provider (attempts, retries included)",
    "llm_errors": "Provider calls that failed, by kind: rate_limited, outage, fatal, other",
    "llm_retries": "Provider calls retried after a 429, a 5xx, a timeout or a dropped connection",
    "llm_rate_limit_wait_seconds": "Seconds callers waited for the shared rate limit",
    "llm_breaker_waits": "Times a caller waited because the circuit breaker was open",
    "llm_input_tokens": "Prompt tokens the provider reported",
    "llm_output_tokens": "Answer tokens the provider reported",
    "documents": "Documents coded, by outcome (done, failed) and error code",
    "spend_usd": "USD spent on provider calls, as each answer is committed",
}


def field_name(name: str, labels: dict[str, str]) -> str:
    return name + "|" + ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def parse_field(field: str) -> tuple[str, dict[str, str]]:
    name, _, rest = field.partition("|")
    return name, dict(part.split("=", 1) for part in rest.split(",") if "=" in part)


class Metrics:
    """Adds to the shared counters. Additions are kept in the process and sent to Redis at most once a second (one
    pipeline), and by `flush()`: a round trip per addition cost a run a millisecond a document."""

    FLUSH_SECONDS = 1.0

    def __init__(self, redis: Any | None = None):
        self.redis = redis
        self._local: dict[str, float] = defaultdict(float)  # what Redis could not take: counted here for good
        self._pending: dict[str, float] = defaultdict(float)
        self._flushed = time.monotonic()
        self._lock = threading.Lock()
        _instances.add(self)

    def add(self, name: str, amount: float = 1.0, **labels: str) -> None:
        self._add({field_name(name, labels): amount})

    def observe_latency(self, seconds: float, **labels: str) -> None:
        """One observation of the call latency histogram (cumulative buckets, as Prometheus keeps them)."""
        amounts = {field_name("llm_call_seconds_bucket", {**labels, "le": str(b)}): 1.0 for b in LATENCY_BUCKETS}
        for bound in LATENCY_BUCKETS:
            if seconds > bound:
                del amounts[field_name("llm_call_seconds_bucket", {**labels, "le": str(bound)})]
        amounts[field_name("llm_call_seconds_count", labels)] = 1.0
        amounts[field_name("llm_call_seconds_sum", labels)] = seconds
        self._add(amounts)

    def _add(self, amounts: dict[str, float]) -> None:
        with self._lock:
            target = self._pending if self.redis is not None else self._local
            for name, amount in amounts.items():
                target[name] += amount
            due = self.redis is not None and time.monotonic() - self._flushed >= self.FLUSH_SECONDS
        if due:
            self.flush()

    def flush(self) -> None:
        """Sends what is pending to Redis; on failure it stays counted in the process (metrics never fail a call)."""
        with self._lock:
            pending, self._pending = self._pending, defaultdict(float)
            self._flushed = time.monotonic()
        if not pending or self.redis is None:
            return
        try:
            pipe = self.redis.pipeline(transaction=False)
            for name, amount in pending.items():
                pipe.hincrbyfloat(KEY, name, amount)
            pipe.execute()
        except Exception:
            with self._lock:
                for name, amount in pending.items():
                    self._local[name] += amount

    def snapshot(self) -> dict[str, float]:
        """Every counter: the shared ones, plus what this process kept for itself or has not sent yet."""
        values: dict[str, float] = defaultdict(float)
        if self.redis is not None:
            for name, value in self.redis.hgetall(KEY).items():
                values[name.decode() if isinstance(name, bytes) else name] += float(value)
        with self._lock:
            for table in (self._local, self._pending):
                for name, value in table.items():
                    values[name] += value
        return dict(values)


_instances: weakref.WeakSet[Metrics] = weakref.WeakSet()


def flush_all() -> None:
    """Every counter of this process to Redis: a run worker calls it before its process ends."""
    for metrics in list(_instances):
        metrics.flush()


_shared: dict[str, Metrics] = {}
_shared_lock = threading.Lock()


def metrics_for(redis_url: str) -> Metrics:
    """One per process and URL; `memory://` (or anything but Redis) keeps the counters in the process."""
    with _shared_lock:
        if redis_url not in _shared:
            client = None
            if redis_url.startswith(("redis://", "rediss://", "unix://")):
                import redis

                client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
            _shared[redis_url] = Metrics(client)
        return _shared[redis_url]
