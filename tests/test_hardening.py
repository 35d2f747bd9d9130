"""Defects a security and reliability review found, each test reproducing the attack or failure as it was found
and passing only with its fix; each is named after the behaviour it protects."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from coderai_api.main import create_app
from coderai_assets.storage.db import make_engine, make_session_factory, tenant_session
from coderai_assets.storage.models import MailMessage
from tests.test_api import login_as

APP_ROLE, DEFINER_ROLE = "coderai_app", "coderai_definer"


@pytest.fixture(scope="module")
def owner_engine(database, settings):
    engine = create_engine(settings.migration_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def app(database, settings):
    return create_app(settings)


def _client(app) -> TestClient:
    return TestClient(app, base_url="http://test/api/v1")


def _mailed_token(session_factory, tenant_id: str, to: str) -> str:
    with tenant_session(session_factory, uuid.UUID(tenant_id)) as session:
        bodies = session.scalars(
            select(MailMessage.body).where(MailMessage.to_email == to).order_by(MailMessage.created_at.desc())
        ).all()
    (token,) = re.findall(r"token=([\w-]+)", bodies[0])
    return token


def test_invitation_takeover_registering_the_address_does_not_join(app, session_factory):
    """An owner invites an address without an account. A stranger registers that address first: before the fix
    they joined as owner; now only the single-use token mailed to the address joins, once."""
    stranger_email = f"invitee-{uuid.uuid4().hex[:8]}@example.org"
    with _client(app) as owner, _client(app) as stranger, _client(app) as invitee:
        login_as(owner, f"owner-{uuid.uuid4().hex[:8]}@example.org")
        workspace = owner.get("/workspaces").json()[0]["id"]
        invited = owner.post(f"/workspaces/{workspace}/members", json={"email": stranger_email, "role": "owner"})
        assert invited.status_code == 201 and invited.json()["status"] == "invited"

        login_as(stranger, stranger_email)
        assert workspace not in {w["id"] for w in stranger.get("/workspaces").json()}
        guessed = stranger.post("/auth/invitations/accept", json={"token": "x" * 43})
        assert (guessed.status_code, guessed.json()["code"]) == (404, "invitation_not_found")

        token = _mailed_token(session_factory, workspace, stranger_email)
        login_as(invitee, f"real-{uuid.uuid4().hex[:8]}@example.org")  # whoever holds the mail
        accepted = invitee.post("/auth/invitations/accept", json={"token": token})
        assert accepted.status_code == 200 and accepted.json() == {
            "id": workspace,
            "name": accepted.json()["name"],
            "role": "owner",
        }
        again = stranger.post("/auth/invitations/accept", json={"token": token})
        assert (again.status_code, again.json()["code"]) == (404, "invitation_not_found")
        assert workspace not in {w["id"] for w in stranger.get("/workspaces").json()}


def test_inviting_again_replaces_the_link(app, session_factory):
    email = f"twice-{uuid.uuid4().hex[:8]}@example.org"
    with _client(app) as owner, _client(app) as invitee:
        login_as(owner, f"owner-{uuid.uuid4().hex[:8]}@example.org")
        workspace = owner.get("/workspaces").json()[0]["id"]
        owner.post(f"/workspaces/{workspace}/members", json={"email": email, "role": "viewer"})
        first = _mailed_token(session_factory, workspace, email)
        owner.post(f"/workspaces/{workspace}/members", json={"email": email, "role": "editor"})
        second = _mailed_token(session_factory, workspace, email)
        login_as(invitee, f"holder-{uuid.uuid4().hex[:8]}@example.org")
        assert invitee.post("/auth/invitations/accept", json={"token": first}).status_code == 404
        assert invitee.post("/auth/invitations/accept", json={"token": second}).json()["role"] == "editor"


def test_security_definer_functions_cannot_be_hijacked(owner_engine, settings, session_factory, tenant):
    """The reproduction: as the app role, a temporary `invitations` table with a trigger, then the function that
    accepts invitations. Before the fix it found the temporary table first and ran the trigger as the superuser.
    Now the app role cannot create temporary tables, and even when an operator grants it that, the functions
    use only qualified names and search pg_temp last, as a role that is no superuser."""
    with owner_engine.connect() as connection:
        definers = connection.execute(
            text(
                "select p.proname, r.rolname, r.rolsuper, p.proconfig from pg_proc p "
                "join pg_roles r on r.oid = p.proowner where p.prosecdef and p.pronamespace = 'public'::regnamespace"
            )
        ).all()
        app_role = connection.execute(
            text(
                "select rolsuper, rolbypassrls, rolcreatedb, rolcreaterole, rolinherit, rolreplication "
                "from pg_roles where rolname = :r"
            ),
            {"r": APP_ROLE},
        ).one()
    assert definers and all(owner == DEFINER_ROLE and not superuser for _, owner, superuser, _ in definers)
    assert all("search_path=pg_catalog, public, pg_temp" in (config or []) for *_, config in definers)
    assert tuple(app_role) == (False, False, False, False, False, False)

    with pytest.raises(DBAPIError, match="permission denied"), tenant_session(session_factory, None) as session:
        session.execute(text("create temporary table invitations (x int)"))

    database = settings.database_url.rsplit("/", 1)[1]
    with owner_engine.connect() as connection:
        connection.execute(text(f'grant temporary on database "{database}" to {APP_ROLE}'))
        connection.commit()
    # A connection of its own, closed at the end: temporary objects live as long as their connection.
    engine = make_engine(settings.database_url, poolclass=NullPool)
    try:
        with tenant_session(make_session_factory(engine), None) as session:
            session.execute(
                text(
                    "create temporary table invitations (token_hash text, accepted_at timestamptz, "
                    "expires_at timestamptz, tenant_id uuid, role text); "
                    "create temporary table hijacked (n int); "
                    "create function pg_temp.mark() returns trigger language plpgsql as "
                    "$$ begin insert into pg_temp.hijacked values (1); return new; end $$; "
                    "create trigger t before update on pg_temp.invitations for each row "
                    "execute function pg_temp.mark(); "
                    "insert into pg_temp.invitations values ('h', null, now() + interval '1 day', :t, 'owner')"
                ),
                {"t": tenant},
            )
            joined = session.execute(
                text("select * from coderai_accept_invitation(:u, 'h')"), {"u": uuid.uuid4()}
            ).all()
            assert joined == []  # the function read the real table, where no invitation has this token
            assert session.scalar(text("select count(*) from pg_temp.hijacked")) == 0
    finally:
        engine.dispose()
        with owner_engine.connect() as connection:
            connection.execute(text(f'revoke temporary on database "{database}" from {APP_ROLE}'))
            connection.commit()


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
        assert client.get(f"/projects/{project}/documents").json() == []
        # Within the limits an upload works.
        assert client.post(f"/projects/{project}/documents", files=files[:2]).status_code == 201


def test_the_parse_child_is_a_boundary(monkeypatch, tmp_path):
    """The child inherits no secret, replies in JSON that is read only up to a cap, and refuses text over the cap
    (a 100 MiB TXT became about 10 GB of grounding index in the run worker). As root, it runs as nobody in a
    network namespace of its own."""
    import os

    from coderai_assets.ingest import codes, sandbox
    from coderai_assets.ingest.sandbox import ParseLimits, ParseWorker
    from coderai_assets.ingest.worker import code_readable_by_others

    monkeypatch.setenv("CODERAI_SECRET_KEY", "parent-secret-0123456789")
    monkeypatch.setenv("CODERAI_LLM_API_KEY", "sk-parent")
    limits = ParseLimits(timeout_seconds=60, cpu_seconds=60, memory_bytes=1024**3, max_text_chars=10_000)
    with ParseWorker(limits) as worker:
        isolation = worker.start()
        environment = Path(f"/proc/{worker.pid}/environ").read_bytes().split(b"\0")
        assert not [v for v in environment if v.startswith(b"CODERAI_") or b"secret" in v.lower()]
        if os.geteuid() == 0:
            # A network of its own always; `nobody` when the Python it imports from is readable by any user.
            assert os.readlink(f"/proc/{worker.pid}/ns/net") != os.readlink("/proc/self/ns/net")
            uid = "65534" if code_readable_by_others() else "0"
            assert isolation == ["network namespace"] + (["user nobody"] if uid != "0" else [])
            assert f"\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n" in Path(f"/proc/{worker.pid}/status").read_text()
        ok = worker.parse(b"A short report about a strike in Porto.")
        assert ok.ok and ok.parsed.text == "A short report about a strike in Porto."
        too_long = worker.parse(b"word " * 5_000)
        assert (too_long.ok, too_long.error_code) == (False, codes.TOO_LARGE)
        # A reply over what the text cap allows is not read, and the child is not used again.
        monkeypatch.setattr(sandbox, "reply_limit", lambda chars: 10)
        refused = worker.parse(b"A short report about a strike in Porto.")
        assert (refused.ok, refused.error_code) == (False, codes.TOO_LARGE)
    # Stored files are the owner's alone, so a child running as another user cannot read them.
    from coderai_assets.storage.files import LocalFileStorage

    storage = LocalFileStorage(tmp_path)
    storage.write("t/p/documents/d/original", b"x")
    assert oct(os.stat(storage.path("t/p/documents/d/original")).st_mode & 0o777) == "0o600"


def test_one_bad_document_fails_alone(session_factory, tenant, settings, demo_files, monkeypatch):
    """An integer answer of 10**400 raised OverflowError in coercion, and any unexpected exception escaped the
    per-document loop and failed the run. Now the answer is an invalid value, and a defect met by one document
    fails that document with `internal_error` while the others are coded and the run exports."""
    from dagster import DagsterInstance

    from coderai_assets.defs.resources import LLMResource
    from coderai_assets.engine.llm import Extractor
    from coderai_assets.ingest import codes
    from coderai_assets.pipeline import coding
    from coderai_assets.storage.models import Document, Extraction, Project, Run, RunKind, RunStatus
    from coderai_assets.storage.runs import create_run
    from tests.fakes import PROTEST_ANSWERS, ToolCallingFakeModel
    from tests.test_assets import _materialise, _project, _register

    answers = {k: dict(v) for k, v in PROTEST_ANSWERS.items()}
    answers["LYON, 12 March 2024"]["participants"] = 10**400

    class HugeNumbers(LLMResource):
        def extractor(self, max_output_tokens=None):
            return Extractor(ToolCallingFakeModel(messages=iter([]), answers=answers), "fake/huge")

    real_validate = coding.validate_document

    def validate(session, run, document, *args, **kwargs):
        if document.file_name.startswith("porto"):
            raise RuntimeError("a defect only this document meets")
        return real_validate(session, run, document, *args, **kwargs)

    monkeypatch.setattr(coding, "validate_document", validate)
    project_id, doc_ids = _project(session_factory, tenant, settings, demo_files)
    with DagsterInstance.ephemeral() as instance:
        keys = _register(instance, project_id, doc_ids)
        with tenant_session(session_factory, tenant) as session:
            run_id = create_run(session, session.get(Project, project_id), RunKind.full, with_quotes=True)[0].id
        tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
        result = _materialise(project_id, tenant, settings, instance, run_id, None, "documents", HugeNumbers(), tags)
    assert result.success
    with tenant_session(session_factory, tenant) as session:
        run = session.get(Run, run_id)
        documents = {d.file_name: d for d in session.scalars(select(Document).where(Document.id.in_(doc_ids)))}
        porto = next(d for name, d in documents.items() if name.startswith("porto"))
        assert (porto.status.value, porto.error_code) == ("failed", codes.INTERNAL_ERROR)
        assert (run.status, run.documents_failed, run.documents_done) == (
            RunStatus.succeeded,
            1,
            len(doc_ids) - 1,
        )
        lyon = next(d for name, d in documents.items() if name.startswith("lyon"))
        value = session.scalars(
            select(Extraction).where(
                Extraction.run_id == run_id,
                Extraction.document_id == lyon.id,
                Extraction.variable_name == "participants",
            )
        ).one()
        assert (value.status.value, value.value) == ("invalid", None)


def test_a_projects_runs_never_overlap_and_documents_finishing_together_count_once(
    settings, session_factory, tenant, demo_files
):
    """Two active runs of a project failed on `uq_chunks_document_index` (chunks are per document), and the last
    documents of a sample finishing together left it `running`. The intake sensor now launches one run of a
    project at a time, and counters are recomputed under the run row's lock."""
    from dagster import DagsterInstance

    from coderai_assets.storage.models import Project, Run, RunKind, RunStatus
    from coderai_assets.storage.runs import create_run
    from tests.test_assets import _project
    from tests.test_sensors import _code, _for, _tick

    settings = settings.model_copy(update={"document_concurrency": 6})
    project_id, doc_ids = _project(session_factory, tenant, settings, demo_files * 3)  # 12 documents
    with DagsterInstance.ephemeral() as instance:
        _tick(settings, instance)
        with tenant_session(session_factory, tenant) as session:
            first = create_run(session, session.get(Project, project_id), RunKind.full, with_quotes=True)[0].id
        with tenant_session(session_factory, tenant) as session:
            # A sample: a project has one full run at a time (the database refuses a second), not one run.
            second = create_run(session, session.get(Project, project_id), RunKind.sample, 12, with_quotes=True)[0].id
        requests = _tick(settings, instance).run_requests
        assert len(_for(requests, first)) == 1 and _for(requests, second) == []
        # Six documents at a time finish in any order; every one is counted, and the run ends.
        assert _code(settings, instance, _for(requests, first)[0]).success
        with tenant_session(session_factory, tenant) as session:
            run = session.get(Run, first)
            assert (run.status, run.documents_done, run.documents_failed) == (RunStatus.succeeded, len(doc_ids), 0)
        (request,) = _for(_tick(settings, instance).run_requests, second)
        assert _code(settings, instance, request).success
        with tenant_session(session_factory, tenant) as session:
            assert session.get(Run, second).status == RunStatus.succeeded


