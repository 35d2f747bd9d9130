"""What one client can do to everybody: patterns that compile to gigabytes, bodies sent a byte at a time. Each
attack runs here, bounded in time and memory, and the platform stays up for the others."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from coderai_api.main import create_app
from coderai_assets.storage.db import tenant_session
from tests.support.api import _client, _raw_request, login_as

ATTACK_PATTERNS = ["(?:a{1000}){1000}", "(?:(?:a{1000}){1000}){4}", "a{100000}", "(?:ab|cd){50000}", "x" * 1001]


@pytest.fixture
def client(database, settings):
    with TestClient(create_app(settings), base_url="http://test/api/v1") as client:
        login_as(client, f"attacker-{uuid.uuid4().hex[:8]}@example.org")
        yield client


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_pattern_that_would_compile_to_gigabytes_is_refused_before_it_is_compiled(client):
    project = client.post("/projects", json={"name": "p", "domain_description": "d"}).json()
    before, start = _peak_mb(), time.perf_counter()
    for i, pattern in enumerate(ATTACK_PATTERNS):
        body = {"name": f"code_{i}", "type": "text", "validation": {"pattern": pattern}}
        response = client.post(f"/projects/{project['id']}/variables", json=body)
        assert (response.status_code, response.json()["code"]) == (422, "invalid_pattern"), pattern
        assert "at most" in response.json()["message"]
    # Each of these cost 250 MB to 1.7 GB, and seconds, when it was compiled.
    assert time.perf_counter() - start < 5 and _peak_mb() - before < 100
    fine = {"name": "iso_code", "type": "text", "validation": {"pattern": r"^[A-Z]{2}(?:-[A-Z0-9]{1,3})?$"}}
    assert client.post(f"/projects/{project['id']}/variables", json=fine).status_code == 201


def test_a_stored_pattern_over_the_bound_makes_values_invalid_never_a_failed_run():
    from coderai_assets.engine.coercion import coerce_value
    from coderai_assets.engine.variables import VariableSpec

    spec = VariableSpec(name="code", type="text", validation={"pattern": "(?:a{1000}){1000}"})
    result = coerce_value(spec, "aaa")
    assert result.status == "invalid" and "cannot be used" in result.message


def test_the_largest_pattern_allowed_compiles_within_a_small_memory_bound():
    """Under an address-space limit of 512 MB, in a process of its own: patterns at the bound compile."""
    from coderai_assets.engine.patterns import MAX_EXPANSION, MAX_PATTERN_CHARS, expansion

    largest = [f"a{{{MAX_EXPANSION}}}", f"(?:[a-z]{{100}}){{{MAX_EXPANSION // 101}}}", "(?:ab|cd)" * 110]
    for pattern in largest:
        assert expansion(pattern) <= MAX_EXPANSION and len(pattern) <= MAX_PATTERN_CHARS, pattern
    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (512 * 2**20, 512 * 2**20))\n"
        "from coderai_assets.engine.patterns import compile_pattern\n"
        "for p in sys.argv[1:]:\n"
        "    compile_pattern(p)\n"
        # The peak of this process alone (ru_maxrss would carry the forking parent's across exec).
        "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) // 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, *largest], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) < 200  # MB at its peak, the interpreter and the engine included


@pytest.fixture
def live_api(database, tmp_path):
    """The API in a uvicorn process of its own (as `make up` runs it), slow bodies timed out after 3 s."""
    import os

    import httpx

    from tests.ports import free_port

    port = free_port()
    env = {**os.environ, "CODERAI_BODY_TIMEOUT_SECONDS": "3", "CODERAI_MAX_BODIES_PER_CLIENT": "40"}
    with (tmp_path / "api.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "coderai_api.main:app", "--port", str(port), "--no-access-log"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline and server.poll() is None, (tmp_path / "api.log").read_text()
                time.sleep(0.3)
            yield port
        finally:
            server.terminate()
            server.wait(10)


def test_anonymous_slow_bodies_never_stall_the_api(live_api):
    """60 connections each declare a 100-byte login body and send 4 bytes (the pool admits 20 a worker): /health
    answers within 1 s throughout, the slow ones get 408 at the deadline, and a 41st slow body of one address is
    refused at once."""
    import socket

    import httpx

    request = (
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"em'
    )
    slow = []
    for _ in range(60):
        connection = socket.create_connection(("127.0.0.1", live_api), timeout=10)
        connection.sendall(request)
        slow.append(connection)
    try:
        started = time.monotonic()
        worst = 0.0
        while time.monotonic() - started < 4.5:  # past the 3 s deadline
            t = time.monotonic()
            assert httpx.get(f"http://127.0.0.1:{live_api}/api/v1/health", timeout=5).status_code == 200
            worst = max(worst, time.monotonic() - t)
            time.sleep(0.2)
        assert worst < 1.0
        answers = []
        for connection in slow:
            try:
                answers.append(connection.recv(200).split(b" ", 2)[1])
            except (TimeoutError, IndexError):
                answers.append(b"none")
        assert set(answers) <= {b"408", b"429"} and answers.count(b"429") == 20 and b"408" in answers
    finally:
        for connection in slow:
            connection.close()


def test_agent_tasks_count_in_the_workspaces_quota_of_work_under_way(database, settings, session_factory):
    """40 co-pilot tasks queued in 1.7 s slowed another workspace's sample tenfold: tasks and runs share a quota."""

    app = create_app(settings.model_copy(update={"quota_active_runs": 3}))
    with TestClient(app, base_url="http://test/api/v1") as client:
        login_as(client, f"burst-{uuid.uuid4().hex[:8]}@example.org")
        pid = client.post("/projects", json={"name": "p", "domain_description": "d"}).json()["id"]
        client.post(f"/projects/{pid}/documents", files=[("files", ("a.txt", b"LYON - nurses marched."))])
        answers = [client.post(f"/projects/{pid}/suggestions", json={}) for _ in range(5)]
        assert [a.status_code for a in answers] == [202, 202, 202, 409, 409]
        assert answers[-1].json()["code"] == "quota_exceeded"
        client.post(f"/projects/{pid}/variables", json={"name": "city", "type": "text"})
        run = client.post(f"/projects/{pid}/runs", json={"kind": "sample", "sample_size": 1})
        assert (run.status_code, run.json()["code"]) == (409, "quota_exceeded")  # the tasks hold the quota
        for answer in answers[:3]:  # cancelled, so no other test's agent sensor picks them up
            assert client.post(f"/agent-tasks/{answer.json()['id']}/cancel").status_code == 200


