"""Calls to a provider (engine/provider.py): retries honouring Retry-After, no retry on a bad key or an empty quota,
a breaker that makes callers wait out an outage, and one rate limit that separate processes share through Redis,
with a fair share per workspace. The provider's errors are the OpenAI SDK's own exceptions."""

from __future__ import annotations

import uuid

import httpx
import openai
import pytest

from coderai_assets.engine.provider import (
    AUTH_FAILED,
    QUOTA_EXCEEDED,
    GuardConfig,
    ProviderFatal,
    ProviderGuard,
    ProviderUnavailable,
    classify,
    retry_after_seconds,
)
from tests.support.redis import REDIS_URL, redis_or_skip


def _error(status: int, *, headers: dict[str, str] | None = None, code: str | None = None) -> openai.APIStatusError:
    request = httpx.Request("POST", "https://provider.test/v1/chat/completions")
    response = httpx.Response(status, headers=headers or {}, request=request)
    body = {"error": {"message": "test", "code": code}} if code else None
    cls = {401: openai.AuthenticationError, 429: openai.RateLimitError, 500: openai.InternalServerError}.get(
        status, openai.APIStatusError
    )
    return cls("test", response=response, body=body)


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _guard(storage: str = "memory://", **config) -> tuple[ProviderGuard, Sleeps]:
    sleeps = Sleeps()
    guard = ProviderGuard(GuardConfig(provider_key=uuid.uuid4().hex[:16], storage_url=storage, **config), sleeps)
    return guard, sleeps


class Flaky:
    """Raises the given errors in turn, then answers."""

    def __init__(self, *errors: BaseException):
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "answer"


def test_classification_of_provider_errors():
    assert classify(_error(401)) == "fatal"
    assert classify(_error(429, code="insufficient_quota")) == "fatal"
    assert classify(_error(429)) == "rate_limited"
    assert classify(_error(503)) == "outage"
    assert classify(openai.APITimeoutError(request=httpx.Request("POST", "https://x"))) == "outage"
    assert classify(_error(400)) == "other"
    assert retry_after_seconds(_error(429, headers={"retry-after": "7"})) == 7
    assert retry_after_seconds(_error(429, headers={"retry-after-ms": "1500"})) == 1.5


def test_transient_errors_are_retried_with_backoff_and_retry_after_is_honoured():
    guard, sleeps = _guard()
    fn = Flaky(_error(503), _error(429, headers={"retry-after": "12"}), _error(500))
    assert guard.call(fn) == "answer"
    assert fn.calls == 4 and guard.stats.retries == 3 and guard.stats.rate_limited == 1
    assert sleeps[1] >= 12  # never sooner than the provider asked
    assert all(0 < s <= 60 for s in sleeps[:1] + sleeps[2:])


def test_retries_end_with_the_last_error():
    guard, _ = _guard(max_attempts=3, breaker_fail_max=100)
    fn = Flaky(*(_error(502) for _ in range(5)))
    with pytest.raises(openai.APIStatusError):
        guard.call(fn)
    assert fn.calls == 3


@pytest.mark.parametrize(
    ("error", "code"), [(_error(401), AUTH_FAILED), (_error(429, code="insufficient_quota"), QUOTA_EXCEEDED)]
)
def test_a_bad_key_or_an_empty_quota_is_not_retried(error, code):
    guard, sleeps = _guard()
    fn = Flaky(error)
    with pytest.raises(ProviderFatal) as raised:
        guard.call(fn)
    assert raised.value.code == code and fn.calls == 1 and sleeps == []


def test_an_outage_opens_the_breaker_and_callers_wait_instead_of_failing():
    import time

    guard, sleeps = _guard(breaker_fail_max=5, breaker_reset_seconds=0.2, max_attempts=20)
    guard.sleep = lambda s: (sleeps.append(s), time.sleep(min(s, 0.05)))  # type: ignore[assignment]
    fn = Flaky(*(_error(503) for _ in range(7)))
    assert guard.call(fn) == "answer"
    assert guard.stats.breaker_waits >= 1  # it waited for the breaker to let a trial call through
    # While the breaker was open no call reached the provider: 5 failures opened it, then one trial at a time.
    assert fn.calls == 8
    assert guard.breaker.current_state == "closed"


def test_an_outage_longer_than_allowed_fails_with_a_code():
    guard, sleeps = _guard(breaker_fail_max=2, breaker_reset_seconds=30, max_outage_seconds=10)
    with pytest.raises(ProviderUnavailable) as raised:
        guard.call(Flaky(*(_error(503) for _ in range(10))))
    assert raised.value.code == "llm_unavailable" and sum(sleeps) > 10


class Blocked(Exception):
    """The guard would have waited for the rate limit."""


def _blocking(guard: ProviderGuard) -> ProviderGuard:
    def refuse(seconds: float) -> None:
        raise Blocked

    guard.sleep = refuse  # type: ignore[assignment]
    return guard


def _calls_before_waiting(guard: ProviderGuard, workspace: str, limit: int = 1000, tokens: int = 0) -> int:
    for n in range(limit):
        try:
            guard.call(lambda: "answer", workspace=workspace, tokens=tokens)
        except Blocked:
            return n
    return limit


def test_separate_processes_share_one_limit_through_redis():
    redis_or_skip("the limit shared through Redis")
    key = uuid.uuid4().hex[:16]
    config = GuardConfig(provider_key=key, storage_url=REDIS_URL, requests_per_minute=30)
    # Two guards with their own connections and breakers stand for two run workers.
    first, second = _blocking(ProviderGuard(config)), _blocking(ProviderGuard(config))
    assert _calls_before_waiting(first, "w1", limit=20) == 20
    assert _calls_before_waiting(second, "w1") == 10  # what the first left of the minute
    assert _calls_before_waiting(first, "w1") == 0


