"""Tenant B replays tenant A's ids on every route: 404 and A's data unchanged; lists never show foreign ids;
a viewer's writes are 403. A route added without an entry here fails test_every_route_is_in_the_matrix."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from coderai_api.main import create_app
from coderai_assets.storage.db import tenant_session
from coderai_assets.storage.models import AgentTask, Export, Run, RunKind, RunStatus
from tests.support.api import _mailed_token

PASSWORD = "correct horse battery"
PUBLIC = {
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("GET", "/api/v1/health"),
}
# Routes that act on the caller alone, with no foreign id to replay.
SELF = {
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/auth/me"),
    ("DELETE", "/api/v1/auth/me"),  # the password confirms it (tests/pipeline/test_deletion.py)
    ("POST", "/api/v1/auth/invitations/accept"),  # the token is the only id (tests/api/test_auth.py, invitations)
    ("GET", "/api/v1/workspaces"),
    ("POST", "/api/v1/workspaces"),
    ("GET", "/api/v1/projects"),
    ("POST", "/api/v1/projects"),
}


def _routes(app) -> set[tuple[str, str]]:
    """Every HTTP route the API publishes, from its OpenAPI document."""
    return {(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item}


class Person:
    def __init__(self, app, email: str, workspace: str | None = None):
        self.client = TestClient(app, base_url="http://test")
        self.client.__enter__()
        self.client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        self.email = email
        self.login(workspace)

    def login(self, workspace: str | None = None) -> None:
        body = {"email": self.email, "password": PASSWORD, **({"workspace_id": workspace} if workspace else {})}
        self.tokens = self.client.post("/api/v1/auth/login", json=body).json()
        self.token = self.tokens["access_token"]
        self.client.headers["Authorization"] = f"Bearer {self.token}"
        self.workspace = self.tokens["workspace_id"]

    def join(self, session_factory, workspace: str) -> None:
        """Accepts the invitation mailed to this person's address, then works in that workspace."""
        token = _mailed_token(session_factory, workspace, self.email)
        assert self("POST", "/api/v1/auth/invitations/accept", json={"token": token}).status_code == 200
        self.login(workspace)

    def __call__(self, method: str, path: str, **kwargs):
        return self.client.request(method, path, **kwargs)


@pytest.fixture(scope="module")
def world(database, settings, session_factory, tmp_path_factory):
    from coderai_assets.demo import write_corpus

    app = create_app(settings)
    alice = Person(app, f"alice-{uuid.uuid4().hex[:6]}@example.org")
    bob = Person(app, f"bob-{uuid.uuid4().hex[:6]}@example.org")
    project = alice("POST", "/api/v1/projects", json={"name": "A's project"}).json()
    pid = project["id"]
    vid = alice("POST", f"/api/v1/projects/{pid}/variables", json={"name": "city", "type": "text"}).json()["id"]
    files = write_corpus(tmp_path_factory.mktemp("corpus"))
    uploaded = alice(
        "POST", f"/api/v1/projects/{pid}/documents", files=[("files", (files[0].name, files[0].read_bytes()))]
    )
    did = uploaded.json()[0]["document"]["id"]
    # A finished run with an export, written as A (no Dagster needed for reading them).
    with tenant_session(session_factory, uuid.UUID(alice.workspace)) as session:
        run = Run(
            tenant_id=uuid.UUID(alice.workspace),
            project_id=uuid.UUID(pid),
            kind=RunKind.full,
            status=RunStatus.succeeded,
        )
        session.add(run)
        session.flush()
        csv = f"{alice.workspace}/{pid}/exports/x/dataset.csv"
        settings.storage_dir.joinpath(csv).parent.mkdir(parents=True, exist_ok=True)
        settings.storage_dir.joinpath(csv).write_text("document_id\n")
        session.add(
            Export(
                tenant_id=run.tenant_id,
                project_id=run.project_id,
                run_id=run.id,
                csv_path=csv,
                xlsx_path=csv,
                row_count=0,
            )
        )
        rid = str(run.id)
        # A co-pilot task with a suggestion, done, not yet accepted.
        task = AgentTask(
            tenant_id=run.tenant_id,
            project_id=run.project_id,
            kind="suggest",
            status="succeeded",
            request={},
            result={"suggestions": [{"definition": {"name": "intruder", "type": "text"}}]},
        )
        session.add(task)
        session.flush()
        tid = str(task.id)
    viewer_email = f"vera-{uuid.uuid4().hex[:6]}@example.org"
    alice("POST", f"/api/v1/workspaces/{alice.workspace}/members", json={"email": viewer_email, "role": "viewer"})
    vera = Person(app, viewer_email)
    vera.join(session_factory, alice.workspace)
    editor_email = f"ed-{uuid.uuid4().hex[:6]}@example.org"
    ed = Person(app, editor_email)
    alice("POST", f"/api/v1/workspaces/{alice.workspace}/members", json={"email": editor_email, "role": "editor"})
    yield {
        "app": app,
        "alice": alice,
        "bob": bob,
        "vera": vera,
        "ed": ed,
        "pid": pid,
        "vid": vid,
        "rid": rid,
        "did": did,
        "tid": tid,
        "wid": alice.workspace,
        "ed_id": ed("GET", "/api/v1/auth/me").json()["id"],
        "files": files,
    }
    for person in (alice, bob, vera, ed):
        person.client.__exit__(None, None, None)


