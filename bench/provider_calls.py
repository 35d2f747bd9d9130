"""Calls at the provider's limit (`make bench-provider`, about 6 minutes): the real LangChain client and the provider
guard (engine/provider.py: the shared Redis rate limit, tenacity retries, the pybreaker breaker) against the
OpenAI-compatible simulator (bench/llm_simulator.py) at 1 s latency and 600 requests a minute.

Prints, in one run (figures, never asserted):
1. 1,000 calls from two processes (two run workers) of 16 threads each: wall time against the ideal (1,000 / 600 a
   minute = 100 s), the share of the limit used, 429s received;
2. two workspaces calling at once under the same limit: the calls each got while both were active, and the busiest
   minute of both together;
3. 20% injected 500s: calls failed (target 0) and retries;
4. a 60 s outage mid-run: the breaker's waits, calls failed (target 0), and when the last call ended.

What is measured is the call layer a run worker uses; the whole platform's runs are in bench/service_load.py.
Environment: CODERAI_BENCH_CALLS (1000), CODERAI_BENCH_RPM (600), CODERAI_BENCH_LATENCY_MS (1000).
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CALLS = int(os.environ.get("CODERAI_BENCH_CALLS", "1000"))
RPM = int(os.environ.get("CODERAI_BENCH_RPM", "600"))
LATENCY_MS = int(os.environ.get("CODERAI_BENCH_LATENCY_MS", "1000"))
PORT = 18910
THREADS = 16


def settings_for(key: str, rpm: int | None = RPM, **extra):
    from coderai_assets.settings import Settings

    return Settings(
        llm_provider="openai_compatible",
        llm_base_url=f"http://127.0.0.1:{PORT}/v1",
        llm_model="simulator",
        llm_api_key=key,  # a fresh key per scenario: a limit and a breaker of its own
        llm_context_tokens=128000,
        llm_requests_per_minute=rpm,
        **extra,
    )


def worker(key: str, workspace: str, calls: int, extra: dict, results) -> None:
    """One run worker: `calls` calls from THREADS threads through the guard; puts (ok, failed, stats, ends)."""
    from coderai_assets.engine.llm import build_chat_model, guard_config
    from coderai_assets.engine.provider import guard_for

    settings = settings_for(key, **extra)
    model, _ = build_chat_model(settings)
    guard = guard_for(guard_config(settings))
    ok, failed, ends = 0, 0, []
    lock = threading.Lock()

    def one(n: int) -> None:
        nonlocal ok, failed
        try:
            guard.call(lambda: model.invoke(f"call {n}"), workspace=workspace, tokens=0)
            with lock:
                ok += 1
                ends.append(time.time())
        except Exception as exc:  # counted: the target is none
            with lock:
                failed += 1
            print(f"  call failed: {type(exc).__name__}: {str(exc)[:120]}", flush=True)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(one, range(calls)))
    stats = {k: v for k, v in vars(guard.stats).items() if k != "lock"}
    results.put((workspace, ok, failed, stats, ends))


def run_workers(specs: list[tuple[str, str, int, dict]]) -> list[tuple]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=worker, args=(*spec, results)) for spec in specs]
    for process in processes:
        process.start()
    out = [results.get() for _ in processes]
    for process in processes:
        process.join()
    return out


def simulator(path: str, body: dict | None = None) -> dict:
    url = f"http://127.0.0.1:{PORT}{path}"
    response = httpx.post(url, json=body) if body is not None or path != "/stats" else httpx.get(url)
    return response.json()


def main() -> None:
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "llm_simulator.py"), "--port", str(PORT)]
        + ["--latency-ms", str(LATENCY_MS), "--rpm", str(RPM)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{PORT}/stats")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        ideal = CALLS / RPM * 60
        print(f"== {CALLS} calls, {LATENCY_MS} ms latency, a limit of {RPM} a minute, two processes ==")
        key = uuid.uuid4().hex
        simulator("/reset", {})
        start = time.time()
        out = run_workers([(key, "w1", CALLS // 2, {}), (key, "w1", CALLS - CALLS // 2, {})])
        wall = time.time() - start
        stats = simulator("/stats")
        ok = sum(o[1] for o in out)
        # Share of the limit: calls answered per minute of the run, against the limit.
        print(
            f"wall {wall:.1f} s against the ideal {ideal:.0f} s ({ideal / wall:.0%} of the limit used); "
            f"{ok} ok, {sum(o[2] for o in out)} failed; 429s received {stats['rate_limited']}; "
            f"most in flight {stats['max_in_flight']}"
        )

        print("== two workspaces at once under one limit ==")
        key = uuid.uuid4().hex
        simulator("/reset", {})
        out = run_workers([(key, "alpha", CALLS // 2, {}), (key, "beta", CALLS // 4, {})])
        ends = {o[0]: sorted(o[4]) for o in out}
        both_until = min(max(e) for e in ends.values())
        got = {w: sum(1 for t in e if t <= both_until) for w, e in ends.items()}
        every = sorted(t for e in ends.values() for t in e)
        # The most calls answered in any 60 s: the limit is a sliding minute.
        busiest = max(sum(1 for t in every[i:] if t < start + 60) for i, start in enumerate(every))
        print(
            "while both ran: "
            + ", ".join(f"{w} {n} calls" for w, n in sorted(got.items()))
            + f"; the busiest minute of both together {busiest} calls against the limit {RPM}; "
            f"429s {simulator('/stats')['rate_limited']}"
        )

        print("== 20% injected 500s ==")
        key = uuid.uuid4().hex
        simulator("/reset", {})
        simulator("/configure", {"error_rate": 0.2})
        (result,) = run_workers([(key, "w1", 200, {})])
        simulator("/configure", {"error_rate": 0.0})
        print(f"200 calls: {result[1]} ok, {result[2]} failed; retries {result[3]['retries']}")

        print("== a 60 s outage mid-run ==")
        key = uuid.uuid4().hex
        simulator("/reset", {})
        timer = threading.Timer(10, lambda: simulator("/configure", {"outage_seconds": 60}))
        timer.start()
        start = time.time()
        (result,) = run_workers([(key, "w1", 300, {})])
        stats = simulator("/stats")
        print(
            f"300 calls: {result[1]} ok, {result[2]} failed; breaker waits {result[3]['breaker_waits']}, retries "
            f"{result[3]['retries']}; calls that reached the provider during the outage "
            f"{stats['errors']}; done {time.time() - start:.0f} s after the start (outage from 10 s to 70 s)"
        )
    finally:
        process.terminate()


if __name__ == "__main__":
    main()
