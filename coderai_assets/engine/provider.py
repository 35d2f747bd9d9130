"""Every call to a model provider goes through one `ProviderGuard`: a rate limit shared by every process, retries
with backoff, and a circuit breaker shared the same way.

- **Rate limit** (`limits`, sliding-window counters in Redis, so all run workers of all runs and tenants draw on
  one budget): requests and tokens a minute per provider and key. A workspace's calls also count against its
  share, the limit divided by the workspaces that called in the last minute, so one tenant's large run cannot
  starve another's sample, and a lone tenant gets the whole limit.
- **Retries** (`tenacity`): 429, 5xx, timeouts and dropped connections, with exponential backoff and jitter, and
  never sooner than the provider's `Retry-After`. Authentication, permission and quota errors are not retried:
  they raise `ProviderFatal` with a stable code, and the run stops.
- **Circuit breaker** (`pybreaker`, its state in Redis): opens after `fail_max` consecutive failures of the
  provider itself (5xx, timeouts, connection errors; a 429 is the provider working), lets a trial call through
  after `reset_seconds`. While it is open, callers wait rather than fail, up to `max_outage_seconds`, then raise
  `ProviderUnavailable`.

Without Redis (`CODERAI_REDIS_URL=memory://`) the same code keeps its state in the process: right for one process,
and said in a warning, since several run workers would then each use the whole limit.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pybreaker
from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from coderai_assets.engine.metrics import Metrics
from coderai_assets.errors import StopsWork

log = logging.getLogger(__name__)
T = TypeVar("T")

AUTH_FAILED = "llm_auth_failed"
QUOTA_EXCEEDED = "llm_quota_exceeded"
PROVIDER_UNAVAILABLE = "llm_unavailable"
# A workspace counts as active (and takes its share of the limit) for this long after its last call or attempt: a
# workspace waiting for the limit tries again at least every second, and one that finished frees its share soon
# (with a minute, a finished workspace held half the limit for up to a minute: 76% of the limit used, measured).
ACTIVE_WINDOW_SECONDS = 10


class ProviderFatal(StopsWork):
    """The provider's refusal that no retry can fix (bad key, no quota left): the run stops with `code`."""

    def __init__(self, code: str, message: str):
        super().__init__(message, code=code)


class ProviderUnavailable(ProviderFatal):
    def __init__(self, message: str):
        super().__init__(PROVIDER_UNAVAILABLE, message)


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _error_code(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return str(inner.get("code") or inner.get("type") or "")
    return str(getattr(exc, "code", "") or "")


def _is_timeout_or_connection(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"APITimeoutError", "APIConnectionError", "TimeoutException", "TransportError"}) or isinstance(
        exc, (TimeoutError, ConnectionError)
    )


def classify(exc: BaseException) -> str:
    """`fatal`, `rate_limited`, `outage` (counts against the breaker) or `other` (a bad request: not retried)."""
    status = _status(exc)
    if status in (401, 403):
        return "fatal"
    if status == 429:
        return "fatal" if _error_code(exc) == "insufficient_quota" else "rate_limited"
    if status is not None and status >= 500:
        return "outage"
    if status is None and _is_timeout_or_connection(exc):
        return "outage"
    return "other"


def retry_after_seconds(exc: BaseException) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    for name in ("retry-after-ms", "retry-after"):
        value = headers.get(name) if hasattr(headers, "get") else None
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        return seconds / 1000 if name == "retry-after-ms" else seconds
    return None


@dataclass
class GuardStats:
    """What this process saw; the shared counters (engine/metrics.py) get the same."""

    calls: int = 0
    retries: int = 0
    rate_limited: int = 0
    breaker_waits: int = 0
    limit_wait_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **amounts: float) -> None:
        with self.lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)


@dataclass(frozen=True)
class GuardConfig:
    provider_key: str  # provider, base URL and API key, hashed: the scope of the shared limit and breaker
    storage_url: str = "memory://"
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_attempts: int = 6
    max_backoff_seconds: float = 60.0
    breaker_fail_max: int = 5
    breaker_reset_seconds: float = 30.0
    max_outage_seconds: float = 3600.0


