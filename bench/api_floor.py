"""The API against its floor, and its lists at 10,000 documents.

1. `bench/floor_app.py` (verify the token, one transaction with the tenant set, the rows under row-level security,
   JSON) and the real API, each with the platform's API worker count, loaded by wrk with the same settings in the
   same run, at 1, 10 and 100 connections, for `GET /projects/{id}`, `GET /runs/{id}` and the first page of
   `GET /projects/{id}/documents`. Prints requests/s, p50/p95/p99 and errors for each, and the ratio floor/real.
2. A project of 10,000 documents (uploaded through the API): one client reading pages of its documents, the first,
   every page to the last (cursor after cursor), filtered ones and pages of 500: p50/p95 per kind.
Needs wrk (apt install wrk). `python bench/api_floor.py` (about 5 minutes); `make bench-service` runs it too."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import bench_environment, login, running_platform, wait_runs  # noqa: E402
from bench.harness import check as _check  # noqa: E402

SIMULATOR_PORT = 18950
FLOOR_PORT = 18960
SECONDS = int(os.environ.get("CODERAI_BENCH_SECONDS", "10"))
CONNECTIONS = (1, 10, 100)
PAGE_DOCUMENTS = int(os.environ.get("CODERAI_BENCH_PAGE_DOCUMENTS", "10000"))
SETTLE_SECONDS = float(os.environ.get("CODERAI_BENCH_SETTLE_SECONDS", "30"))
_TMP = bench_environment(18600, SIMULATOR_PORT)

# One line per run: requests, errors, p50, p95, p99 (ms), duration (s); read back below.
SCRIPT = """
wrk.headers["Authorization"] = "Bearer %(token)s"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%.2f %%.2f %%.2f %%.2f\\n", summary.requests,
    e.connect + e.read + e.write + e.timeout + e.status, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000, summary.duration / 1e6))
end
"""


def wrk(url: str, token: str, connections: int) -> dict[str, float]:
    script = _TMP / "floor.lua"
    script.write_text(SCRIPT % {"token": token})
    threads = min(2, connections)
    done = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{SECONDS}s", "--timeout", "30s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    requests, errors, p50, p95, p99, duration = (float(x) for x in line.split()[1:])
    return {"rps": requests / duration, "errors": errors, "p50": p50, "p95": p95, "p99": p99}


def start_floor(workers: int) -> subprocess.Popen:
    floor = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.floor_app:app",
            "--port",
            str(FLOOR_PORT),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{FLOOR_PORT}/docs", timeout=1)
            return floor
        except httpx.HTTPError:
            time.sleep(0.3)
    floor.kill()
    raise RuntimeError("the floor app did not start")


def _cpu(processes: list[psutil.Process]) -> dict[int, float]:
    seconds = {}
    for process in processes:
        try:
            times = process.cpu_times()
            seconds[process.pid] = times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return seconds


def _family(pid: int) -> list[psutil.Process]:
    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


def _postgres() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["name"]) if p.info["name"] in ("postgres", "postmaster")]


def measured(url: str, token: str, connections: int, server_pid: int) -> dict[str, float]:
    """wrk's figures, and the CPU the server's processes and PostgreSQL's spent per request meanwhile."""
    server, database = _family(server_pid), _postgres()
    before = {"server": _cpu(server), "db": _cpu(database)}
    result = wrk(url, token, connections)
    after = {"server": _cpu(server), "db": _cpu(_postgres())}
    requests = max(result["rps"] * SECONDS, 1)
    for side in ("server", "db"):
        spent = sum(t - before[side].get(pid, 0.0) for pid, t in after[side].items())
        result[f"{side}_ms"] = spent * 1000 / requests
    return result


def compare(base: str, token: str, routes: dict[str, str], pids: dict[str, int]) -> None:
    print(f"== the real API and its floor, the same workers each, wrk {SECONDS} s; CPU ms a request ==")
    print(
        f"{'route':<28} {'conns':>5}  {'':5}  {'req/s':>6}  {'p50 ms':>7}  {'p95 ms':>7}  {'p99 ms':>7}  errors"
        "  CPU API  CPU PostgreSQL"
    )
    for route, path in routes.items():
        for connections in CONNECTIONS:
            urls = {"floor": f"http://127.0.0.1:{FLOOR_PORT}{path}", "real": f"{base}{path}"}
            results = {name: measured(url, token, connections, pids[name]) for name, url in urls.items()}
            for name, r in results.items():
                print(
                    f"{route:<28} {connections:>5}  {name:5}  {r['rps']:>6.0f}  {r['p50']:>7.1f}  {r['p95']:>7.1f}  "
                    f"{r['p99']:>7.1f}  {r['errors']:>6.0f}  {r['server_ms']:>7.2f}  {r['db_ms']:>14.2f}"
                )
            ratio = results["floor"]["rps"] / max(results["real"]["rps"], 1e-9)
            print(f"{route:<28} {connections:>5}  floor/real requests/s: {ratio:.2f}")


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"n={len(values):<4} p50 {statistics.median(values):6.1f} ms  p95 {p95:6.1f} ms  max {ordered[-1]:6.1f} ms"


