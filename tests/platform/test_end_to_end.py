"""End to end as a user: the API on a real Dagster (code server, webserver, daemon) and PostgreSQL; the model is
the tests' fake, loaded by the run workers through CODERAI_LLM_FACTORY."""

from __future__ import annotations

import io
import os
import signal
import time
import uuid
from contextlib import closing
from pathlib import Path

import httpx
import pandas as pd
import psutil
import pytest

from coderai_assets.demo import drive
from coderai_assets.platform import Platform
from tests.fakes import PROTEST_ANSWERS
from tests.support.redis import redis_or_skip


@pytest.fixture
def platform(database, settings, tmp_path):
    platform = Platform(settings, tmp_path / "logs")
    try:
        platform.start(with_api=True, timeout=240)
        yield platform
    finally:
        platform.stop()


def test_sample_then_full_run_through_api_and_dagster(platform, settings, tmp_path):
    dataset = drive(f"http://{settings.api_host}:{settings.api_port}/api/v1", tmp_path / "out")
    frame = pd.read_csv(dataset / "dataset.csv").set_index("file_name")
    assert sorted(frame.index) == [
        "gdansk_students.pdf",
        "lyon_nurses.txt",
        "porto_dockers.html",
        "tampere_farmers.docx",
    ]
    assert set(frame["document_status"]) == {"done"}
    assert frame.loc["porto_dockers.html", "participants"] == 450
    assert frame.loc["porto_dockers.html", "protest_type"] == "strike"
    assert frame.loc["lyon_nurses.txt", "event_date"] == "2024-03-12"
    assert frame.loc["tampere_farmers.docx", "violence"] == False  # noqa: E712 - "no" coerced to a boolean
    assert frame.loc["lyon_nurses.txt", "participants__quote"] == "About 3,000 nurses"
    assert frame["prompt_version"].nunique() == 1 and frame["model"].iloc[0] == "factory/protest_model"
    assert len(PROTEST_ANSWERS) == len(frame)
    sheets = pd.read_excel(dataset / "dataset.xlsx", sheet_name=None)
    assert list(sheets) == ["data", "codebook", "about", "agreement", "feedback"]
    # The demo's account can be used afterwards: its password is kept beside the dataset.
    credentials = dict(line.split(": ", 1) for line in (tmp_path / "out" / "credentials.txt").read_text().splitlines())
    login = httpx.post(
        f"{credentials['api']}/auth/login", json={"email": credentials["email"], "password": credentials["password"]}
    )
    assert login.status_code == 200
    assert list(sheets["codebook"]["variable"]) == [
        "city",
        "event_date",
        "participants",
        "protest_type",
        "violence",
    ]


def test_run_workers_fork_from_a_warm_process(platform):
    """The code server starts run workers from a forkserver that imported Dagster and the definitions once
    (coderai_assets/defs/code_server.py), not with a fresh interpreter each (about 3 s of CPU a run)."""
    (server,) = [s for s in platform.services if s.name == "dagster-code-server"]
    assert server.process is not None
    # Its own children: a run worker forked from the forkserver (a run another test left queued, launched by this
    # platform's sensor) is the forkserver's child, and carries the forkserver's command line.
    children = [" ".join(c.cmdline()) for c in psutil.Process(server.process.pid).children(recursive=False)]
    forkservers = [c for c in children if "multiprocessing.forkserver" in c]
    assert len(forkservers) == 1 and "coderai_assets.definitions" in forkservers[0]


