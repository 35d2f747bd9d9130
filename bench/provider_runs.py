"""Runs at the provider's limit, through the whole platform (`make bench-runs`): the real API, Dagster and run
workers against the OpenAI-compatible simulator at 1 s a call and 600 requests a minute (429 with Retry-After over
it), CoderAI's own limit set to the same 600 (CODERAI_LLM_REQUESTS_PER_MINUTE).

Prints, in one run (figures, never asserted):
1. 1,000 documents in one full run: wall time against the ideal (1,000 calls at 600 a minute = 100 s), the share of
   the limit used, 429s received, calls in flight at most;
2. two projects of two workspaces at once (300 documents each): calls each got while both ran, and the sum
   against the limit;
3. 20% injected 500s (200 documents): documents failed, retries (errors the simulator answered);
4. a 60 s outage (every call a 503) 10 s into a run of 300 documents: documents failed, calls that reached the
   simulator during the outage (the breaker keeps them to trials), when the run finished after the outage ended;
5. `kill -9` of the run workers 60 calls into a run of 300 documents: the run finishing by itself, every document
   once, calls answered by the simulator against the documents (paid twice: at most the calls in flight);
6. a cap of half the estimate (prices of GPT-4.1 set): the run stopping with `budget_exceeded`, spent against the
   cap. Run 1 also prints the estimate made before it against what it cost;
7. calls per document for 20 fields on 50 CUAD contracts with an OpenAI key and no context setting (needs the
   corpus, CODERAI_CORPUS; no platform).

Environment: CODERAI_BENCH_DOCUMENTS (1000).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import bench_environment, check, login, run_workers, running_platform, wait_runs

SIMULATOR_PORT = 18910
RPM = 600
N_DOCUMENTS = int(os.environ.get("CODERAI_BENCH_DOCUMENTS", "1000"))
# GPT-4.1's prices, so that estimates, spend and caps have something to count.
SCRATCH = bench_environment(
    18600,
    SIMULATOR_PORT,
    CODERAI_LLM_REQUESTS_PER_MINUTE=str(RPM),
    CODERAI_LLM_INPUT_PRICE_PER_MTOK="2.0",
    CODERAI_LLM_OUTPUT_PRICE_PER_MTOK="8.0",
)
SIMULATOR = f"http://127.0.0.1:{SIMULATOR_PORT}"
REPORT = "Some 450 dock workers marched through Porto on 3 June 2023 demanding better pay. Police reported no injuries."
VARIABLES = [
    {"name": "city", "type": "text", "description": "Where the event took place"},
    {"name": "participants", "type": "integer", "description": "How many took part"},
    {"name": "violence", "type": "boolean", "description": "Was anyone hurt"},
]


def stats() -> dict:
    return httpx.get(f"{SIMULATOR}/stats").json()


def configure(**body: float) -> None:
    httpx.post(f"{SIMULATOR}/configure", json=body).raise_for_status()


def project_with_documents(client: httpx.Client, name: str, n: int) -> str:
    """A project of `n` distinct one-chunk reports (none answered from another's cache)."""
    project = check(client.post("/projects", json={"name": name, "domain_description": "Protest reports."}))
    for variable in VARIABLES:
        check(client.post(f"/projects/{project['id']}/variables", json=variable))
    for batch in range(0, n, 100):
        files = [
            ("files", (f"{name}-{i}.txt", f"{REPORT} Report {name} number {i}.".encode()))
            for i in range(batch, min(n, batch + 100))
        ]
        check(client.post(f"/projects/{project['id']}/documents", files=files))
    time.sleep(3)  # registered by the intake sensor, as uploads are long before a user starts a run
    return project["id"]


def start(client: httpx.Client, project_id: str, **body: float) -> str:
    return check(client.post(f"/projects/{project_id}/runs", json={"kind": "full", **body}))["id"]


def estimate(client: httpx.Client, project_id: str) -> dict:
    return check(client.post(f"/projects/{project_id}/runs/estimate", json={"kind": "full"}))


def wait_for_calls(client: httpx.Client, run_id: str, calls: int, timeout: float = 300) -> float:
    """Until the run has answered `calls` calls; returns the time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = check(client.get(f"/runs/{run_id}"))
        if run["llm_calls"] >= calls or run["status"] in ("succeeded", "failed", "canceled"):
            return time.monotonic()
        time.sleep(0.5)
    raise RuntimeError(f"run {run_id}: fewer than {calls} calls in {timeout} s")


def seconds(run: dict) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(run["finished_at"]) - datetime.fromisoformat(run["started_at"])).total_seconds()


def summary(run: dict) -> str:
    return (
        f"run {run['status']}, {run['documents_done']} done, {run['documents_failed']} failed, {run['llm_calls']} calls"
    )


def bench_limit(client: httpx.Client) -> None:
    print(f"== 1. {N_DOCUMENTS} documents, 1 s a call, {RPM} a minute ==")
    project = project_with_documents(client, "thousand", N_DOCUMENTS)
    before, guess = stats(), estimate(client, project)
    (run,) = wait_runs(client, [start(client, project)], timeout=3600)
    after = stats()
    wall, ideal = seconds(run), N_DOCUMENTS / RPM * 60
    print(
        f"{summary(run)}; {wall:.1f} s against the ideal {ideal:.0f} s: {ideal / wall:.0%} of the limit used; "
        f"429s {after['rate_limited'] - before['rate_limited']}; at most {after['max_in_flight']} calls in flight"
    )
    print(
        f"estimated before the run: {guess['calls']} calls, {guess['input_tokens']} + {guess['output_tokens']} "
        f"tokens ({guess['output_basis']} answers), ${guess['cost_usd']:.4f} (at most ${guess['cost_usd_max']:.4f}); "
        f"actual: {run['llm_calls']} calls, {run['input_tokens']} + {run['output_tokens']} tokens, "
        f"${run['cost_usd']:.4f}"
    )


def bench_shares(base: str) -> None:
    print("== 2. two workspaces at once, 300 documents each, one limit ==")
    clients = [httpx.Client(base_url=base, timeout=120) for _ in range(2)]
    try:
        projects = []
        for i, client in enumerate(clients):
            login(client)
            projects.append(project_with_documents(client, f"share{i}", 300))
        before = stats()
        runs = [start(client, project) for client, project in zip(clients, projects, strict=True)]
        samples: list[tuple[float, list[int], list[str]]] = []
        while True:
            seen = [check(c.get(f"/runs/{r}")) for c, r in zip(clients, runs, strict=True)]
            samples.append((time.monotonic(), [s["llm_calls"] for s in seen], [s["status"] for s in seen]))
            if all(s["status"] in ("succeeded", "failed", "canceled") for s in seen):
                break
            time.sleep(1)
        # While both ran: from the first sample where both had calls to the last where both were running.
        both = [s for s in samples if all(c > 0 for c in s[1]) and all(st == "running" for st in s[2])]
        if len(both) < 2:
            print("the two runs never ran at the same time")
            return
        first, last = both[0], both[-1]
        got = [b - a for a, b in zip(first[1], last[1], strict=True)]
        # The provider's view: the most calls both answered within any 60 s (its limit is a sliding minute).
        totals = [(t, sum(calls)) for t, calls, _ in samples]
        busiest = max(max(c for t2, c in totals if t2 - t <= 60) - c0 for t, c0 in totals)
        print(
            f"while both ran ({last[0] - first[0]:.0f} s): {got[0]} and {got[1]} calls "
            f"({got[0] / max(1, sum(got)):.0%} and {got[1] / max(1, sum(got)):.0%}); the busiest 60 s of both "
            f"together: {busiest} calls against {RPM}; 429s {stats()['rate_limited'] - before['rate_limited']}; "
            f"runs {samples[-1][2]}"
        )
    finally:
        for client in clients:
            client.close()


def bench_errors(client: httpx.Client) -> None:
    print("== 3. 20% injected 500s, 200 documents ==")
    project = project_with_documents(client, "errors", 200)
    before = stats()
    configure(error_rate=0.2)
    try:
        (run,) = wait_runs(client, [start(client, project)], timeout=1800)
    finally:
        configure(error_rate=0.0)
    after = stats()
    print(f"{summary(run)}; retries (500s answered) {after['errors'] - before['errors']}")


def bench_outage(client: httpx.Client) -> None:
    print("== 4. a 60 s outage 10 s into a run of 300 documents ==")
    project = project_with_documents(client, "outage", 300)
    run_id = start(client, project)
    wait_for_calls(client, run_id, 50)
    before = stats()
    configure(outage_seconds=60)
    outage_end = time.monotonic() + 60
    time.sleep(60)
    during = stats()
    (run,) = wait_runs(client, [run_id], timeout=1800)
    print(
        f"{summary(run)}; calls that reached the simulator during the outage: "
        f"{during['requests'] - before['requests']} (503s {during['errors'] - before['errors']}); run finished "
        f"{time.monotonic() - outage_end:.0f} s after the outage ended"
    )


def bench_kill(client: httpx.Client, platform) -> None:
    print("== 5. kill -9 of the run workers 60 calls into a run of 300 documents ==")
    project = project_with_documents(client, "killed", 300)
    before = stats()
    run_id = start(client, project)
    wait_for_calls(client, run_id, 60)
    workers = run_workers(platform)
    for worker in workers:
        worker.kill()
    killed_at = time.monotonic()
    (run,) = wait_runs(client, [run_id], timeout=1800)
    after = stats()
    answered = after["ok"] - before["ok"]
    print(
        f"killed {len(workers)} run workers; {summary(run)}; finished {time.monotonic() - killed_at:.0f} s after; "
        f"Dagster runs {len(run['dagster_run_ids'])}; calls answered by the simulator {answered} for 300 documents "
        f"(paid twice: {answered - 300})"
    )


def bench_cap(client: httpx.Client) -> None:
    print("== 6. a cap of half the estimate, 300 documents ==")
    project = project_with_documents(client, "capped", 300)
    guess = estimate(client, project)
    cap = guess["cost_usd"] / 2
    (run,) = wait_runs(client, [start(client, project, max_cost_usd=cap)], timeout=1800)
    per_call = run["spent_usd"] / max(1, run["llm_calls"])
    print(
        f"estimate ${guess['cost_usd']:.4f}, cap ${cap:.4f}; {summary(run)}, {run['error_code']}; spent "
        f"${run['spent_usd']:.4f} ({run['spent_usd'] / cap:.0%} of the cap; over it by "
        f"{max(0.0, run['spent_usd'] - cap) / per_call:.1f} calls' worth)"
    )


def bench_context() -> None:
    """7. What a user with an OpenAI key and nothing else gets: the context follows the model (bench/run.py)."""
    from bench.run import bench_calls
    from coderai_assets.settings import get_settings

    print("== 7. an OpenAI provider with no context setting: 20 fields on 50 CUAD contracts ==")
    os.environ.pop("CODERAI_LLM_CONTEXT_TOKENS", None)
    get_settings.cache_clear()
    bench_calls(counts=(20,), n_contracts=50)


def main() -> None:
    simulator = ["--port", str(SIMULATOR_PORT), "--latency-ms", "1000", "--rpm", str(RPM)]
    with running_platform(SCRATCH, simulator) as (platform, base), httpx.Client(base_url=base, timeout=120) as client:
        login(client)
        bench_limit(client)
        bench_shares(base)
        bench_errors(client)
        bench_outage(client)
        bench_kill(client, platform)
        bench_cap(client)
        print(f"simulator: {stats()}")
    bench_context()


if __name__ == "__main__":
    main()