VALUE = "00000000-0000-4000-8000-00000000beef"  # a value id: another tenant's and a made-up one answer alike


def _matrix(w) -> list[tuple[str, str, dict]]:
    pid, rid, wid, member, did = w["pid"], w["rid"], w["wid"], w["ed_id"], w["did"]
    doc = ("files", ("x.txt", b"Some 10 people marched in Lyon."))
    return [
        ("GET", f"/api/v1/projects/{pid}", {}),
        ("PATCH", f"/api/v1/projects/{pid}", {"json": {"name": "hijacked", "auto_process": True}}),
        ("GET", f"/api/v1/projects/{pid}/variables", {}),
        ("POST", f"/api/v1/projects/{pid}/variables", {"json": {"name": "intruder", "type": "text"}}),
        ("PATCH", f"/api/v1/projects/{pid}/variables/{w['vid']}", {"json": {"description": "hijacked"}}),
        ("DELETE", f"/api/v1/projects/{pid}/variables/{w['vid']}", {}),
        ("GET", f"/api/v1/projects/{pid}/documents", {}),
        ("GET", f"/api/v1/projects/{pid}/documents/{did}", {}),
        ("GET", f"/api/v1/projects/{pid}/documents/{did}/text", {}),
        ("GET", f"/api/v1/runs/{rid}/documents", {}),
        ("GET", f"/api/v1/projects/{pid}/prompt-versions", {}),
        ("GET", f"/api/v1/projects/{pid}/prompt-versions/1", {}),
        ("GET", f"/api/v1/projects/{pid}/prompt-versions/1/diff", {}),
        ("POST", f"/api/v1/projects/{pid}/prompt-versions/1/restore", {}),
        ("GET", f"/api/v1/runs/{rid}/values", {}),
        ("POST", f"/api/v1/projects/{pid}/documents", {"files": [doc]}),
        ("GET", f"/api/v1/projects/{pid}/runs", {}),
        ("POST", f"/api/v1/projects/{pid}/runs", {"json": {"kind": "full"}}),
        ("GET", f"/api/v1/runs/{rid}", {}),
        ("POST", f"/api/v1/projects/{pid}/runs/estimate", {"json": {"kind": "full"}}),
        ("POST", f"/api/v1/runs/{rid}/cancel", {}),
        ("PUT", f"/api/v1/values/{VALUE}/feedback", {"json": {"verdict": "correct"}}),
        ("GET", f"/api/v1/values/{VALUE}/feedback", {}),
        ("GET", f"/api/v1/runs/{rid}/feedback", {}),
        (
            "POST",
            f"/api/v1/runs/{rid}/entity-feedback",
            {"json": {"document_id": did, "kind": "missed", "entity_text": "x"}},
        ),
        ("GET", f"/api/v1/runs/{rid}/entity-feedback", {}),
        ("GET", f"/api/v1/runs/{rid}/review", {}),
        ("GET", f"/api/v1/runs/{rid}/agreement", {}),
        ("POST", f"/api/v1/runs/{rid}/review/done", {}),
        ("POST", f"/api/v1/runs/{rid}/review", {}),
        ("POST", f"/api/v1/runs/{rid}/review/reopen", {}),
        ("POST", f"/api/v1/runs/{rid}/retry", {}),
        ("POST", f"/api/v1/projects/{pid}/suggestions", {"json": {}}),
        ("POST", f"/api/v1/projects/{pid}/refinements", {"json": {}}),
        ("POST", f"/api/v1/projects/{pid}/refinements/estimate", {"json": {}}),
        ("GET", f"/api/v1/projects/{pid}/agent-tasks", {}),
        ("GET", f"/api/v1/agent-tasks/{w['tid']}", {}),
        ("POST", f"/api/v1/agent-tasks/{w['tid']}/accept", {"json": {}}),
        ("POST", f"/api/v1/agent-tasks/{w['tid']}/cancel", {}),
        ("GET", f"/api/v1/projects/{pid}/export", {}),
        ("GET", f"/api/v1/workspaces/{wid}/spending", {}),
        ("PUT", f"/api/v1/workspaces/{wid}/spending", {"json": {"monthly_budget_usd": 0}}),
        ("GET", f"/api/v1/workspaces/{wid}/members", {}),
        ("POST", f"/api/v1/workspaces/{wid}/members", {"json": {"email": "x@example.org", "role": "owner"}}),
        ("PATCH", f"/api/v1/workspaces/{wid}/members/{member}", {"json": {"role": "owner"}}),
        ("DELETE", f"/api/v1/workspaces/{wid}/members/{member}", {}),
        ("DELETE", f"/api/v1/projects/{pid}/documents/{did}", {}),
        ("DELETE", f"/api/v1/projects/{pid}", {}),
        ("DELETE", f"/api/v1/workspaces/{wid}", {}),
    ]