@pytest.fixture
def slow_platform(database, settings, tmp_path, monkeypatch):
    """The platform with a model that takes 0.4 s a call, two calls at a time, logging its calls to a file."""
    monkeypatch.setenv("CODERAI_TEST_MODEL_DELAY", "0.4")
    monkeypatch.setenv("CODERAI_TEST_CALL_LOG", str(tmp_path / "calls.log"))
    monkeypatch.setenv("CODERAI_DOCUMENT_CONCURRENCY", "2")
    monkeypatch.setenv("CODERAI_LLM_CONCURRENCY", "2")
    # Should the code server miss a killed worker, its silence fails the run within 30 s instead of 120.
    monkeypatch.setenv("CODERAI_RUN_WORKER_TIMEOUT_SECONDS", "30")
    platform = Platform(settings, tmp_path / "logs")
    try:
        platform.start(with_api=True, timeout=240)
        yield platform
    finally:
        platform.stop()


def _metrics(client) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    response = client.get(client.base_url.copy_with(path="/metrics"))
    totals: dict[tuple[str, tuple], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            # An empty label is an absent one (Prometheus's rule); the provider is summed over.
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "provider" and v))
            key = (sample.name, labels)
            totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def _run_workers(platform: Platform) -> list[psutil.Process]:
    (server,) = [s for s in platform.services if s.name == "dagster-code-server"]
    assert server.process is not None
    children = psutil.Process(server.process.pid).children(recursive=True)
    forkservers = [c for c in children if "multiprocessing.forkserver" in " ".join(c.cmdline())]
    return [w for f in forkservers for w in f.children()]


def test_a_killed_run_worker_is_re_executed_and_every_document_is_coded_once(slow_platform, settings, tmp_path):
    """kill -9 of the run worker mid-run: its code server fails the Dagster run, the daemon re-executes it
    (dagster.yaml run_retries), and the re-execution skips the done documents and the answered chunks: the run
    succeeds by itself, every document once, and no answered call is paid twice."""
    import httpx

    from coderai_assets.demo import VARIABLES, _check, wait_for_run

    n = 30
    with httpx.Client(base_url=f"http://{settings.api_host}:{settings.api_port}/api/v1", timeout=60) as client:
        email = f"kill-{uuid.uuid4().hex[:8]}@example.org"
        _check(client.post("/auth/register", json={"email": email, "password": "correct horse battery"}))
        tokens = _check(client.post("/auth/login", json={"email": email, "password": "correct horse battery"}))
        client.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        project = _check(client.post("/projects", json={"name": "Killed", "domain_description": "Protests."}))
        for variable in VARIABLES:
            _check(client.post(f"/projects/{project['id']}/variables", json=variable))
        uploads = [
            ("files", (f"report_{i:02}.txt", f"LYON, 12 March 2024 - Report {i}: about 3,000 nurses marched.".encode()))
            for i in range(n)
        ]
        _check(client.post(f"/projects/{project['id']}/documents", files=uploads))
        before = _metrics(client)
        run = _check(client.post(f"/projects/{project['id']}/runs", json={"kind": "full"}))
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            seen = _check(client.get(f"/runs/{run['id']}"))
            if seen["progress"] and seen["progress"]["llm_calls"] >= 6:
                break
            time.sleep(0.3)
        # Progress moves while the run works: calls and documents are counted as each is committed.
        assert seen["status"] == "running" and 0 < seen["documents_done"] < n
        workers = _run_workers(slow_platform)
        assert workers
        for worker in workers:
            worker.kill()
        final = wait_for_run(client, run["id"], timeout=300)
        assert final["status"] == "succeeded", final
        assert (final["documents_done"], final["documents_failed"], final["llm_calls"]) == (n, 0, n)
        assert len(final["dagster_run_ids"]) >= 2  # the killed Dagster run and its re-execution
        calls = (tmp_path / "calls.log").read_text().splitlines()
        # Each document answered once; at most the two calls in flight when the worker died were paid twice.
        assert n <= len(calls) <= n + 2
        export = client.get(f"/projects/{project['id']}/export", params={"format": "csv", "run_id": run["id"]})
        frame = pd.read_csv(io.BytesIO(export.content))
        assert sorted(frame["file_name"]) == [f"report_{i:02}.txt" for i in range(n)]
        # The run workers' counters reach the API's /metrics through Redis; a killed worker loses what it had not
        # sent yet (at most its last second).
        redis_or_skip("the run workers' counters in /metrics", settings.redis_url)
        after = _metrics(client)
        done = ("coderai_documents_total", (("outcome", "done"),))
        assert after[done] > before.get(done, 0.0)


