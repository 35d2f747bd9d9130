"""Redis for the tests that need it: the shared rate limit and the run workers' counters."""

from __future__ import annotations

import os

import pytest

REDIS_URL = os.environ.get("CODERAI_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def redis_or_skip(what: str, url: str = REDIS_URL):
    """A client of Redis at `url`, or the test skipped saying what went unchecked without it."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip(f"Redis is not reachable at {url}: {what} not checked")
    return client
