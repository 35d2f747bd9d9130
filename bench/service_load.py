"""The platform as a service (`make bench-service`): the real API, Dagster code server, webserver and daemon on
databases of their own, the model an OpenAI-compatible simulator (bench/llm_simulator.py) at 0 ms latency.

Prints, in one run (figures, never asserted; the machine is noisy, read medians and ratios):
1. 200 projects created, each with variables and a document, a full run launched in every tenth: p50/p95 of
   `POST /projects` and `POST /runs`, and seconds from `POST /runs` to the Dagster run starting its work;
2. code location load time with 10 and with 200 projects;
3. 100 concurrent API clients over read and write routes: requests/s, p50/p95/p99, errors;
4. 1,000 documents uploaded and coded in one full run: documents/s.
The export of 10,000 rows x 50 variables is in bench/run.py (no platform needed).

Environment: CODERAI_BENCH_PROJECTS (200), CODERAI_BENCH_CLIENTS (100), CODERAI_BENCH_DOCUMENTS (1000),
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import bench_environment, login, running_platform, wait_runs  # noqa: E402
from bench.harness import check as _check  # noqa: E402

N_PROJECTS = int(os.environ.get("CODERAI_BENCH_PROJECTS", "200"))
N_CLIENTS = int(os.environ.get("CODERAI_BENCH_CLIENTS", "100"))
N_DOCUMENTS = int(os.environ.get("CODERAI_BENCH_DOCUMENTS", "1000"))
SIMULATOR_PORT = 18900
_TMP = bench_environment(18500, SIMULATOR_PORT)

REPORT = "Some 450 dock workers marched through Porto on 3 June 2023 demanding better pay. Police reported no injuries."
VARIABLES = [
    {"name": "city", "type": "text", "description": "Where the event took place"},
    {"name": "participants", "type": "integer", "description": "How many took part"},
    {"name": "violence", "type": "boolean", "description": "Was anyone hurt"},
]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def line(name: str, values_ms: list[float]) -> str:
    return (
        f"{name:<28} n={len(values_ms):<5} p50 {pct(values_ms, 50):7.1f} ms  p95 {pct(values_ms, 95):7.1f} ms  "
        f"p99 {pct(values_ms, 99):7.1f} ms"
    )


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def location_load_seconds() -> float:
    """A fresh process loading the code location, as the code server does at start."""
    code = (
        "import time; t = time.perf_counter(); from coderai_assets.definitions import defs; "
        "defs.get_repository_def().get_all_jobs(); print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(out.stdout.strip().splitlines()[-1])


def bench_idle_run(client: httpx.Client) -> dict[str, float]:
    """Seconds from POST /runs to the Dagster run created (sensor), to its first document, to the dataset."""
    from dagster import DagsterInstance, RunsFilter

    project = _check(client.post("/projects", json={"name": "Idle", "domain_description": "Protests."}))
    for variable in VARIABLES:
        _check(client.post(f"/projects/{project['id']}/variables", json=variable))
    _check(client.post(f"/projects/{project['id']}/documents", files=[("files", ("idle.txt", REPORT.encode()))]))
    time.sleep(6)  # the upload registered by the intake sensor first, as it would be by the time a user runs
    run = _check(client.post(f"/projects/{project['id']}/runs", json={"kind": "full"}))
    (run,) = wait_runs(client, [run["id"]], timeout=300)
    created = parse_time(run["created_at"])
    os.environ["DAGSTER_HOME"] = str(_TMP / "dagster_home")
    with DagsterInstance.get() as instance:
        (record,) = instance.get_run_records(RunsFilter(tags={"coderai/run_id": run["id"]}))
    return {
        "created": record.create_timestamp.timestamp() - created.timestamp(),
        "start": (parse_time(run["started_at"]) - created).total_seconds(),
        "end": (parse_time(run["finished_at"]) - created).total_seconds(),
    }


def bench_projects(client: httpx.Client) -> tuple[list[str], dict[int, float]]:
    create_ms, run_ms, run_ids, loads = [], [], [], {}
    for i in range(N_PROJECTS):
        start = time.perf_counter()
        project = _check(client.post("/projects", json={"name": f"Project {i}", "domain_description": "Protests."}))
        create_ms.append((time.perf_counter() - start) * 1000)
        for variable in VARIABLES:
            _check(client.post(f"/projects/{project['id']}/variables", json=variable))
        files = [("files", (f"report-{i}.txt", f"{REPORT} (report {i})".encode()))]
        _check(client.post(f"/projects/{project['id']}/documents", files=files))
        if i % 10 == 9:
            start = time.perf_counter()
            run = _check(client.post(f"/projects/{project['id']}/runs", json={"kind": "full"}))
            run_ms.append((time.perf_counter() - start) * 1000)
            run_ids.append(run["id"])
        if i + 1 in (10, N_PROJECTS):
            loads[i + 1] = location_load_seconds()
    print(line("POST /projects", create_ms))
    print(line("POST /projects/{id}/runs", run_ms))
    return run_ids, loads


async def bench_clients(base: str, token: str, project_ids: list[str], run_ids: list[str], seconds: float = 20):
    """N_CLIENTS clients, each in a loop over a mix of reads and writes, for `seconds`."""
    headers = {"Authorization": f"Bearer {token}"}
    latencies: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    limits = httpx.Limits(max_connections=N_CLIENTS, max_keepalive_connections=N_CLIENTS)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as client:

        async def one_client(n: int) -> None:
            pid, rid = project_ids[n % len(project_ids)], run_ids[n % len(run_ids)]
            routes = [
                ("GET /projects", "GET", "/projects", None),
                ("GET /projects/{id}", "GET", f"/projects/{pid}", None),
                ("GET /projects/{id}/variables", "GET", f"/projects/{pid}/variables", None),
                ("GET /projects/{id}/documents", "GET", f"/projects/{pid}/documents", None),
                ("GET /runs/{id}", "GET", f"/runs/{rid}", None),
                ("PATCH /projects/{id}", "PATCH", f"/projects/{pid}", {"domain_description": f"edit {n}"}),
                ("POST /projects/{id}/variables", "POST", f"/projects/{pid}/variables", None),
            ]
            deadline = time.monotonic() + seconds
            i = 0
            while time.monotonic() < deadline:
                name, method, path, body = routes[i % len(routes)]
                if name.startswith("POST /projects/{id}/variables"):
                    body = {"name": f"v_{n}_{i}", "type": "text"}
                i += 1
                start = time.perf_counter()
                try:
                    response = await client.request(method, path, json=body)
                    ok = response.status_code < 400
                except httpx.HTTPError:
                    ok = False
                latencies.setdefault(name, []).append((time.perf_counter() - start) * 1000)
                if not ok:
                    errors[name] = errors.get(name, 0) + 1

        start = time.perf_counter()
        await asyncio.gather(*(one_client(n) for n in range(N_CLIENTS)))
        elapsed = time.perf_counter() - start
    every = [v for values in latencies.values() for v in values]
    print(
        f"{N_CLIENTS} concurrent clients for {elapsed:.0f} s: {len(every) / elapsed:.0f} requests/s, "
        f"errors {sum(errors.values())} {errors or ''}"
    )
    print(line("all routes", every))
    for name, values in sorted(latencies.items()):
        print(line(name, values))


WRK_SCRIPT = """
-- The same mix as the Python clients: five reads, a PATCH and a POST of a new variable, per connection in turn.
local token, projects, runs, tag = "%(token)s", {%(projects)s}, {%(runs)s}, "%(tag)s"
local counter = 0
function setup(thread) thread:set("id", counter); counter = counter + 1 end
function init(args) n = 0 end
function request()
  n = n + 1
  local p, r = projects[(n %% #projects) + 1], runs[(n %% #runs) + 1]
  local h = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
  local step = n %% 7
  if step == 0 then return wrk.format("GET", "%(prefix)s/projects", h) end
  if step == 1 then return wrk.format("GET", "%(prefix)s/projects/" .. p, h) end
  if step == 2 then return wrk.format("GET", "%(prefix)s/projects/" .. p .. "/variables", h) end
  if step == 3 then return wrk.format("GET", "%(prefix)s/projects/" .. p .. "/documents", h) end
  if step == 4 then return wrk.format("GET", "%(prefix)s/runs/" .. r, h) end
  if step == 5 then return wrk.format("PATCH", "%(prefix)s/projects/" .. p, h, '{"domain_description": "edit"}') end
  return wrk.format("POST", "%(prefix)s/projects/" .. p .. "/variables", h,
    '{"name": "w_' .. tag .. '_' .. id .. '_' .. n .. '", "type": "text"}')
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %%d %%d %%d %%.1f %%.1f %%.1f\\n", summary.requests, e.connect + e.read + e.write +
    e.timeout, e.status, latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


def bench_clients_wrk(base: str, token: str, project_ids: list[str], run_ids: list[str], seconds: int = 20) -> bool:
    """The same clients from wrk (C, two threads), if it is installed: the Python clients cost more CPU than the
    server they measure, on the same two cores. False if wrk is not there."""
    if shutil.which("wrk") is None:
        return False
    origin, prefix = base.split("/api/")[0], "/api/" + base.split("/api/")[1]
    script = _TMP / "clients.lua"
    script.write_text(
        WRK_SCRIPT
        % {
            "token": token,
            "projects": ", ".join(f'"{p}"' for p in project_ids),
            "runs": ", ".join(f'"{r}"' for r in run_ids),
            "prefix": prefix,
            "tag": uuid.uuid4().hex[:6],  # new variable names on every invocation
        }
    )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{N_CLIENTS}", f"-d{seconds}s", "--timeout", "60s", "-s", str(script), origin],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    requests, socket_errors, http_errors, p50, p95, p99 = next(
        line.split()[1:] for line in out.splitlines() if line.startswith("WRK ")
    )
    print(
        f"{N_CLIENTS} concurrent clients (wrk) for {seconds} s: {int(requests) / seconds:.0f} requests/s, "
        f"errors {int(socket_errors) + int(http_errors)}; p50 {p50} ms  p95 {p95} ms  p99 {p99} ms"
    )
    return True


def bench_documents(client: httpx.Client) -> None:
    project = _check(client.post("/projects", json={"name": "Thousand", "domain_description": "Protests."}))
    for variable in VARIABLES:
        _check(client.post(f"/projects/{project['id']}/variables", json=variable))
    start = time.perf_counter()
    for batch in range(0, N_DOCUMENTS, 100):
        files = [
            ("files", (f"r{i}.txt", f"{REPORT} Report number {i}.".encode()))
            for i in range(batch, min(N_DOCUMENTS, batch + 100))
        ]
        _check(client.post(f"/projects/{project['id']}/documents", files=files))
    uploaded = time.perf_counter() - start
    run = _check(client.post(f"/projects/{project['id']}/runs", json={"kind": "full"}))
    (run,) = wait_runs(client, [run["id"]], timeout=1800)
    total = time.perf_counter() - start
    coding = (parse_time(run["finished_at"]) - parse_time(run["started_at"])).total_seconds()
    print(
        f"{N_DOCUMENTS} documents: uploaded in {uploaded:.1f} s; run {run['status']}, done {run['documents_done']}, "
        f"failed {run['documents_failed']}, {run['llm_calls']} LLM calls; coded and exported in {coding:.1f} s "
        f"= {run['documents_done'] / coding:.1f} documents/s; upload to dataset {total:.1f} s"
    )


def main() -> None:
    with (
        running_platform(_TMP, ["--port", str(SIMULATOR_PORT)]) as (_, base),
        httpx.Client(base_url=base, timeout=120) as client,
    ):
        tokens = login(client)
        print("== one run on an idle platform ==")
        idle = bench_idle_run(client)
        print(
            f"POST /runs to Dagster run working {idle['start']:.1f} s; to the dataset {idle['end']:.1f} s "
            f"(Dagster run created {idle['created']:.1f} s after the request: the intake sensor's tick)"
        )
        print(f"== {N_PROJECTS} projects, a full run in every tenth ==")
        run_ids, loads = bench_projects(client)
        runs = wait_runs(client, run_ids, timeout=600)
        starts = [
            (parse_time(r["started_at"]) - parse_time(r["created_at"])).total_seconds() for r in runs if r["started_at"]
        ]
        print(
            f"POST /runs to Dagster run working: median {statistics.median(starts):.1f} s, "
            f"max {max(starts):.1f} s; runs {[r['status'] for r in runs].count('succeeded')}/{len(runs)} "
            "succeeded"
        )
        print("== code location load time ==")
        print("  ".join(f"{n} projects: {s:.2f} s" for n, s in loads.items()))
        print(f"== {N_CLIENTS} concurrent API clients ==")
        project_ids = [p["id"] for p in _check(client.get("/projects", params={"limit": 20}))["items"]]
        if not bench_clients_wrk(base, tokens["access_token"], project_ids, run_ids):
            asyncio.run(bench_clients(base, tokens["access_token"], project_ids, run_ids))
        print(f"== {N_DOCUMENTS} documents, one full run, 0 ms model ==")
        bench_documents(client)
        stats = httpx.get(f"http://127.0.0.1:{SIMULATOR_PORT}/stats").json()
        print(f"simulator: {stats}")


if __name__ == "__main__":
    main()