class ProviderGuard:
    def __init__(self, config: GuardConfig, sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self.sleep = sleep
        self.stats = GuardStats()
        self.namespace = f"coderai:provider:{config.provider_key}"
        self._redis = _reachable_redis(config.storage_url)
        state_storage: pybreaker.CircuitBreakerStorage = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
        if self._redis is not None:
            self.storage = storage_from_string(config.storage_url)
            state_storage = pybreaker.CircuitRedisStorage(
                pybreaker.STATE_CLOSED, self._redis, namespace=f"{self.namespace}:breaker"
            )
        else:
            log.warning(
                "the provider's rate limit and circuit breaker are kept in this process (%s): several run workers "
                "would each use the whole limit; set CODERAI_REDIS_URL to a reachable Redis",
                config.storage_url,
            )
            self.storage = storage_from_string("memory://")
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)
        self.metrics = Metrics(self._redis)
        self.label = {"provider": config.provider_key[:12]}
        self._active: dict[str, float] = {}  # workspace -> last call, when there is no Redis
        self._breaker_state = state_storage
        self._trial = threading.Lock()  # held by this process's one trial call while the breaker is half-open
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=config.breaker_fail_max,
            reset_timeout=config.breaker_reset_seconds,
            # Only the provider failing counts: a 429 is the provider working, a 400 is our request.
            exclude=[lambda exc: classify(exc) != "outage"],
            state_storage=state_storage,
            name=self.namespace,
        )

    # --- the shared rate limit -------------------------------------------------------------------------------

    def _active_workspaces(self, workspace: str) -> int:
        """Workspaces that called (or tried to) in the last ACTIVE_WINDOW_SECONDS, this one included."""
        now = time.time()
        if self._redis is not None:
            key = f"{self.namespace}:active"
            pipe = self._redis.pipeline()
            pipe.zadd(key, {workspace: now})
            pipe.zremrangebyscore(key, 0, now - ACTIVE_WINDOW_SECONDS)
            pipe.zcard(key)
            pipe.expire(key, ACTIVE_WINDOW_SECONDS * 2)
            return max(1, int(pipe.execute()[2]))
        self._active[workspace] = now
        for name, seen in list(self._active.items()):
            if seen < now - ACTIVE_WINDOW_SECONDS:
                del self._active[name]
        return max(1, len(self._active))

    def _acquire(self, workspace: str, tokens: int) -> None:
        """Waits until the call fits the workspace's share and then the provider's limit (requests and tokens)."""
        rpm, tpm = self.config.requests_per_minute, self.config.tokens_per_minute
        limits: list[tuple[Any, tuple[str, ...], int]] = []
        if rpm:
            # A workspace's share: each of its calls costs as many units as there are active workspaces, so its
            # calls a minute are the limit divided among them, and its counter survives the share changing.
            limits.append((RateLimitItemPerMinute(rpm), (self.namespace, "requests", workspace), 0))
            limits.append((RateLimitItemPerMinute(rpm), (self.namespace, "requests"), 1))
        if tpm:
            limits.append((RateLimitItemPerMinute(tpm), (self.namespace, "tokens"), min(tokens, tpm)))
        waited = 0.0
        for item, identifiers, cost in limits:
            while True:
                units = cost or self._active_workspaces(workspace)
                if self.limiter.hit(item, *identifiers, cost=units):
                    break
                stats = self.limiter.get_window_stats(item, *identifiers)
                pause = min(max(stats.reset_time - time.time(), 0.05), 1.0) * random.uniform(0.5, 1.0)
                self.sleep(pause)
                waited += pause
        if waited:
            self._count(limit_wait_seconds=waited)

    _METRIC = {
        "calls": "llm_calls",
        "retries": "llm_retries",
        "breaker_waits": "llm_breaker_waits",
        "limit_wait_seconds": "llm_rate_limit_wait_seconds",
    }

    def _count(self, **amounts: float) -> None:
        self.stats.add(**amounts)
        for name, amount in amounts.items():
            if name in self._METRIC and amount:
                self.metrics.add(self._METRIC[name], amount, **self.label)

    # --- one call ----------------------------------------------------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        backoff = min(self.config.max_backoff_seconds, 0.5 * 2 ** (state.attempt_number - 1))
        backoff *= random.uniform(0.5, 1.0)  # jitter: callers that failed together do not return together
        after = retry_after_seconds(exc) if exc is not None else None
        return max(backoff, after or 0.0)

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self._count(retries=1, rate_limited=int(exc is not None and classify(exc) == "rate_limited"))

    def call(
        self, fn: Callable[[], T], *, workspace: str = "-", tokens: int = 0, admit: Callable[[], None] | None = None
    ) -> T:
        """`fn()` under the rate limit, retried and behind the breaker. `tokens`: the call's estimated tokens.
        `admit()` is asked right before each attempt, once the rate limit let it through (it raises to refuse:
        the spending caps), so that a call that waited for the limit is judged by what was spent meanwhile."""
        started, waited = time.monotonic(), 0.0
        while True:
            try:
                return self._call_with_retries(fn, workspace, tokens, admit)
            except pybreaker.CircuitBreakerError as exc:
                # The provider is down: wait for the breaker's trial call instead of failing the document.
                if max(time.monotonic() - started, waited) > self.config.max_outage_seconds:
                    raise ProviderUnavailable(
                        f"the provider failed for more than {self.config.max_outage_seconds:.0f} s: {exc}"
                    ) from exc
                pause = min(5.0, self.config.breaker_reset_seconds) * random.uniform(0.5, 1.0)
                self._count(breaker_waits=1)
                self.sleep(pause)
                waited += pause

    def _through_breaker(self, fn: Callable[[], T]) -> T:
        """`fn()` with the breaker's bookkeeping, but not under its lock: pybreaker's `call` holds a lock for the
        whole call, which made every call of a process wait for the one before (measured: 2 in flight from 32
        threads). So the state is checked first, the call made, and its outcome then replayed through `call`."""
        trial = self._admit()
        try:
            started = time.monotonic()
            try:
                result, error = fn(), None
            except Exception as exc:
                result, error = None, exc
            self.metrics.observe_latency(time.monotonic() - started, **self.label)
            if error is not None:
                self.metrics.add("llm_errors", 1.0, kind=classify(error), **self.label)

            def replay() -> T:
                if error is not None:
                    raise error
                return result  # type: ignore[return-value]

            try:
                return self.breaker.call(replay)
            except pybreaker.CircuitBreakerError:
                if error is None:
                    return result  # type: ignore[return-value]  # another process opened it meanwhile; ours worked
                raise
        finally:
            if trial:
                self._trial.release()

    def _admit(self) -> bool:
        """Raises CircuitBreakerError while the breaker is open; once its timeout has passed, lets one call of this
        process through as the trial (True) and keeps the others waiting until it has answered."""
        state = self.breaker.current_state
        if state == pybreaker.STATE_CLOSED:
            return False
        opened = self._breaker_state.opened_at
        reset = timedelta(seconds=self.config.breaker_reset_seconds)
        if state == pybreaker.STATE_OPEN and opened is not None and datetime.now(UTC) < opened + reset:
            raise pybreaker.CircuitBreakerError("the circuit breaker is open")
        if self._trial.acquire(blocking=False):
            return True
        raise pybreaker.CircuitBreakerError("a trial call is under way")

    def _call_with_retries(
        self, fn: Callable[[], T], workspace: str, tokens: int, admit: Callable[[], None] | None = None
    ) -> T:
        retrying = Retrying(
            retry=retry_if_exception(lambda exc: classify(exc) in ("rate_limited", "outage")),
            stop=stop_after_attempt(self.config.max_attempts),
            wait=self._wait,
            sleep=self.sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                self._acquire(workspace, tokens)
                if admit is not None:
                    admit()
                self._count(calls=1)
                try:
                    return self._through_breaker(fn)
                except pybreaker.CircuitBreakerError:
                    raise
                except Exception as exc:
                    if classify(exc) == "fatal":
                        code = QUOTA_EXCEEDED if _status(exc) == 429 else AUTH_FAILED
                        raise ProviderFatal(code, f"{type(exc).__name__}: {exc}") from exc
                    raise
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover


def breaker_states(redis: Any | None) -> dict[str, str]:
    """Each provider's breaker state as pybreaker keeps it in Redis (`closed`, `open`, `half-open`), by the label
    the metrics use; empty without Redis."""
    if redis is None:
        return {}
    states = {}
    try:
        for key in redis.scan_iter(match="coderai:provider:*:breaker:pybreaker:state", count=100):
            name = key.decode() if isinstance(key, bytes) else key
            value = redis.get(key)
            states[name.split(":")[2][:12]] = value.decode() if isinstance(value, bytes) else str(value or "closed")
    except Exception as exc:  # a scrape never fails on Redis
        log.warning("could not read the breakers' state: %s", exc)
    return states


def _reachable_redis(url: str) -> Any:
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        log.error("Redis at %s is not reachable (%s)", url, exc)
        return None
    return client


def provider_key(provider: str, base_url: str, api_key: str) -> str:
    """The scope of a limit: the same provider and key share it, whatever the model; the key itself never stored."""
    return hashlib.sha256(f"{provider}\x00{base_url}\x00{api_key}".encode()).hexdigest()[:16]


_guards: dict[GuardConfig, ProviderGuard] = {}
_guards_lock = threading.Lock()


def guard_for(config: GuardConfig) -> ProviderGuard:
    """One guard per process and configuration: its breaker, limiter and counters are shared by the threads."""
    with _guards_lock:
        if config not in _guards:
            _guards[config] = ProviderGuard(config)
        return _guards[config]


def estimate_tokens(text: str, max_output_tokens: int) -> int:
    """Tokens a call may use, for the tokens-a-minute limit: about 4 characters a token, plus the answer cap."""
    return math.ceil(len(text) / 4) + max_output_tokens
