"""The facade against the real PostgreSQL: projects, variables, uploads, errors with stable codes."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from coderai_api.main import create_app
from coderai_assets.storage.db import tenant_session
from tests.support.api import _client, login_as


@pytest.fixture
def anonymous(database, settings):
    app = create_app(settings)
    with TestClient(app, base_url="http://test/api/v1") as client:
        yield client


@pytest.fixture
def client(anonymous):
    """A client logged in as the owner of a fresh workspace (Authorization header set)."""
    login_as(anonymous, f"owner-{uuid.uuid4().hex[:8]}@example.org")
    return anonymous


@pytest.fixture
def project(client):
    response = client.post("/projects", json={"name": "Protests", "domain_description": "Protest reports."})
    assert response.status_code == 201
    return response.json()


def test_project_and_variables(client, project):
    pid = project["id"]
    assert any(p["id"] == pid for p in client.get("/projects").json()["items"])
    ok = client.post(
        f"/projects/{pid}/variables",
        json={"name": "protest_type", "type": "category", "allowed_values": ["march", "strike"]},
    )
    assert ok.status_code == 201 and ok.json()["display_name"] == "Protest type"
    dependent = client.post(
        f"/projects/{pid}/variables",
        json={
            "name": "strike_days",
            "type": "integer",
            "depends_on": "protest_type",
            "depends_on_value": "strike",
            "validation": {"min": 1},
        },
    )
    assert dependent.status_code == 201
    assert [v["name"] for v in client.get(f"/projects/{pid}/variables").json()] == [
        "protest_type",
        "strike_days",
    ]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "x", "type": "category"}, 422, "invalid_request"),  # no allowed values
        ({"name": "Bad Name", "type": "text"}, 422, "invalid_request"),
        (
            {"name": "x", "type": "text", "tenant_id": "00000000-0000-0000-0000-000000000000"},
            422,
            "invalid_request",
        ),
        ({"name": "x", "type": "text", "depends_on": "nope"}, 422, "unknown_dependency"),
        ({"name": "x", "type": "text", "validation": {"pattern": "("}}, 422, "invalid_pattern"),
    ],
)
def test_bad_variables_get_a_stable_code(client, project, body, status, code):
    response = client.post(f"/projects/{project['id']}/variables", json=body)
    assert (response.status_code, response.json()["code"]) == (status, code)


def test_duplicate_variable_is_a_conflict(client, project):
    body = {"name": "city", "type": "text"}
    assert client.post(f"/projects/{project['id']}/variables", json=body).status_code == 201
    response = client.post(f"/projects/{project['id']}/variables", json=body)
    assert (response.status_code, response.json()["code"]) == (409, "variable_exists")


def test_upload_records_documents_and_deduplicates(client, project, demo_files):
    pid = project["id"]
    files = [("files", (p.name, p.read_bytes())) for p in demo_files]
    response = client.post(f"/projects/{pid}/documents", files=files)
    assert response.status_code == 201
    uploaded = response.json()
    assert [u["duplicate"] for u in uploaded] == [False] * len(demo_files)
    again = client.post(f"/projects/{pid}/documents", files=files[:1]).json()
    assert again[0]["duplicate"] is True and again[0]["document"]["id"] == uploaded[0]["document"]["id"]
    assert len(client.get(f"/projects/{pid}/documents").json()["items"]) == len(demo_files)


def test_empty_upload_is_refused_and_nothing_is_stored(client, project):
    response = client.post(f"/projects/{project['id']}/documents", files=[("files", ("empty.txt", b""))])
    assert (response.status_code, response.json()["code"]) == (422, "empty_file")
    assert client.get(f"/projects/{project['id']}/documents").json()["items"] == []


def test_unknown_ids_are_404_with_codes(client, project):
    missing = "00000000-0000-0000-0000-000000000001"
    assert client.get(f"/projects/{missing}").json()["code"] == "project_not_found"
    assert client.get(f"/runs/{missing}").json()["code"] == "run_not_found"
    assert client.get(f"/projects/{project['id']}/export").json()["code"] == "export_not_found"


def test_run_needs_documents_and_a_sample_size(client, project):
    response = client.post(f"/projects/{project['id']}/runs", json={"kind": "full"})
    assert (response.status_code, response.json()["code"]) == (422, "no_documents")
    response = client.post(f"/projects/{project['id']}/runs", json={"kind": "sample"})
    assert (response.status_code, response.json()["code"]) == (422, "invalid_request")


def test_openapi_lists_the_routes(client):
    paths = client.get("http://test/openapi.json").json()["paths"]
    for path in (
        "/api/v1/projects",
        "/api/v1/projects/{project_id}/documents",
        "/api/v1/projects/{project_id}/runs",
        "/api/v1/runs/{run_id}",
        "/api/v1/projects/{project_id}/export",
    ):
        assert path in paths


def test_websocket_streams_run_progress_until_it_ends(client, project, session_factory):
    from coderai_assets.storage.models import Run, RunKind, RunStatus

    tenant_id = uuid.UUID(client.get("/auth/me").json()["workspaces"][0]["id"])
    with tenant_session(session_factory, tenant_id) as session:
        run = Run(
            tenant_id=tenant_id,
            project_id=uuid.UUID(project["id"]),
            kind=RunKind.full,
            status=RunStatus.succeeded,
            documents_total=3,
            documents_done=3,
        )
        session.add(run)
        session.flush()
        run_id = str(run.id)
    token = client.headers["Authorization"][7:]
    with client.websocket_connect(f"ws://test/ws/jobs/{run_id}", subprotocols=["bearer", token]) as ws:
        message = ws.receive_json()
        assert (message["id"], message["status"], message["documents_done"]) == (run_id, "succeeded", 3)
    from starlette.websockets import WebSocketDisconnect

    with client.websocket_connect(
        "ws://test/ws/jobs/00000000-0000-0000-0000-000000000009", subprotocols=["bearer", token]
    ) as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4404


def test_variables_can_be_edited_and_deleted_with_checks(client, project):
    pid = project["id"]
    kind = client.post(
        f"/projects/{pid}/variables", json={"name": "kind", "type": "category", "allowed_values": ["march", "strike"]}
    ).json()
    client.post(
        f"/projects/{pid}/variables",
        json={"name": "days", "type": "integer", "depends_on": "kind", "depends_on_value": "strike"},
    )
    edited = client.patch(
        f"/projects/{pid}/variables/{kind['id']}",
        json={"description": "Form of the protest", "allowed_values": ["march", "strike", "rally"]},
    )
    assert edited.status_code == 200 and edited.json()["allowed_values"] == ["march", "strike", "rally"]
    assert edited.json()["name"] == "kind" and edited.json()["type"] == "category"
    bad = client.patch(f"/projects/{pid}/variables/{kind['id']}", json={"allowed_values": None})
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_variable")
    renamed = client.patch(f"/projects/{pid}/variables/{kind['id']}", json={"name": "other"})
    assert renamed.status_code == 422  # the name is the dataset's column: not editable
    in_use = client.delete(f"/projects/{pid}/variables/{kind['id']}")
    assert (in_use.status_code, in_use.json()["code"]) == (409, "variable_in_use")
    days = next(v for v in client.get(f"/projects/{pid}/variables").json() if v["name"] == "days")
    assert client.delete(f"/projects/{pid}/variables/{days['id']}").status_code == 204
    assert client.delete(f"/projects/{pid}/variables/{kind['id']}").status_code == 204
    assert client.get(f"/projects/{pid}/variables").json() == []


def test_a_burst_of_100_requests_all_succeed_with_a_small_pool(database, settings):
    """More concurrent requests than connections: they queue for a turn, none times out on the pool."""
    from concurrent.futures import ThreadPoolExecutor

    small = settings.model_copy(update={"api_db_pool_size": 3, "api_db_max_overflow": 0})
    with TestClient(create_app(small), base_url="http://test/api/v1") as client:
        login_as(client, f"burst-{uuid.uuid4().hex[:8]}@example.org")
        pid = client.post("/projects", json={"name": "Burst"}).json()["id"]

        def one(i: int) -> int:
            path = "/projects" if i % 3 == 0 else f"/projects/{pid}" if i % 3 == 1 else f"/projects/{pid}/variables"
            return client.get(path).status_code

        with ThreadPoolExecutor(max_workers=100) as pool:
            statuses = list(pool.map(one, range(100)))
    assert statuses == [200] * 100


def test_the_variable_definition_is_one_model(client, project):
    """The API's schemas, the stored row and the codebook share `VariableSpec`: a field added there appears in all."""
    from coderai_api.projects.schemas import VariableCreate, VariableRead, VariableUpdate
    from coderai_assets.engine.variables import VariableSpec

    fields = set(VariableSpec.model_fields)
    assert set(VariableCreate.model_fields) == fields | {"position"}
    assert set(VariableRead.model_fields) == fields | {"id", "position"}
    assert set(VariableUpdate.model_fields) == (fields - {"name"}) | {"position"}
    body = {"name": "size", "type": "integer", "validation": {"min": 0}, "if_uncertain": "best_guess"}
    created = client.post(f"/projects/{project['id']}/variables", json=body).json()
    listed = next(v for v in client.get(f"/projects/{project['id']}/variables").json() if v["name"] == "size")
    assert created == listed
    # Unset examples and absent codes are left out of the stored definition, so that definitions from before them
    # hash alike.
    assert listed["examples"] is None and listed["absent_value"] is None
    assert VariableSpec.model_validate(listed).stored() == {
        **{k: v for k, v in listed.items() if k not in ("id", "position", "examples", "absent_value")},
        "validation": {"min": 0.0},
    }


