"""Helpers of the tests that go through the API: accounts, members, mailed tokens."""

from __future__ import annotations

import re
import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select

from coderai_assets.storage.db import tenant_session
from coderai_assets.storage.models import MailMessage


def login_as(client: TestClient, email: str, password: str = "correct horse battery") -> dict:
    client.post("/auth/register", json={"email": email, "password": password})
    tokens = client.post("/auth/login", json={"email": email, "password": password}).json()
    client.headers["Authorization"] = f"Bearer {tokens['access_token']}"
    return tokens


def _member(app, owner: TestClient, role: str) -> TestClient:
    """Another account, made a member of the owner's workspace with `role`, acting in it."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.org"
    other = TestClient(app, base_url="http://test/api/v1")
    other.__enter__()
    login_as(other, email)
    workspace = owner.get("/auth/me").json()["workspaces"][0]["id"]
    assert owner.post(f"/workspaces/{workspace}/members", json={"email": email, "role": role}).status_code == 201
    other.headers["X-Workspace-Id"] = workspace
    return other


def _mailed_token(session_factory, tenant_id: str, to: str) -> str:
    with tenant_session(session_factory, uuid.UUID(tenant_id)) as session:
        bodies = session.scalars(
            select(MailMessage.body).where(MailMessage.to_email == to).order_by(MailMessage.created_at.desc())
        ).all()
    (token,) = re.findall(r"token=([\w-]+)", bodies[0])
    return token


def _client(app) -> TestClient:
    return TestClient(app, base_url="http://test/api/v1")


def _raw_request(client: TestClient, method: str, path: str, headers: dict[str, str], chunks: list[bytes]):
    """Calls the ASGI app directly with a body of `chunks`: (status, body, chunks the app read)."""
    read = 0

    async def call():
        nonlocal read
        sent: list[dict] = []

        async def receive():
            nonlocal read
            if read < len(chunks):
                read += 1
                return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 1),
            "server": ("test", 80),
            "app": client.app,
            "state": {},
        }
        await client.app(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        return start["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")

    status, body = client.portal.call(call)
    return status, body, read