def test_parallel_wrong_passwords_are_counted_and_cannot_lock_the_owner_out(app, settings):
    """20 wrong passwords at once were all checked against a limit of 5 (counted before any was recorded), and
    the owner's right password then got 429. Now each attempt counts the others, and failures from another client
    never block the owner's own."""
    from concurrent.futures import ThreadPoolExecutor

    from coderai_api.auth.service import client_key

    email = f"victim-{uuid.uuid4().hex[:8]}@example.org"
    with TestClient(app, base_url="http://test/api/v1", client=("203.0.113.7", 1)) as attacker:
        attacker.post("/auth/register", json={"email": email, "password": "correct horse battery"})

        def wrong(_):
            return attacker.post("/auth/login", json={"email": email, "password": "wrong password"}).status_code

        with ThreadPoolExecutor(20) as pool:
            statuses = list(pool.map(wrong, range(20)))
    # Before the fix: 20 x 401. (One more may pass if the burst outlasts the first, one-second delay.)
    assert settings.login_max_failures_per_account <= statuses.count(401) <= settings.login_max_failures_per_account + 1
    assert statuses.count(401) + statuses.count(429) == 20
    with TestClient(app, base_url="http://test/api/v1", client=("198.51.100.9", 1)) as owner:
        assert owner.post("/auth/login", json={"email": email, "password": "correct horse battery"}).status_code == 200
    # IPv6 clients are one client per /64; IPv4-mapped addresses are their IPv4 address.
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_key("::ffff:203.0.113.7") == "203.0.113.7"