def pages(client: httpx.Client, documents: int = PAGE_DOCUMENTS) -> None:
    """One client reading a 10,000-document project's list: nothing else loads the API meanwhile."""
    project = _check(client.post("/projects", json={"name": "Pages", "domain_description": "Protest reports."}))
    path = f"/projects/{project['id']}/documents"
    start = time.perf_counter()
    for batch in range(0, documents, 100):
        files = [
            ("files", (f"report-{i}.txt", f"Report {i}: 40 people marched.".encode()))
            for i in range(batch, min(documents, batch + 100))
        ]
        _check(client.post(path, files=files))
    print(f"== a project of {documents} documents (uploaded in {time.perf_counter() - start:.0f} s) ==")
    time.sleep(SETTLE_SECONDS)  # the intake sensor registers the uploads as partitions meanwhile

    def timed(params: dict) -> tuple[float, dict]:
        began = time.perf_counter()
        answer = _check(client.get(path, params=params))
        return (time.perf_counter() - began) * 1000, answer

    first = [timed({"limit": 50})[0] for _ in range(100)]
    walk, cursor, seen, total = [], None, 0, None
    while True:
        ms, answer = timed({"limit": 50, **({"cursor": cursor} if cursor else {})})
        walk.append(ms)
        seen += len(answer["items"])
        total = answer["total"] if total is None else total
        cursor = answer["next_cursor"]
        if not cursor:
            break
    assert seen == total == documents, (seen, total)
    by_name = [timed({"limit": 50, "name": "report-99"})[0] for _ in range(100)]
    by_status = [timed({"limit": 50, "status": "uploaded"})[0] for _ in range(100)]
    big, cursor = [], None
    while True:
        ms, answer = timed({"limit": 500, **({"cursor": cursor} if cursor else {})})
        big.append(ms)
        cursor = answer["next_cursor"]
        if not cursor:
            break
    print(f"{'first page, 50 rows':<36} {_ms(first)}")
    print(f"{'every page to the last, 50 rows':<36} {_ms(walk)}  (last page: {walk[-1]:.1f} ms)")
    print(f"{'file name search, 50 rows':<36} {_ms(by_name)}")
    print(f"{'status filter, 50 rows':<36} {_ms(by_status)}")
    print(f"{'every page, 500 rows':<36} {_ms(big)}")


class _Skip(Exception):
    """CODERAI_BENCH_ONLY=pages: the pages alone."""


def coded_run(client: httpx.Client, project_id: str) -> str:
    files = [("files", ("one.txt", b"Some 40 people marched in Lyon on 2 May 2024."))]
    _check(client.post(f"/projects/{project_id}/variables", json={"name": "city", "type": "text"}))
    _check(client.post(f"/projects/{project_id}/documents", files=files))
    time.sleep(6)  # registered by the intake sensor
    run = _check(client.post(f"/projects/{project_id}/runs", json={"kind": "full"}))
    (done,) = wait_runs(client, [run["id"]], timeout=300)
    return done["id"]


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt install wrk)")
    from coderai_assets.settings import get_settings

    workers = get_settings().api_workers
    with (
        running_platform(_TMP, ["--port", str(SIMULATOR_PORT)]) as (platform, base),
        httpx.Client(base_url=base) as client,
    ):
        token = login(client)["access_token"]
        project = _check(client.post("/projects", json={"name": "Floor", "domain_description": "Protest reports."}))
        run_id = coded_run(client, project["id"])
        floor = start_floor(workers)
        try:
            if os.environ.get("CODERAI_BENCH_ONLY") == "pages":
                raise _Skip
            routes = {
                "GET /projects/{id}": f"/projects/{project['id']}",
                "GET /runs/{id}": f"/runs/{run_id}",
                "GET /projects/{id}/documents": f"/projects/{project['id']}/documents",
            }
            for path in routes.values():  # the floor answers what the API does
                floor_answer = httpx.get(
                    f"http://127.0.0.1:{FLOOR_PORT}{path}", headers={"Authorization": f"Bearer {token}"}
                )
                assert floor_answer.status_code == 200, (path, floor_answer.text)
            (api,) = [s.process for s in platform.services if s.name == "api"]
            compare(base, token, routes, {"floor": floor.pid, "real": api.pid})
        except _Skip:
            pass
        finally:
            floor.terminate()
            floor.wait(10)
        pages(client)


if __name__ == "__main__":
    main()