def test_one_account_owns_a_bounded_number_of_workspaces(database, settings):
    app = create_app(settings.model_copy(update={"quota_workspaces_per_account": 3}))
    with TestClient(app, base_url="http://test/api/v1") as client:
        login_as(client, f"hoarder-{uuid.uuid4().hex[:8]}@example.org")  # registering gives one
        answers = [client.post("/workspaces", json={"name": f"w{i}"}) for i in range(4)]
        assert [a.status_code for a in answers] == [201, 201, 409, 409]
        assert answers[-1].json()["code"] == "quota_exceeded"


def test_dagster_run_slots_are_shared_fairly_between_workspaces():
    """The run queue caps each workspace's Dagster runs (agent tasks and runs carry the workspace tag) below the
    platform's, so one workspace's burst leaves slots for the others."""

    import yaml

    from coderai_assets.storage.partition_keys import WORKSPACE_TAG

    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "dagster.yaml").read_text())
    coordinator = config["run_coordinator"]["config"]
    (limit,) = [t for t in coordinator["tag_concurrency_limits"] if t["key"] == WORKSPACE_TAG]
    assert limit["value"] == {"applyLimitPerUniqueValue": True}
    assert 1 <= limit["limit"] < coordinator["max_concurrent_runs"]


def test_bodies_are_limited_and_an_anonymous_body_is_never_read(app, settings, session_factory):
    mib = b"x" * (1024 * 1024)
    with _client(app) as client:
        tokens = login_as(client, f"limits-{uuid.uuid4().hex[:8]}@example.org")
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        project = client.post("/projects", json={"name": "Limits"}).json()["id"]
        upload = f"/api/v1/projects/{project}/documents"

        # 50 MiB anonymous upload: 401 before a byte is read (before the fix: read in full, then 401).
        status, _, read = _raw_request(
            client,
            "POST",
            upload,
            {"Content-Length": str(50 * len(mib)), "Content-Type": "multipart/form-data; boundary=b"},
            [mib] * 50,
        )
        assert (status, read) == (401, 0)
        # A declared length over the route's limit: 413 before reading, with a token or without one.
        status, body, read = _raw_request(
            client,
            "POST",
            "/api/v1/projects",
            {**auth, "Content-Length": str(2 * len(mib)), "Content-Type": "application/json"},
            [mib, mib],
        )
        assert (status, read) == (413, 0) and b"request_too_large" in body
        status, _, read = _raw_request(
            client,
            "POST",
            "/api/v1/auth/login",
            {"Content-Length": str(2 * len(mib)), "Content-Type": "application/json"},
            [mib, mib],
        )
        assert (status, read) == (413, 0)
        # No declared length (chunked): cut off once the limit is passed, not read to the end.
        status, _, read = _raw_request(
            client,
            "POST",
            "/api/v1/projects",
            {**auth, "Transfer-Encoding": "chunked", "Content-Type": "application/json"},
            [mib] * 20,
        )
        assert status == 413 and read < 20
        # More files than an upload may carry: refused, nothing stored.
        files = [("files", (f"f{i}.txt", f"report {i}".encode())) for i in range(settings.max_files_per_upload + 1)]
        refused = client.post(f"/projects/{project}/documents", files=files)
        assert (refused.status_code, refused.json()["code"]) == (400, "invalid_body")
        assert client.get(f"/projects/{project}/documents").json()["items"] == []
        # Within the limits an upload works.
        assert client.post(f"/projects/{project}/documents", files=files[:2]).status_code == 201