def test_forwarded_addresses_are_believed_only_from_configured_proxies(settings, tmp_path):
    from coderai_assets.platform import Platform

    def api_command(trusted: str) -> list[str]:
        platform = Platform(settings.model_copy(update={"trusted_proxies": trusted}), tmp_path)
        return next(s for s in platform.plan(with_api=True) if s.name == "api").argv

    untrusted = api_command("")
    assert untrusted[untrusted.index("--forwarded-allow-ips") + 1] == "none"
    trusted = api_command("10.0.0.2,10.1.0.0/16")
    assert trusted[trusted.index("--forwarded-allow-ips") + 1] == "10.0.0.2,10.1.0.0/16"


def test_two_refreshes_at_once_get_the_same_successor_pair(app):
    """Two tabs (or a retry after a lost response) refreshing with the same token: one got 401 and the session
    ended. Within the grace window both get the same successor pair, and the session lives on."""
    from concurrent.futures import ThreadPoolExecutor

    with _client(app) as client:
        tokens = login_as(client, f"tabs-{uuid.uuid4().hex[:8]}@example.org")

        def refresh(_):
            return client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(refresh, range(4)))
        assert [a.status_code for a in answers] == [200] * 4
        pairs = {(a.json()["access_token"], a.json()["refresh_token"]) for a in answers}
        assert len(pairs) == 1
        access, successor = pairs.pop()
        headers = {"Authorization": f"Bearer {access}"}
        assert client.get("/projects", headers=headers).status_code == 200
        # The successor rotates on, once.
        assert client.post("/auth/refresh", json={"refresh_token": successor}).status_code == 200