def test_an_authenticated_read_is_two_statements_in_one_transaction(client, project):
    """Who is asking and the workspace's tenant in one statement, then the read (pool pings and BEGIN/COMMIT are
    not statements of ours): the cost of every request under load."""
    from sqlalchemy import event

    engine = client.app.state.session_factory.kw["bind"]
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        if statement.strip().lower() not in ("select 1", "begin", "commit"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get(f"/projects/{project['id']}").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(statements) == 2, statements
    assert "set_config" in statements[0] and "FROM projects" in statements[1]


def test_a_run_can_be_cancelled_and_retried_and_shows_its_progress(client, project, demo_files):
    """One full run per project at a time (409); a cancelled run can be retried as a new attempt; while active,
    GET /runs/{id} carries its progress, counted from the documents' rows."""
    uploads = [("files", (p.name, p.read_bytes())) for p in demo_files]
    assert client.post(f"/projects/{project['id']}/documents", files=uploads).status_code == 201
    run = client.post(f"/projects/{project['id']}/runs", json={"kind": "full"}).json()
    assert run["status"] == "queued" and run["attempt"] == 0
    assert run["progress"]["documents_total"] == len(demo_files) and run["progress"]["documents_parsed"] == 0
    second = client.post(f"/projects/{project['id']}/runs", json={"kind": "full"})
    assert (second.status_code, second.json()["code"]) == (409, "run_already_active")
    retried = client.post(f"/runs/{run['id']}/retry")
    assert (retried.status_code, retried.json()["code"]) == (409, "run_active")
    cancelled = client.post(f"/runs/{run['id']}/cancel").json()
    assert (cancelled["status"], cancelled["error_code"], cancelled["progress"]) == ("canceled", "canceled", None)
    again = client.post(f"/runs/{run['id']}/cancel")
    assert (again.status_code, again.json()["code"]) == (409, "run_not_active")
    retried = client.post(f"/runs/{run['id']}/retry")
    assert retried.status_code == 202
    assert (retried.json()["status"], retried.json()["attempt"]) == ("queued", 1)
    # The retried run is the project's active full run again.
    second = client.post(f"/projects/{project['id']}/runs", json={"kind": "full"})
    assert second.json()["code"] == "run_already_active"


def test_an_estimate_before_the_run_and_a_cap_on_it(client, project, demo_files):
    """The estimate records nothing; the run carries its cap; the workspace's budget is the owner's to set."""
    uploads = [("files", (p.name, p.read_bytes())) for p in demo_files]
    client.post(f"/projects/{project['id']}/documents", files=uploads)
    for variable in ({"name": "city", "type": "text"}, {"name": "participants", "type": "integer"}):
        client.post(f"/projects/{project['id']}/variables", json=variable)
    estimate = client.post(f"/projects/{project['id']}/runs/estimate", json={"kind": "full"}).json()
    assert (estimate["documents"], estimate["documents_parsed"], estimate["cached_chunks"]) == (4, 0, 0)
    assert estimate["calls"] == estimate["chunks"] == 4 and estimate["input_tokens"] > 0
    assert client.get(f"/projects/{project['id']}/runs").json()["items"] == []
    sample = client.post(f"/projects/{project['id']}/runs/estimate", json={"kind": "sample", "sample_size": 2})
    assert sample.json()["documents"] == 2
    run = client.post(f"/projects/{project['id']}/runs", json={"kind": "full", "max_cost_usd": 0.5}).json()
    assert (run["max_cost_usd"], run["spent_usd"]) == (0.5, 0.0)
    refused = client.post(
        f"/projects/{project['id']}/runs", json={"kind": "sample", "sample_size": 1, "max_cost_usd": 0}
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_request")
    workspace = client.get("/auth/me").json()["workspaces"][0]["id"]
    assert client.get(f"/workspaces/{workspace}/spending").json()["spent_usd"] == 0.0
    budget = client.put(f"/workspaces/{workspace}/spending", json={"monthly_budget_usd": 25}).json()
    assert budget["monthly_budget_usd"] == 25 and len(budget["month"]) == 7


def test_metrics_for_prometheus_with_an_optional_token(database, settings):
    """GET /metrics: the API's HTTP metrics and the run workers' shared counters; with a token set, only for it."""
    app = create_app(settings)
    with TestClient(app) as client:
        client.get("/api/v1/health")
        client.get(f"/api/v1/projects/{uuid.uuid4()}")  # 401: labelled by its route's template, never its path
        client.get("/api/v1/no-such-route")
        text = client.get("/metrics").text
        assert "http_requests_total" in text and 'handler="/api/v1/health"' in text
        assert 'handler="/api/v1/projects/{project_id}",method="GET",status="4xx"' in text
        assert 'handler="none"' in text and "no-such-route" not in text and 'handler="/metrics"' not in text
        for name in ("coderai_llm_calls_total", "coderai_documents_total", "coderai_spend_usd_total"):
            assert f"# TYPE {name} counter" in text
        assert "# TYPE coderai_llm_call_seconds histogram" in text
    guarded = create_app(settings.model_copy(update={"metrics_token": SecretStr("scrape-secret")}))
    with TestClient(guarded) as client:
        assert client.get("/metrics").status_code == 401
        ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
        assert ok.status_code == 200 and "coderai_llm_calls_total" in ok.text


def test_a_file_name_comes_back_exactly_as_it_was_given(client, project):
    """Users join the dataset on file names: `NETGEAR,INC_10-K (1).txt` must not come back as `NETGEAR_INC_...`.
    Only control characters are replaced (PostgreSQL cannot store NUL); files are stored under the document id."""
    from coderai_api.documents.service import stored_file_name

    names = ["NETGEAR,INC_10-K (1).txt", "Übersicht – Vertrag #3.txt", "../../etc/passwd.txt"]
    uploads = [("files", (name, f"text of {i}".encode())) for i, name in enumerate(names)]
    stored = client.post(f"/projects/{project['id']}/documents", files=uploads).json()
    assert [d["document"]["file_name"] for d in stored] == names
    assert stored_file_name("tab\there\x00.txt") == "tab_here_.txt"


def test_a_nul_in_the_query_string_is_refused_before_it_reaches_the_database(client, project):
    """Found by the fuzzer: `GET /runs/{id}/values?variable=a%00b` answered 500 (PostgreSQL refuses NUL in text)."""
    response = client.get(f"/projects/{project['id']}/documents?x=a%00b")
    assert (response.status_code, response.json()["code"]) == (422, "invalid_request")
    run = "00000000-0000-0000-0000-000000000001"
    assert client.get(f"/runs/{run}/values", params={"variable": "a\x00b"}).status_code == 422


def test_two_creates_of_one_variable_name_at_once_are_one_201_and_one_409(client, project):
    import threading

    barrier, statuses = threading.Barrier(6), []

    def create() -> None:
        barrier.wait()
        response = client.post(f"/projects/{project['id']}/variables", json={"name": "city", "type": "text"})
        statuses.append((response.status_code, response.json().get("code")))

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses, key=str) == [(201, None)] + [(409, "variable_exists")] * 5


def test_an_edit_of_the_codebook_makes_its_prompt_version_at_once(client, project):
    pid = project["id"]
    city = client.post(f"/projects/{pid}/variables", json={"name": "city", "type": "text"}).json()
    client.post(f"/projects/{pid}/variables", json={"name": "participants", "type": "integer"})
    assert sorted(v["version"] for v in client.get(f"/projects/{pid}/prompt-versions").json()["items"]) == [1, 2]
    edited = client.patch(f"/projects/{pid}/variables/{city['id']}", json={"description": "The city in the dateline"})
    assert edited.status_code == 200
    diff = client.get(f"/projects/{pid}/prompt-versions/3/diff", params={"against": 2})
    assert diff.status_code == 200 and [c["name"] for c in diff.json()["changed"]] == ["city"]
    refused = client.patch(f"/projects/{pid}/variables/{city['id']}", json={"type": "nonsense"})
    assert refused.status_code == 422
    assert len(client.get(f"/projects/{pid}/prompt-versions").json()["items"]) == 3  # a refused edit makes none


@pytest.mark.parametrize("path", ["/projects", "/runs/{id}/values", "/projects/{id}/documents", "/runs/{id}/feedback"])
def test_a_page_size_over_the_limit_says_the_limit(client, path):
    response = client.get(path.format(id=uuid.uuid4()), params={"limit": 501})
    assert response.status_code == 422 and response.json()["code"] == "limit_too_large"
    assert "500" in response.json()["message"]


def test_one_sample_seed_picks_the_same_files_in_two_projects_with_the_same_files(client, demo_files):
    picked: list[list[list[str]]] = []
    for order in (demo_files, list(reversed(demo_files))):
        pid = client.post("/projects", json={"name": "Seeds", "domain_description": "Protests."}).json()["id"]
        client.post(f"/projects/{pid}/variables", json={"name": "city", "type": "text"})
        for path in order:  # uploaded in another order: other ids, other times
            client.post(f"/projects/{pid}/documents", files=[("files", (path.name, path.read_bytes()))])
        picked.append([])
        for seed in range(5):
            sample = {"kind": "sample", "sample_size": 2, "seed": seed}
            run = client.post(f"/projects/{pid}/runs", json=sample).json()
            documents = client.get(f"/runs/{run['id']}/documents").json()["items"]
            picked[-1].append(sorted(d["file_name"] for d in documents))
    assert picked[0] == picked[1] and all(len(files) == 2 for files in picked[0])


def test_the_demo_says_its_embedded_models_values_are_demo_quality(settings):
    from coderai_assets.demo import quality_notice

    assert "DEMO QUALITY" in quality_notice(settings.model_copy(update={"llm_provider": "local"}))
    assert "DEMO" not in quality_notice(settings)


def test_the_api_docs_load_without_a_cdn(anonymous):
    """An air-gapped install: /docs and /redoc must not need the internet."""
    for page in ("/docs", "/redoc"):
        html = anonymous.get(f"http://test{page}").text
        assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html, page
        assets = re.findall(r'(?:src|href)="(/static-offline-docs/[^"]+)"', html)
        assert assets, page
        for asset in assets:
            assert anonymous.get(f"http://test{asset}").status_code == 200, asset


def test_a_categorys_code_for_absent_must_be_one_of_its_values(client, project):
    pid = project["id"]
    body = {"name": "exclusivity", "type": "category", "allowed_values": ["none", "exclusive"], "absent_value": "no"}
    refused = client.post(f"/projects/{pid}/variables", json=body)
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_request")
    assert "absent_value" in refused.json()["message"]
    created = client.post(f"/projects/{pid}/variables", json={**body, "absent_value": "none"})
    assert created.status_code == 201 and created.json()["absent_value"] == "none"


def test_two_owners_demoting_each_other_leave_one(app):
    from concurrent.futures import ThreadPoolExecutor

    with _client(app) as alice, _client(app) as bob:
        login_as(bob, bob_email := f"bob-{uuid.uuid4().hex[:8]}@example.org")
        tokens = login_as(alice, f"alice-{uuid.uuid4().hex[:8]}@example.org")
        workspace = tokens["workspace_id"]
        joined = alice.post(f"/workspaces/{workspace}/members", json={"email": bob_email, "role": "owner"}).json()
        bob_tokens = bob.post(
            "/auth/login", json={"email": bob_email, "password": "correct horse battery", "workspace_id": workspace}
        ).json()
        bob.headers["Authorization"] = f"Bearer {bob_tokens['access_token']}"
        alice_id = alice.get("/auth/me").json()["id"]
        demotions = [
            (alice, f"/workspaces/{workspace}/members/{joined['user_id']}"),
            (bob, f"/workspaces/{workspace}/members/{alice_id}"),
        ]
        with ThreadPoolExecutor(2) as pool:
            statuses = sorted(pool.map(lambda d: d[0].patch(d[1], json={"role": "editor"}).status_code, demotions))
        members = alice.get(f"/workspaces/{workspace}/members").json()
        if any(m["user_id"] == alice_id and m["role"] != "owner" for m in members):
            members = bob.get(f"/workspaces/{workspace}/members").json()
        assert [m["role"] for m in members if m["status"] == "member"].count("owner") == 1
        assert statuses == [200, 422]


def test_the_schema_says_what_the_server_enforces_and_the_server_does_what_the_path_says(app):
    """What a schema fuzzer found: a NUL character answered 500; schema-valid requests were refused (a category
    without allowed values, reserved email domains); workspace routes ignored the workspace in the path; 405
    answers lacked Allow."""
    with _client(app) as client:
        login_as(client, f"fuzz-{uuid.uuid4().hex[:8]}@example.test")  # a special-use domain: a valid address
        nul = client.post("/projects", json={"name": "bad\x00name"})
        assert (nul.status_code, nul.json()["code"]) == (422, "invalid_request")
        project = client.post("/projects", json={"name": "Fuzz"}).json()["id"]
        nul_variable = client.post(
            f"/projects/{project}/variables", json={"name": "v", "type": "text", "allowed_values": ["a\x00"]}
        )
        assert nul_variable.status_code == 422

        schema = client.get("http://test/openapi.json").json()["components"]["schemas"]
        rules = schema["VariableCreate"]["allOf"]
        assert {"if": {"properties": {"type": {"const": "category"}}, "required": ["type"]}}.items() <= rules[0].items()
        assert rules[0]["then"]["required"] == ["allowed_values"]
        assert schema["RunCreate"]["then"]["required"] == ["sample_size"]

        created = client.post("/workspaces", json={"name": "Second"}).json()
        members = client.get(f"/workspaces/{created['id']}/members")
        assert members.status_code == 200 and [m["role"] for m in members.json()] == ["owner"]
        stranger = client.get(f"/workspaces/{uuid.uuid4()}/members")
        assert (stranger.status_code, stranger.json()["code"]) == (404, "workspace_not_found")

        not_allowed = client.put(f"/projects/{project}")
        assert not_allowed.status_code == 405 and "GET" in not_allowed.headers["Allow"]
        assert not_allowed.json()["code"] == "method_not_allowed"