def _template(path: str, w) -> str:
    for value, name in (
        (w["vid"], "{variable_id}"),
        (w["pid"], "{project_id}"),
        (w["rid"], "{run_id}"),
        (w["did"], "{document_id}"),
        (w["tid"], "{task_id}"),
        (VALUE, "{value_id}"),
        ("/prompt-versions/1", "/prompt-versions/{version}"),
        (w["wid"], "{workspace_id}"),
        (w["ed_id"], "{user_id}"),
    ):
        path = path.replace(value, name)
    return path


def _snapshot(w) -> dict:
    alice, pid = w["alice"], w["pid"]
    return {
        "project": alice("GET", f"/api/v1/projects/{pid}").json(),
        "variables": alice("GET", f"/api/v1/projects/{pid}/variables").json(),
        "documents": alice("GET", f"/api/v1/projects/{pid}/documents").json(),
        "runs": alice("GET", f"/api/v1/projects/{pid}/runs").json(),
        "members": alice("GET", f"/api/v1/workspaces/{w['wid']}/members").json(),
    }


def test_every_route_is_in_the_matrix(world):
    covered = {(m, _template(p, world)) for m, p, _ in _matrix(world)}
    assert _routes(world["app"]) == covered | PUBLIC | SELF


def test_other_tenant_gets_404_and_changes_nothing(world):
    before = _snapshot(world)
    cases = _matrix(world)
    for method, path, kwargs in cases:
        response = world["bob"](method, path, **kwargs)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["code"].endswith("not_found"), (method, path)
    assert _snapshot(world) == before
    assert len(cases) == 49


