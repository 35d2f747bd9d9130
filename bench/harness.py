"""What the platform benchmarks share: an environment of their own (databases, storage, ports), the simulator and the
platform started and stopped around them, and the API calls every benchmark makes."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
FINAL = ("succeeded", "failed", "canceled")


def bench_environment(ports: int, simulator_port: int, **extra: str) -> Path:
    """Sets the CODERAI_* variables of a bench run (databases named after a fresh session id, API and Dagster
    ports from `ports`, the model the simulator) before any setting is read; returns its scratch folder."""
    session = uuid.uuid4().hex[:8]
    scratch = Path(tempfile.mkdtemp(prefix=f"coderai-bench-{session}-"))
    os.environ.update(
        {
            "CODERAI_ENV": "test",
            "CODERAI_DATABASE_URL": f"postgresql+psycopg2://coderai_app@127.0.0.1:5432/coderai_bench_{session}",
            "CODERAI_MIGRATION_DATABASE_URL": f"postgresql+psycopg2://postgres@127.0.0.1:5432/coderai_bench_{session}",
            "CODERAI_DAGSTER_DATABASE_URL": f"postgresql+psycopg2://postgres@127.0.0.1:5432/coderai_bench_{session}_dg",
            "CODERAI_STORAGE_DIR": str(scratch / "storage"),
            "CODERAI_DAGSTER_HOME": str(scratch / "dagster_home"),
            "CODERAI_LLM_PROVIDER": "openai_compatible",
            "CODERAI_LLM_BASE_URL": f"http://127.0.0.1:{simulator_port}/v1",
            "CODERAI_LLM_MODEL": "simulator",
            # A key of its own: the rate-limit counters in Redis are per provider and key.
            "CODERAI_LLM_API_KEY": f"bench-{session}",
            "CODERAI_LLM_CONTEXT_TOKENS": "128000",
            "CODERAI_API_PORT": str(ports),
            "CODERAI_DAGSTER_PORT": str(ports + 1),
            "CODERAI_DAGSTER_CODE_SERVER_PORT": str(ports + 2),
            "CODERAI_LOGIN_MAX_FAILURES_PER_ADDRESS": "1000",
            **extra,
        }
    )
    return scratch


@contextmanager
def running_platform(scratch: Path, simulator_args: list[str]) -> Iterator[tuple[object, str]]:
    """The simulator and the platform (API, Dagster code server, webserver, daemon) on fresh databases, dropped at
    the end; yields the platform and the API's base URL."""
    from coderai_assets.database_setup import drop_database, ensure_database, run_migrations
    from coderai_assets.platform import Platform
    from coderai_assets.settings import get_settings

    settings = get_settings()
    simulator = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "llm_simulator.py"), *simulator_args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    platform = Platform(settings, scratch / "logs")
    try:
        for url in (settings.migration_database_url, settings.dagster_database_url):
            ensure_database(url)
        run_migrations(settings.migration_database_url)
        platform.start(with_api=True, timeout=240)
        yield platform, f"http://{settings.api_host}:{settings.api_port}/api/v1"
    finally:
        platform.stop()
        simulator.terminate()
        simulator.wait(10)
        for url in (settings.migration_database_url, settings.dagster_database_url):
            drop_database(url)


def check(response: httpx.Response) -> dict:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.request.url}: {response.status_code} {response.text}")
    return response.json()


def login(client: httpx.Client) -> dict:
    """A new account (and so a workspace of its own), logged in on `client`."""
    email, password = f"bench-{uuid.uuid4().hex[:8]}@example.org", "correct horse battery"
    check(client.post("/auth/register", json={"email": email, "password": password}))
    tokens = check(client.post("/auth/login", json={"email": email, "password": password}))
    client.headers["Authorization"] = f"Bearer {tokens['access_token']}"
    return tokens


def wait_runs(client: httpx.Client, run_ids: list[str], timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        runs = [check(client.get(f"/runs/{r}")) for r in run_ids]
        if all(r["status"] in FINAL for r in runs) or time.monotonic() > deadline:
            return runs
        time.sleep(1)


def run_workers(platform) -> list:
    """The processes running Dagster runs: children of the code server's forkserver (defs/code_server.py)."""
    import psutil

    (server,) = [s for s in platform.services if s.name == "dagster-code-server"]
    children = psutil.Process(server.process.pid).children(recursive=True)
    forkservers = [c for c in children if "multiprocessing.forkserver" in " ".join(c.cmdline())]
    return [w for f in forkservers for w in f.children() if w.status() != psutil.STATUS_ZOMBIE]