def test_a_catastrophic_pattern_on_model_output_is_an_invalid_value_in_bounded_time():
    """`(a+)+$` on 24 characters took 0.63 s with `re`, four times longer per two more characters; a model
    writes such values at will. Patterns run with a timeout, on values of bounded length."""
    import time

    from coderai_assets.engine.coercion import coerce_value
    from coderai_assets.engine.patterns import MAX_VALUE_CHARS, TIMEOUT_SECONDS
    from coderai_assets.engine.variables import VariableSpec

    def coded(pattern: str, raw: str):
        spec = VariableSpec(name="code", type="text", validation={"pattern": pattern})
        start = time.perf_counter()
        result = coerce_value(spec, raw)
        return result, time.perf_counter() - start

    for pattern, raw in [(r"(a+)+$", "a" * 40 + "b"), (r"(a|aa)+$", "a" * 40 + "b"), (r"(x+x+)+y", "x" * 1000)]:
        result, seconds = coded(pattern, raw)
        assert result.status == "invalid" and seconds < 20 * TIMEOUT_SECONDS, (pattern, result, seconds)
    too_long, _ = coded(r"[a-z]+", "a" * (MAX_VALUE_CHARS + 1))
    assert too_long.status == "invalid" and "too long" in too_long.message
    ok, _ = coded(r"[A-Z]{2}", "FR")
    assert ok.status == "ok" and ok.value == "FR"