def test_other_tenant_cannot_pick_the_workspace(world):
    response = world["bob"]("GET", "/api/v1/projects", headers={"X-Workspace-Id": world["wid"]})
    assert (response.status_code, response.json()["code"]) == (403, "not_a_member")


def test_lists_never_contain_foreign_ids(world):
    bob = world["bob"]
    bob("POST", "/api/v1/projects", json={"name": "B's project"})
    ids = {p["id"] for p in bob("GET", "/api/v1/projects").json()["items"]}
    assert world["pid"] not in ids and len(ids) == 1
    assert {w["id"] for w in bob("GET", "/api/v1/workspaces").json()} == {bob.workspace}
    alice_ids = {p["id"] for p in world["alice"]("GET", "/api/v1/projects").json()["items"]}
    assert alice_ids.isdisjoint(ids)


def test_websocket_of_another_tenant_is_closed_as_not_found(world):
    with (
        world["bob"].client.websocket_connect(
            f"ws://test/ws/jobs/{world['rid']}", subprotocols=["bearer", world["bob"].token]
        ) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_json()
    assert closed.value.code == 4404


def test_websocket_without_a_valid_token_is_closed(world):
    with (
        world["alice"].client.websocket_connect(
            f"ws://test/ws/jobs/{world['rid']}", subprotocols=["bearer", "forged"]
        ) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_json()
    assert closed.value.code == 4401


def test_viewer_reads_but_every_write_is_403(world):
    vera, before = world["vera"], _snapshot(world)
    assert vera("GET", f"/api/v1/projects/{world['pid']}").status_code == 200
    assert vera("GET", f"/api/v1/workspaces/{world['wid']}/members").status_code == 200
    writes = [(m, p, k) for m, p, k in _matrix(world) if m != "GET"] + [
        ("POST", "/api/v1/projects", {"json": {"name": "viewer's"}})
    ]
    for method, path, kwargs in writes:
        response = vera(method, path, **kwargs)
        assert (response.status_code, response.json()["code"]) == (403, "forbidden"), (method, path)
    assert _snapshot(world) == before


def test_editor_writes_but_does_not_manage_members(world):
    ed = world["ed"]
    headers = {"X-Workspace-Id": world["wid"]}
    ok = ed(
        "POST",
        f"/api/v1/projects/{world['pid']}/variables",
        headers=headers,
        json={"name": f"by_editor_{uuid.uuid4().hex[:4]}", "type": "text"},
    )
    assert ok.status_code == 201
    response = ed(
        "POST",
        f"/api/v1/workspaces/{world['wid']}/members",
        headers=headers,
        json={"email": "y@example.org", "role": "viewer"},
    )
    assert response.status_code == 403


def test_websocket_closes_when_the_token_is_revoked(world, session_factory):
    """A live stream re-checks its token: after a logout the next message is a 4401 close."""
    alice = world["alice"]
    with tenant_session(session_factory, uuid.UUID(alice.workspace)) as session:
        run = Run(
            tenant_id=uuid.UUID(alice.workspace),
            project_id=uuid.UUID(world["pid"]),
            kind=RunKind.full,
            status=RunStatus.running,
        )
        session.add(run)
        session.flush()
        rid = str(run.id)
    tokens = alice.client.post("/api/v1/auth/login", json={"email": _email(alice), "password": PASSWORD}).json()
    token = tokens["access_token"]
    with alice.client.websocket_connect(f"ws://test/ws/jobs/{rid}?interval=0.2", subprotocols=["bearer", token]) as ws:
        assert ws.receive_json()["status"] == "running"
        assert alice.client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}).status_code == 204
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4401


def _email(person: Person) -> str:
    return person("GET", "/api/v1/auth/me").json()["email"]