def test_workspace_quotas_hold_even_for_requests_racing_each_other(database, settings, session_factory):
    """Open registration could load the whole platform: projects, documents, runs and WebSockets had no bound per
    workspace. Each is a setting; counts are taken under the workspace's row lock."""
    from concurrent.futures import ThreadPoolExecutor

    from starlette.websockets import WebSocketDisconnect

    from coderai_assets.storage.models import Run, RunKind, RunStatus

    small = settings.model_copy(
        update={"quota_projects": 3, "quota_documents": 3, "quota_active_runs": 1, "quota_websockets": 1}
    )
    with TestClient(create_app(small), base_url="http://test/api/v1") as client:
        tokens = login_as(client, f"quota-{uuid.uuid4().hex[:8]}@example.org")

        def create(i):
            return client.post("/projects", json={"name": f"p{i}"}).status_code

        with ThreadPoolExecutor(6) as pool:
            statuses = list(pool.map(create, range(6)))
        assert sorted(statuses) == [201, 201, 201, 409, 409, 409]
        refused = client.post("/projects", json={"name": "one more"})
        assert (refused.status_code, refused.json()["code"]) == (409, "quota_exceeded")

        project = client.get("/projects").json()["items"][0]["id"]
        files = [("files", (f"r{i}.txt", f"report {i}".encode())) for i in range(4)]
        assert client.post(f"/projects/{project}/documents", files=files).status_code == 409
        assert client.get(f"/projects/{project}/documents").json()["items"] == []
        assert client.post(f"/projects/{project}/documents", files=files[:3]).status_code == 201

        assert client.post(f"/projects/{project}/runs", json={"kind": "full"}).status_code == 202
        second = client.post(f"/projects/{project}/runs", json={"kind": "full"})
        assert (second.status_code, second.json()["code"]) == (409, "quota_exceeded")

        tenant_id = uuid.UUID(tokens["workspace_id"])
        with tenant_session(session_factory, tenant_id) as session:
            run = session.scalars(select(Run).where(Run.tenant_id == tenant_id)).one()
            assert (run.kind, run.status) == (RunKind.full, RunStatus.queued)
            run_id = str(run.id)
        protocols = ["bearer", tokens["access_token"]]
        with client.websocket_connect(f"ws://test/ws/jobs/{run_id}", subprotocols=protocols) as first:
            assert first.receive_json()["status"] == "queued"
            with client.websocket_connect(f"ws://test/ws/jobs/{run_id}", subprotocols=protocols) as second_ws:
                with pytest.raises(WebSocketDisconnect) as closed:
                    second_ws.receive_json()
                assert closed.value.code == 4429
        with tenant_session(session_factory, tenant_id) as session:  # no queued run left for the sensor tests
            session.get(Run, uuid.UUID(run_id)).status = RunStatus.failed