def test_compose_publishes_no_operator_ui_and_gives_each_service_least_privilege(settings):
    """The Dagster UI was published on 0.0.0.0:3000 with no login, and every service got the superuser's URL."""
    import yaml
    from sqlalchemy.engine import make_url

    from coderai_assets.settings import Settings

    compose = yaml.safe_load((Path(__file__).resolve().parent.parent / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["dagster-webserver"]["ports"] == ["127.0.0.1:3000:3000"]
    published = {name: s.get("ports", []) for name, s in services.items() if s.get("ports")}
    assert set(published) == {"dagster-webserver", "api", "prometheus"}
    assert services["prometheus"]["ports"] == ["127.0.0.1:9090:9090"]  # operators only, as the Dagster UI
    users = {}
    for name, service in services.items():
        environment = service.get("environment", {})
        users[name] = {
            key: make_url(value.replace("${", "").replace("}", "")).username
            for key, value in environment.items()
            if key.endswith("DATABASE_URL")
        }
    assert users["migrate"]["CODERAI_MIGRATION_DATABASE_URL"] == "postgres"  # creates roles: the only superuser
    for name, urls in users.items():
        if name != "migrate":
            assert set(urls.values()) <= {"coderai_app", "coderai_dagster"}, (name, urls)
    assert set(users["api"]) == {"CODERAI_DATABASE_URL"}
    api = services["api"]["environment"]
    assert "CODERAI_LLM_API_KEY" not in api and "CODERAI_SECRET_KEY" in api
    assert not any("SECRET" in key for key in services["dagster-daemon"]["environment"])
    # Only the process that signs tokens needs the secret: the others start without it in production.
    production = Settings(env="production", secret_key=settings.model_fields["secret_key"].default)
    with pytest.raises(ValueError, match="CODERAI_SECRET_KEY"):
        create_app(production)


def test_migrate_creates_dagsters_storage_owned_by_a_role_of_its_own(settings, owner_engine):
    from sqlalchemy.engine import make_url

    from coderai_assets.database_setup import drop_database, ensure_database

    role, database = f"dagster_{uuid.uuid4().hex[:6]}", f"coderai_dg_{uuid.uuid4().hex[:6]}"
    url = (
        make_url(settings.migration_database_url)
        .set(username=role, password="pw-0123", database=database)
        .render_as_string(hide_password=False)
    )
    try:
        assert ensure_database(url, admin_url=settings.migration_database_url)
        with owner_engine.connect() as connection:
            owner, superuser, createdb, createrole = connection.execute(
                text(
                    "select r.rolname, r.rolsuper, r.rolcreatedb, r.rolcreaterole from pg_database d "
                    "join pg_roles r on r.oid = d.datdba where d.datname = :d"
                ),
                {"d": database},
            ).one()
        assert (owner, superuser, createdb, createrole) == (role, False, False, False)
    finally:
        drop_database(make_url(url).set(username=None, password=None).render_as_string(hide_password=False))
        with owner_engine.connect() as connection:
            connection.execute(text(f'drop role if exists "{role}"'))
            connection.commit()


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

        project = client.get("/projects").json()[0]["id"]
        files = [("files", (f"r{i}.txt", f"report {i}".encode())) for i in range(4)]
        assert client.post(f"/projects/{project}/documents", files=files).status_code == 409
        assert client.get(f"/projects/{project}/documents").json() == []
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


def test_orphans_are_never_made_or_are_swept(app, settings, session_factory):
    """Partitions registered before an upload's commit outlived a failed commit; files of failed uploads stayed;
    login attempts, sessions and refresh tokens grew forever. Now partitions come from committed rows only (the
    intake sensor), a failed upload removes its files, and an hourly job sweeps the rest."""
    import os
    import time
    from datetime import timedelta

    from dagster import DagsterInstance

    from coderai_assets.definitions import build_definitions
    from coderai_assets.pipeline.housekeeping import ORPHAN_AGE_SECONDS, sweep
    from coderai_assets.storage.files import LocalFileStorage
    from coderai_assets.storage.models import AuthSession, LoginAttempt, RefreshToken, User, utcnow
    from tests.test_sensors import _tick

    storage = LocalFileStorage(settings.storage_dir)
    with _client(app) as client:
        tokens = login_as(client, f"orphans-{uuid.uuid4().hex[:8]}@example.org")
        workspace = tokens["workspace_id"]
        project = client.post("/projects", json={"name": "Orphans"}).json()["id"]
        good, empty = ("files", ("good.txt", b"A report.")), ("files", ("empty.txt", b""))
        failed = client.post(f"/projects/{project}/documents", files=[good, empty])
        assert (failed.status_code, failed.json()["code"]) == (422, "empty_file")
        folder = storage.path(f"{workspace}/{project}/documents")
        assert not folder.exists() or not any(folder.rglob("original"))
    with DagsterInstance.ephemeral() as instance:
        _tick(settings, instance)
        assert not [k for k in instance.get_dynamic_partitions("documents") if k.startswith(uuid.UUID(project).hex)]

    # What a failed commit would leave: a stored file with no row. Swept once it is an hour old, not before.
    fresh, stale = (f"{workspace}/{project}/documents/{uuid.uuid4()}/original" for _ in range(2))
    for key in (fresh, stale):
        storage.write(key, b"orphan")
    old = time.time() - ORPHAN_AGE_SECONDS - 60
    os.utime(storage.path(stale).parent, (old, old))
    with tenant_session(session_factory, None) as session:
        user = User(email=f"old-{uuid.uuid4().hex[:8]}@example.org", password_hash=None)
        session.add(user)
        session.flush()
        long_ago = utcnow() - timedelta(days=30)
        ended = AuthSession(user_id=user.id, revoked_at=long_ago, created_at=long_ago)
        live = AuthSession(user_id=user.id)
        session.add_all([ended, live])
        session.flush()
        session.add(LoginAttempt(key=f"old:{user.id}", attempted_at=long_ago))
        session.add(
            RefreshToken(
                jti_hash=uuid.uuid4().hex,
                session_id=ended.id,
                user_id=user.id,
                workspace_id=uuid.UUID(workspace),
                expires_at=long_ago,
            )
        )
        ended_id, live_id, user_id = ended.id, live.id, user.id
    swept = sweep(session_factory, settings, settings.storage_dir)
    assert swept.files >= 1 and swept.login_attempts >= 1 and swept.refresh_tokens >= 1 and swept.sessions >= 1
    assert not storage.path(stale).exists() and storage.path(fresh).exists()
    with tenant_session(session_factory, None) as session:
        assert session.get(AuthSession, ended_id) is None and session.get(AuthSession, live_id) is not None
        assert not session.scalars(select(LoginAttempt).where(LoginAttempt.key == f"old:{user_id}")).all()
    from coderai_assets.defs.resources import default_resources

    definitions = build_definitions(settings, default_resources(settings))
    (hourly,) = [s for s in definitions.schedules if s.name == "housekeeping_hourly"]
    assert hourly.default_status.value == "RUNNING"  # Dagster's schedules are stopped unless told otherwise
    assert definitions.get_job_def("housekeeping").execute_in_process().success


def test_registration_tells_nobody_who_is_a_user_and_never_fails_on_a_race(app, session_factory):
    from concurrent.futures import ThreadPoolExecutor

    from coderai_assets.storage.models import User

    email = f"taken-{uuid.uuid4().hex[:8]}@example.org"
    with _client(app) as client:
        first = client.post("/auth/register", json={"email": email, "password": "correct horse battery"})
        again = client.post("/auth/register", json={"email": email, "password": "another password!"})
        assert (first.status_code, first.json()) == (again.status_code, again.json()) == (202, first.json())
        racing = f"race-{uuid.uuid4().hex[:8]}@example.org"

        def register(_):
            return client.post("/auth/register", json={"email": racing, "password": "correct horse battery"})

        with ThreadPoolExecutor(5) as pool:
            assert {r.status_code for r in pool.map(register, range(5))} == {202}  # before: one 500
        # The first password stands: the second registration changed nothing.
        assert client.post("/auth/login", json={"email": email, "password": "another password!"}).status_code == 401
    with tenant_session(session_factory, None) as session:
        assert len(session.scalars(select(User).where(User.email == racing)).all()) == 1


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


def test_secrets_are_not_printed_and_old_password_hashes_are_renewed(app, settings, session_factory):
    from argon2 import PasswordHasher

    from coderai_api.auth.passwords import needs_rehash
    from coderai_assets.storage.models import User

    shown = repr(settings) + str(settings.model_dump(mode="json"))
    assert settings.secret_key.get_secret_value() not in shown
    email = f"old-hash-{uuid.uuid4().hex[:8]}@example.org"
    with _client(app) as client:
        client.post("/auth/register", json={"email": email, "password": "correct horse battery"})
        with tenant_session(session_factory, None) as session:
            user = session.scalars(select(User).where(User.email == email)).one()
            user.password_hash = PasswordHasher(time_cost=1, memory_cost=8 * 1024).hash("correct horse battery")
            assert needs_rehash(user.password_hash)
        assert client.post("/auth/login", json={"email": email, "password": "correct horse battery"}).status_code == 200
    with tenant_session(session_factory, None) as session:
        renewed = session.scalars(select(User.password_hash).where(User.email == email)).one()
    assert not needs_rehash(renewed) and renewed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


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