def _restart(platform: Platform, name: str) -> None:
    """Kill a service with SIGKILL and start it again, as a supervisor (docker-compose's restart policy) would."""
    import subprocess

    from coderai_assets.platform import ROOT, child_env

    (service,) = [s for s in platform.services if s.name == name]
    assert service.process is not None
    os.killpg(service.process.pid, signal.SIGKILL)  # the service and its children (uvicorn's workers)
    service.process.wait(10)
    service.process = subprocess.Popen(
        service.argv,
        env={**child_env(platform.settings), **service.env},
        cwd=ROOT,
        stdout=service.log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_a_killed_daemon_and_api_leave_the_run_to_finish_once(slow_platform, settings):
    """kill -9 of the Dagster daemon (sensors, run queue, retries) and of the API mid-run, both restarted by their
    supervisor: the run worker goes on, the run ends by itself, every document once, no call repeated."""
    import httpx

    from coderai_assets.demo import VARIABLES, _check, wait_for_run

    n = 20
    base = f"http://{settings.api_host}:{settings.api_port}/api/v1"
    with httpx.Client(base_url=base, timeout=60) as client:
        email = f"daemon-{uuid.uuid4().hex[:8]}@example.org"
        _check(client.post("/auth/register", json={"email": email, "password": "correct horse battery"}))
        tokens = _check(client.post("/auth/login", json={"email": email, "password": "correct horse battery"}))
        client.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        project = _check(client.post("/projects", json={"name": "Daemon", "domain_description": "Protests."}))
        for variable in VARIABLES:
            _check(client.post(f"/projects/{project['id']}/variables", json=variable))
        uploads = [
            ("files", (f"d_{i:02}.txt", f"LYON, 12 March 2024 - Item {i}: about 3,000 nurses marched.".encode()))
            for i in range(n)
        ]
        _check(client.post(f"/projects/{project['id']}/documents", files=uploads))
        before = _metrics(client)
        run = _check(client.post(f"/projects/{project['id']}/runs", json={"kind": "full"}))
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            seen = _check(client.get(f"/runs/{run['id']}"))
            if seen["progress"] and seen["progress"]["llm_calls"] >= 4:
                break
            time.sleep(0.3)
        _restart(slow_platform, "dagster-daemon")
        _restart(slow_platform, "api")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the restarted API answers again
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        final = wait_for_run(client, run["id"], timeout=300)
        assert final["status"] == "succeeded", final
        assert (final["documents_done"], final["documents_failed"], final["llm_calls"]) == (n, 0, n)
        calls = (slow_platform.log_dir.parent / "calls.log").read_text().splitlines()
        assert len(calls) == n  # nothing was coded twice
        # The run worker's counters, kept in Redis, are all there for the restarted API's /metrics.
        redis_or_skip("the run workers' counters in /metrics", settings.redis_url)
        after = _metrics(client)
        done = ("coderai_documents_total", (("outcome", "done"),))
        assert after[done] - before.get(done, 0.0) >= n


@pytest.fixture
def loop_platform(database, settings, tmp_path, monkeypatch):
    """The platform with the refiner's test model (tests/fakes.py DatelineModel), logging its calls to a file."""
    monkeypatch.setenv("CODERAI_LLM_FACTORY", "tests.fakes:dateline_model")
    monkeypatch.setenv("CODERAI_TEST_CALL_LOG", str(tmp_path / "calls.log"))
    platform = Platform(settings, tmp_path / "logs")
    try:
        platform.start(with_api=True, timeout=240)
        yield platform
    finally:
        platform.stop()


def _wait_for_task(client, task_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = client.get(f"/agent-tasks/{task_id}").json()
        if task["status"] in ("succeeded", "failed"):
            return task
        time.sleep(0.3)
    raise AssertionError(f"agent task {task_id} did not end: {task}")


def _review(client, run_id: str, truth: dict[str, str], *, only: str | None = None, fixes: dict | None = None) -> int:
    """Feedback on the run's values (of the variable `only`, if given): a city that is not the report's is
    corrected, `fixes` {(file, variable): value} are corrected, the rest is correct; then the review is done.
    Returns how many verdicts were given."""
    params = {"limit": 500, **({"variable": only} if only else {})}
    values = client.get(f"/runs/{run_id}/values", params=params).json()["items"]
    assert len(values) == 4 * (1 if only else 5)
    for value in values:
        right = truth.get(value["file_name"])
        fix = (fixes or {}).get((value["file_name"], value["variable"]))
        if value["variable"] == "city" and value["value"] != right:
            body = {"verdict": "wrong", "corrected_value": right, "note": "the city of the dateline"}
        elif fix is not None:
            body = {"verdict": "wrong", "corrected_value": fix}
        else:
            body = {"verdict": "correct"}
        assert client.put(f"/values/{value['id']}/feedback", json=body).status_code == 200
    assert client.post(f"/runs/{run_id}/review/done").status_code == 200
    return len(values)


def _client(base: str, email: str, workspace: str | None = None):
    import httpx

    client = httpx.Client(base_url=base, timeout=60)
    client.post("/auth/register", json={"email": email, "password": "correct horse battery"})
    token = client.post("/auth/login", json={"email": email, "password": "correct horse battery"}).json()
    client.headers["Authorization"] = f"Bearer {token['access_token']}"
    if workspace:
        client.headers["X-Workspace-Id"] = workspace
    return client


def _final(client, pid: str, run_id: str) -> dict[str, pd.DataFrame]:
    export = client.get(f"/projects/{pid}/export", params={"format": "xlsx", "run_id": run_id})
    assert export.status_code == 200, export.text
    return pd.read_excel(io.BytesIO(export.content), sheet_name=None)


def test_the_research_loop_through_the_api(loop_platform, settings, tmp_path):
    """Two reviewers double-code a sample, blind until both are done (to each other, the gate and the export)
    -> agreement -> refine -> held-out score -> accept -> sample again (only the refined variable asked; the
    unchanged values' verdicts carried, so only cities are judged) -> the gate passes -> full run (from the cache)
    -> a download whose final columns hold every correction and whose figures match an independent count."""
    from coderai_assets.demo import VARIABLES, wait_for_run, write_corpus
    from tests.fakes import COUNTRIES

    truth = {
        "lyon_nurses.txt": "Lyon",
        "porto_dockers.html": "Porto",
        "gdansk_students.pdf": "Gdansk",
        "tampere_farmers.docx": "Tampere",
    }
    porto_size = {("porto_dockers.html", "participants"): 500}  # both reviewers correct the model's 450
    calls_log = tmp_path / "calls.log"
    base = f"http://{settings.api_host}:{settings.api_port}/api/v1"
    bob_email = f"bob-{uuid.uuid4().hex[:8]}@example.org"
    alice_client, bob_client = _client(base, f"loop-{uuid.uuid4().hex[:8]}@example.org"), _client(base, bob_email)
    with closing(alice_client) as client, closing(bob_client) as bob:
        workspace = client.get("/auth/me").json()["workspaces"][0]["id"]
        invited = client.post(f"/workspaces/{workspace}/members", json={"email": bob_email, "role": "editor"})
        assert invited.status_code == 201
        bob.headers["X-Workspace-Id"] = workspace
        project = client.post("/projects", json={"name": "Protests", "domain_description": "Protest reports"}).json()
        pid = project["id"]
        files = write_corpus(tmp_path / "corpus")
        uploaded = client.post(f"/projects/{pid}/documents", files=[("files", (p.name, p.read_bytes())) for p in files])
        assert uploaded.status_code == 201

        # The co-pilot reads the uploads (no run has parsed them) and suggests; the user drops its suggestions
        # and writes the codebook.
        suggested = _wait_for_task(client, client.post(f"/projects/{pid}/suggestions", json={}).json()["id"])
        assert suggested["status"] == "succeeded" and suggested["result"]["suggestions"]
        dropped = client.post(f"/agent-tasks/{suggested['id']}/accept", json={"variables": []}).json()
        assert dropped["variables"] == [] and dropped["task"]["applied"]["dropped"]
        for variable in VARIABLES:
            assert client.post(f"/projects/{pid}/variables", json=variable).status_code == 201
        codebook_version = len(client.get(f"/projects/{pid}/prompt-versions").json()["items"])

        first = client.post(f"/projects/{pid}/runs", json={"kind": "sample", "sample_size": 4, "seed": 1}).json()
        assert wait_for_run(client, first["id"], timeout=300)["status"] == "succeeded"
        cities = {
            v["value"] for v in client.get(f"/runs/{first['id']}/values", params={"variable": "city"}).json()["items"]
        }
        assert cities == set(COUNTRIES.values())  # the model codes the country

        # Double coding, blind: Bob opens his review before Alice finishes hers; neither sees the other's.
        assert bob.post(f"/runs/{first['id']}/review").status_code == 200
        _review(client, first["id"], truth, fixes=porto_size)
        assert bob.get(f"/runs/{first['id']}/feedback").json()["items"] == []
        assert client.get(f"/runs/{first['id']}/agreement").json()["complete"] is False
        refused = client.post(f"/projects/{pid}/runs", json={"kind": "full"})
        assert (refused.status_code, refused.json()["code"]) == (409, "review_incomplete")
        blind = _final(bob, pid, first["id"])  # Bob's download holds none of Alice's corrections
        assert set(blind["data"]["city__final_source"]) == {"model"} and blind["feedback"].empty
        assert "only the downloader's own" in blind["about"].to_string()
        _review(bob, first["id"], truth, fixes=porto_size)

        figures = {v["variable"]: v for v in client.get(f"/runs/{first['id']}/agreement").json()["model_vs_reviewers"]}
        assert figures["city"]["accuracy"] == 0.0 and not figures["city"]["passes"] and figures["city"]["n"] == 8
        assert figures["participants"]["accuracy"] == 0.75  # 3 of 4 reports right, by each of the two reviewers
        between = client.get(f"/runs/{first['id']}/agreement").json()["between_reviewers"]
        assert between and all(b["accuracy"] == 1.0 for b in between)
        refused = client.post(f"/projects/{pid}/runs", json={"kind": "full"})
        assert (refused.status_code, refused.json()["code"]) == (409, "reliability_below_threshold")
        reviewed = _final(client, pid, first["id"])  # downloaded again: the reviews are in it now
        porto = reviewed["data"].set_index("file_name").loc["porto_dockers.html"]
        assert (porto["participants"], porto["participants__final"], porto["participants__final_source"]) == (
            450,
            500,
            "reviewer",
        )
        assert "every reviewer's" in reviewed["about"].to_string() and len(reviewed["feedback"]) == 40

        refinement = client.post(f"/projects/{pid}/refinements", json={"run_id": first["id"], "seed": 1}).json()
        refinement = _wait_for_task(client, refinement["id"])
        assert refinement["status"] == "succeeded", refinement
        result = refinement["result"]
        (city,) = [s for s in result["held_out"] if s["variable"] == "city"]
        assert (city["before"]["accuracy"], city["after"]["accuracy"]) == (0.0, 1.0)
        # Porto's size was wrong too; the user takes the city's proposal alone.
        assert result["verdict"] == "offered" and [p["variable"] for p in result["proposals"]] == [
            "city",
            "participants",
        ]
        accepted = client.post(f"/agent-tasks/{refinement['id']}/accept", json={"variables": ["city"]}).json()
        assert accepted["prompt_version"] == codebook_version + 1
        assert [c["name"] for c in accepted["diff"]["changed"]] == ["city"]

        before_second = len(calls_log.read_text().splitlines())
        second = client.post(f"/projects/{pid}/runs", json={"kind": "sample", "sample_size": 4, "seed": 1}).json()
        assert wait_for_run(client, second["id"], timeout=300)["status"] == "succeeded"
        asked = [line.split()[1:] for line in calls_log.read_text().splitlines()[before_second:]]
        assert asked == [["record_values", "city"]] * 4  # one call a document, for the refined variable alone
        shown = client.get(f"/runs/{second['id']}").json()
        assert (shown["llm_calls"], shown["partly_cached_calls"], shown["cached_calls"]) == (4, 4, 0)
        # The unchanged values keep both reviewers' verdicts, marked as carried; each judges the cities alone.
        carried = client.get(f"/runs/{second['id']}/feedback").json()["items"]
        assert len(carried) == 2 * 4 * 4 and {f["carried_from_run_id"] for f in carried} == {first["id"]}
        assert _review(client, second["id"], truth, only="city") == 4
        assert _review(bob, second["id"], truth, only="city") == 4
        figures = {v["variable"]: v for v in client.get(f"/runs/{second['id']}/agreement").json()["model_vs_reviewers"]}
        assert figures["city"]["accuracy"] == 1.0 and all(v["passes"] for v in figures.values())

        full = client.post(f"/projects/{pid}/runs", json={"kind": "full"})
        assert full.status_code == 202 and full.json()["reliability_override"] is None
        assert wait_for_run(client, full.json()["id"], timeout=300)["status"] == "succeeded"
        sheets = _final(client, pid, full.json()["id"])
        assert {"data", "codebook", "about", "agreement", "feedback"} <= set(sheets)
        data = sheets["data"].set_index("file_name")
        assert data["city"].to_dict() == truth and set(data["prompt_version"]) == {codebook_version + 1}
        assert "dateline" in sheets["codebook"].set_index("variable").loc["city", "description"]
        # Every correction a reviewer made is in the full run's dataset, answered from the cache.
        assert data.loc["porto_dockers.html", "participants__final"] == 500
        assert set(data["participants__final_source"]) == {"model", "reviewer"}
        # The figures against an independent count of the verdicts the download lists.
        verdicts = sheets["feedback"]
        agreement_sheet = sheets["agreement"]
        model_rows = agreement_sheet[agreement_sheet["comparison"] == "model vs reviewers"].set_index("variable")
        for name, rows in verdicts.groupby("variable"):
            assert model_rows.loc[name, "n"] == len(rows)
            assert model_rows.loc[name, "accuracy"] == round((rows["verdict"] == "correct").mean(), 4), name


def test_the_readmes_research_loop_runs_as_written(platform, settings, tmp_path):
    """docs/research_loop.sh, which docs/research-loop.md shows verbatim, run with bash and curl against the
    platform."""
    import subprocess

    from coderai_assets.demo import write_corpus

    script = Path(__file__).resolve().parents[2] / "docs" / "research_loop.sh"
    walk_through = (script.parent / "research-loop.md").read_text()
    body = script.read_text().split("set -euo pipefail\n", 1)[1]
    assert body.strip() in walk_through  # the documented walk-through is this script
    write_corpus(tmp_path / "corpus")
    env = {
        **os.environ,
        "API": f"http://{settings.api_host}:{settings.api_port}/api/v1",
        "CORPUS": str(tmp_path / "corpus"),
    }
    done = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    data = pd.read_excel(tmp_path / "dataset.xlsx", sheet_name="data")
    assert len(data) == 4 and data["participants__final"].notna().all()
    assert "refinement:" in done.stdout and "dataset.xlsx and dataset.csv" in done.stdout
