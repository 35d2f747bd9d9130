"""The API against its floor: `bench/floor_app.py` (verify the token, one transaction with the tenant set, one
row under row-level security, JSON) and the real `GET /projects/{id}`, each with the platform's API worker count,
loaded by wrk with the same settings in the same run, at 1, 10 and 100 connections. Prints requests/s,
p50/p95/p99 and errors for each, and the ratio real/floor. Needs wrk (apt install wrk).

`python bench/api_floor.py` (about 2 minutes)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import bench_environment, login, running_platform  # noqa: E402
from bench.harness import check as _check  # noqa: E402

SIMULATOR_PORT = 18950
FLOOR_PORT = 18960
SECONDS = int(os.environ.get("CODERAI_BENCH_SECONDS", "10"))
CONNECTIONS = (1, 10, 100)
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


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt install wrk)")
    from coderai_assets.settings import get_settings

    workers = get_settings().api_workers
    with running_platform(_TMP, ["--port", str(SIMULATOR_PORT)]) as (_, base), httpx.Client(base_url=base) as client:
        token = login(client)["access_token"]
        project = _check(client.post("/projects", json={"name": "Floor", "domain_description": "Protest reports."}))
        floor = start_floor(workers)
        try:
            real_url = f"{base}/projects/{project['id']}"
            floor_url = f"http://127.0.0.1:{FLOOR_PORT}/projects/{project['id']}"
            assert httpx.get(floor_url, headers={"Authorization": f"Bearer {token}"}).json()["id"] == project["id"]
            print(f"== GET /projects/{{id}}: the real API and its floor, {workers} workers each, wrk {SECONDS} s ==")
            print(f"{'connections':>11}  {'':5}  {'req/s':>7}  {'p50 ms':>7}  {'p95 ms':>7}  {'p99 ms':>7}  errors")
            for connections in CONNECTIONS:
                results = {"floor": wrk(floor_url, token, connections), "real": wrk(real_url, token, connections)}
                for name, r in results.items():
                    print(
                        f"{connections:>11}  {name:5}  {r['rps']:>7.0f}  {r['p50']:>7.1f}  {r['p95']:>7.1f}  "
                        f"{r['p99']:>7.1f}  {r['errors']:.0f}"
                    )
                ratio = results["floor"]["rps"] / max(results["real"]["rps"], 1e-9)
                print(f"{'':>11}  floor/real requests/s: {ratio:.2f}")
        finally:
            floor.terminate()
            floor.wait(10)


if __name__ == "__main__":
    main()