def test_each_active_workspace_gets_its_share_and_a_lone_one_gets_all():
    redis_or_skip("the limit shared through Redis")
    config = GuardConfig(provider_key=uuid.uuid4().hex[:16], storage_url=REDIS_URL, requests_per_minute=20)
    guard = _blocking(ProviderGuard(config))
    assert _calls_before_waiting(guard, "alone", limit=12) == 12  # alone: more than half
    config = GuardConfig(provider_key=uuid.uuid4().hex[:16], storage_url=REDIS_URL, requests_per_minute=20)
    guard = _blocking(ProviderGuard(config))
    guard.call(lambda: "answer", workspace="b")  # b is active too
    a = _calls_before_waiting(guard, "a")
    b = _calls_before_waiting(guard, "b")
    assert a == 10 and 1 + b <= 10 and 1 + a + b <= 20


def test_tokens_a_minute_are_limited_too():
    guard, _ = _guard(tokens_per_minute=1000)
    _blocking(guard)
    assert _calls_before_waiting(guard, "w", tokens=400) == 2


def test_without_redis_the_limit_is_kept_in_the_process(caplog):
    guard, _ = _guard(storage="redis://127.0.0.1:1/0", requests_per_minute=5)
    _blocking(guard)
    assert _calls_before_waiting(guard, "w") == 5
    assert "not reachable" in caplog.text


def test_calls_of_one_process_run_at_once():
    """pybreaker's own `call` holds a lock for the whole call: every call of a process then waited for the one before
    (2 in flight from 32 threads at the simulator). The guard keeps the breaker's bookkeeping off the call."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    guard, _ = _guard()
    in_flight, most = 0, 0
    lock = threading.Lock()

    def slow() -> str:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        time.sleep(0.2)
        with lock:
            in_flight -= 1
        return "answer"

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(lambda _: guard.call(slow), range(8))) == ["answer"] * 8
    assert most >= 4


def test_a_call_the_spending_cap_refuses_is_not_made_nor_retried():
    """The cap is asked after the rate limit let the call through (what was spent while it waited counts), and
    its refusal stops the caller without a retry and without counting against the breaker."""
    from coderai_assets.engine.spending import BudgetExceeded

    guard, _ = _guard()
    made = []

    def refuse() -> None:
        raise BudgetExceeded("the run has spent its cap")

    with pytest.raises(BudgetExceeded) as stopped:
        guard.call(lambda: made.append(1), admit=refuse)
    assert (made, stopped.value.code, guard.stats.retries) == ([], "budget_exceeded", 0)
    assert guard.call(lambda: "answer", admit=lambda: None) == "answer"


def test_calls_errors_retries_and_latency_are_counted_for_the_metrics():
    guard, _ = _guard()
    assert guard.call(Flaky(_error(503), _error(429))) == "answer"
    values = guard.metrics.snapshot()
    provider = f"provider={guard.label['provider']}"
    assert values[f"llm_calls|{provider}"] == 3 and values[f"llm_retries|{provider}"] == 2
    assert values[f"llm_errors|kind=outage,{provider}"] == 1
    assert values[f"llm_errors|kind=rate_limited,{provider}"] == 1
    assert values[f"llm_call_seconds_count|{provider}"] == 3
    assert values[f"llm_call_seconds_bucket|le=0.1,{provider}"] == 3  # the fakes answer at once


def test_run_workers_add_to_one_set_of_counters_through_redis():
    """Two processes' counters (two Metrics on their own connections) add up in Redis, where /metrics reads them."""
    import redis

    from coderai_assets.engine.metrics import Metrics

    redis_or_skip("the limit shared through Redis")
    first, second = (Metrics(redis.Redis.from_url(REDIS_URL)) for _ in range(2))
    label = uuid.uuid4().hex[:8]
    before = first.snapshot().get(f"documents|outcome={label}", 0.0)
    first.add("documents", outcome=label)
    second.add("documents", 2, outcome=label)
    first.flush()  # as a run worker does when its run ends (and once a second while it runs)
    assert second.snapshot()[f"documents|outcome={label}"] == before + 3


def test_what_stops_work_is_one_family_and_a_cancellation_is_no_provider_failure():
    """A run stops on the provider's refusal, a cap or a cancellation alike (StopsWork), each with its own code;
    a cancellation is not the provider's failure; the facade alone decides the HTTP status of each error."""
    from coderai_api.errors import HTTPError, status_of
    from coderai_assets.engine.spending import BudgetExceeded
    from coderai_assets.errors import Canceled, CoderAIError, Conflict, DocumentRejected, LLMError, NotFound, StopsWork

    refusals = [ProviderFatal("auth_failed", "bad key"), BudgetExceeded("over the cap"), Canceled("by the user")]
    assert all(isinstance(e, StopsWork) and isinstance(e, CoderAIError) for e in refusals)
    assert [e.code for e in refusals] == ["auth_failed", "budget_exceeded", "canceled"]
    assert not isinstance(Canceled("by the user"), ProviderFatal)
    assert not hasattr(CoderAIError("x"), "status_code")  # the pipeline's errors carry no HTTP status
    statuses = [NotFound("x"), Conflict("x", code="run_active"), DocumentRejected("x", code="encrypted"), LLMError("x")]
    assert [status_of(e) for e in statuses] == [404, 409, 422, 502]
    assert status_of(Canceled("x")) == 500 and status_of(HTTPError("x", status_code=403)) == 403
