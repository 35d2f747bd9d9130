"""Row-level security holds in SQL, whatever the application does: catalog, matrix, pooled connections.

Every tenant table is found in the catalog, so a new table without policies fails here."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import NullPool

from coderai_assets.engine.variables import VariableSpec, VariableType
from coderai_assets.storage.db import make_engine, make_session_factory, tenant_session
from coderai_assets.storage.models import (
    AgentTask,
    Document,
    DocumentChunk,
    EntityFeedback,
    Export,
    Extraction,
    Feedback,
    Invitation,
    LlmAnswer,
    MailMessage,
    Membership,
    Project,
    PromptVersion,
    Review,
    Role,
    Run,
    RunDocument,
    RunKind,
    RunWorkerBeat,
    Tenant,
    User,
    ValueStatus,
    Variable,
    WorkspaceSpend,
)

APP_ROLE = "coderai_app"
DEFINER_ALLOWLIST = {
    "coderai_user_workspaces",
    "coderai_accept_invitation",
    "coderai_unregistered_documents",
    "coderai_active_runs",
    "coderai_project_tenant",
    "coderai_open_agent_tasks",
    "coderai_pending_deletions",
}


@pytest.fixture(scope="module")
def owner_engine(database, settings):
    engine = create_engine(settings.migration_database_url)
    yield engine
    engine.dispose()


def tenant_tables(owner_engine) -> list[str]:
    with owner_engine.connect() as connection:
        return list(
            connection.scalars(
                text(
                    "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                    "join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped "
                    "where n.nspname = 'public' and c.relkind = 'r' order by 1"
                )
            )
        )


def test_catalog_every_tenant_table_is_forced_under_a_policy(owner_engine):
    tables = tenant_tables(owner_engine)
    assert len(tables) >= 13
    with owner_engine.connect() as connection:
        for table in [*tables, "tenants"]:
            enabled, forced = connection.execute(
                text(
                    "select relrowsecurity, relforcerowsecurity from pg_class where relname = :t "
                    "and relnamespace = 'public'::regnamespace"
                ),
                {"t": table},
            ).one()
            policies = connection.execute(
                text("select qual, with_check, permissive, cmd from pg_policies where tablename = :t"), {"t": table}
            ).all()
            assert enabled and forced, table
            assert policies, table
            for qual, with_check, permissive, cmd in policies:
                assert qual and with_check and cmd == "ALL" and permissive == "PERMISSIVE", (table, qual, with_check)
                assert "coderai_current_tenant()" in qual and "coderai_current_tenant()" in with_check


def test_catalog_app_role_cannot_bypass_and_owns_nothing(owner_engine):
    with owner_engine.connect() as connection:
        superuser, bypass, createrole, createdb = connection.execute(
            text("select rolsuper, rolbypassrls, rolcreaterole, rolcreatedb from pg_roles where rolname = :r"),
            {"r": APP_ROLE},
        ).one()
        assert not (superuser or bypass or createrole or createdb)
        owned = connection.scalar(
            text("select count(*) from pg_class where relowner = (select oid from pg_roles where rolname = :r)"),
            {"r": APP_ROLE},
        )
        owned += connection.scalar(
            text("select count(*) from pg_proc where proowner = (select oid from pg_roles where rolname = :r)"),
            {"r": APP_ROLE},
        )
        owned += connection.scalar(
            text("select count(*) from pg_namespace where nspowner = (select oid from pg_roles where rolname = :r)"),
            {"r": APP_ROLE},
        )
        assert owned == 0
        definers = set(
            connection.scalars(
                text("select proname from pg_proc where prosecdef and pronamespace = 'public'::regnamespace")
            )
        )
        assert definers == DEFINER_ALLOWLIST


def test_application_connects_as_the_app_role(session_factory):
    with tenant_session(session_factory, None) as session:
        assert session.scalar(text("select current_user")) == APP_ROLE


def _seed(session_factory, tenant_id: uuid.UUID) -> None:
    """One row in every tenant table, written as that tenant."""
    with tenant_session(session_factory, None) as session:
        user = User(email=f"{tenant_id.hex}@example.org", password_hash=None)
        session.add(user)
    with tenant_session(session_factory, tenant_id) as session:
        session.add(Tenant(id=tenant_id, name=f"t-{tenant_id.hex[:6]}"))
        session.flush()
        session.add(Membership(tenant_id=tenant_id, user_id=user.id, role=Role.owner))
        session.add(Invitation(tenant_id=tenant_id, email=f"x{tenant_id.hex}@example.org", role=Role.viewer))
        session.add(MailMessage(tenant_id=tenant_id, to_email=f"x{tenant_id.hex}@example.org", subject="s", body="b"))
        session.add(WorkspaceSpend(tenant_id=tenant_id, month=date(2026, 11, 1), spent_usd=1.0))
        project = Project(tenant_id=tenant_id, name="p", domain_description="d")
        session.add(project)
        session.flush()
        variable = Variable.of(
            VariableSpec(name="v", type=VariableType.text), tenant_id=tenant_id, project_id=project.id
        )
        document = Document(
            tenant_id=tenant_id,
            project_id=project.id,
            file_name="f.txt",
            size_bytes=1,
            sha256=uuid.uuid4().hex * 2,
            storage_path="x",
            text="hello",
        )
        version = PromptVersion(
            tenant_id=tenant_id,
            project_id=project.id,
            version=1,
            system_prompt="s",
            user_template="u",
            json_schema={},
            variables_hash="h",
        )
        session.add_all([variable, document, version])
        session.flush()
        session.add(
            DocumentChunk(tenant_id=tenant_id, document_id=document.id, index=0, char_start=0, char_end=5, text="hello")
        )
        run = Run(tenant_id=tenant_id, project_id=project.id, kind=RunKind.full, prompt_version_id=version.id)
        session.add(run)
        session.flush()
        session.add(RunDocument(run_id=run.id, document_id=document.id, tenant_id=tenant_id))
        session.add(
            LlmAnswer(
                tenant_id=tenant_id,
                run_id=run.id,
                document_id=document.id,
                chunk_index=0,
                prompt_version_id=version.id,
                model="m",
                payload={},
            )
        )
        extraction = Extraction(
            tenant_id=tenant_id,
            run_id=run.id,
            document_id=document.id,
            variable_id=variable.id,
            variable_name=variable.name,
            status=ValueStatus.ok,
            value="x",
            prompt_version_id=version.id,
        )
        session.add(extraction)
        session.flush()
        session.add(Feedback(tenant_id=tenant_id, extraction_id=extraction.id, verdict="correct"))
        session.add(
            EntityFeedback(tenant_id=tenant_id, run_id=run.id, document_id=document.id, kind="missed", entity_text="x")
        )
        session.add(Review(tenant_id=tenant_id, run_id=run.id, user_id=user.id))
        session.add(AgentTask(tenant_id=tenant_id, project_id=project.id, kind="refine", status="queued", request={}))
        session.add(RunWorkerBeat(dagster_run_id=f"d-{tenant_id.hex[:8]}", run_id=run.id, tenant_id=tenant_id))
        session.add(
            Export(tenant_id=tenant_id, project_id=project.id, run_id=run.id, csv_path="c", xlsx_path="x", row_count=1)
        )


@pytest.fixture(scope="module")
def two_tenants(session_factory):
    a, b = uuid.uuid4(), uuid.uuid4()
    _seed(session_factory, a)
    _seed(session_factory, b)
    return a, b


def _run(session_factory, tenant: uuid.UUID | None, sql: str, params: dict | None = None):
    """Execute as the app role inside one transaction with `tenant` set, then roll back."""
    session = session_factory()
    session.info["tenant_id"] = tenant
    try:
        result = session.execute(text(sql), params or {})
        return result.all() if result.returns_rows else result.rowcount
    finally:
        session.rollback()
        session.close()


def _owner_count(owner_engine, table: str, tenant: uuid.UUID) -> int:
    with owner_engine.connect() as connection:
        return connection.scalar(text(f"select count(*) from {table} where tenant_id = :t"), {"t": tenant})


def _one_row(owner_engine, table: str, tenant: uuid.UUID) -> dict:
    with owner_engine.connect() as connection:
        row = connection.execute(text(f"select * from {table} where tenant_id = :t limit 1"), {"t": tenant})
        return dict(row.mappings().one())


def _written_columns(owner_engine, table: str) -> list[str]:
    with owner_engine.connect() as connection:
        return list(
            connection.scalars(
                text(
                    "select column_name from information_schema.columns where table_name = :t "
                    "and is_generated = 'NEVER' order by ordinal_position"
                ),
                {"t": table},
            )
        )


CONTEXTS = ["own", "other", "none"]
OPERATIONS = ["select", "insert", "update", "update_tenant_id", "delete"]


def _matrix_cases():
    return [(op, ctx) for op in OPERATIONS for ctx in CONTEXTS]


@pytest.mark.parametrize(("operation", "context"), _matrix_cases())
def test_sql_matrix(session_factory, owner_engine, two_tenants, operation, context):
    """For every tenant table: rows of tenant A are never read or written from B or from no tenant,
    and A itself cannot move them to B or write rows for B."""
    a, b = two_tenants
    actor = {"own": a, "other": b, "none": None}[context]
    tables = tenant_tables(owner_engine)
    for table in tables:
        before = _owner_count(owner_engine, table, a)
        assert before >= 1, f"seed has no row for {table}: add one to _seed"
        if operation == "select":
            rows = _run(session_factory, actor, f"select tenant_id from {table}")
            seen = {r.tenant_id for r in rows}
            assert a not in seen or context == "own", table
            assert seen <= ({a} if context == "own" else {b} if context == "other" else set()), table
        elif operation == "insert":
            row = _one_row(owner_engine, table, a if context != "own" else b)
            # A writes a row for B; B, or nobody, writes a row for A: always refused by WITH CHECK.
            row["tenant_id"] = b if context == "own" else a
            if "id" in row and isinstance(row["id"], uuid.UUID):
                row["id"] = uuid.uuid4()
            # The row travels as JSON and is rebuilt with the table's own types; generated columns are left out.
            payload = json.dumps(row, default=str)
            columns = ", ".join(_written_columns(owner_engine, table))
            with pytest.raises(DBAPIError, match="row-level security"):
                _run(
                    session_factory,
                    actor,
                    f"insert into {table} ({columns}) "
                    f"select {columns} from jsonb_populate_record(null::{table}, cast(:row as jsonb))",
                    {"row": payload},
                )
        elif operation == "update":
            # Touch A's rows: only A can; B and nobody change nothing.
            changed = _run(
                session_factory, actor, f"update {table} set tenant_id = tenant_id where tenant_id = :a", {"a": a}
            )
            assert changed == (before if context == "own" else 0), table
        elif operation == "update_tenant_id":
            if context == "own":
                with pytest.raises(DBAPIError, match="row-level security"):
                    _run(
                        session_factory,
                        actor,
                        f"update {table} set tenant_id = :b where tenant_id = :a",
                        {"a": a, "b": b},
                    )
            else:
                changed = _run(
                    session_factory,
                    actor,
                    f"update {table} set tenant_id = :me where tenant_id = :a",
                    {"a": a, "me": actor or b},
                )
                assert changed == 0, table
        elif operation == "delete":
            try:
                deleted = _run(session_factory, actor, f"delete from {table} where tenant_id = :a", {"a": a})
            except IntegrityError:
                # A may not delete a row its other rows still reference: not a question of isolation.
                assert context == "own", table
                deleted = before
            assert deleted == (before if context == "own" else 0), table
        assert _owner_count(owner_engine, table, a) == before, table  # rolled back or untouched


def test_tenants_table_itself(session_factory, two_tenants):
    a, b = two_tenants
    assert {r.id for r in _run(session_factory, a, "select id from tenants")} == {a}
    assert _run(session_factory, None, "select id from tenants") == []
    assert _run(session_factory, b, "update tenants set name = 'x' where id = :a", {"a": a}) == 0


def test_pooled_connection_forgets_the_tenant(settings, two_tenants):
    """A request without a tenant after a request with one, on the same pooled connection, sees nothing."""
    a, _ = two_tenants
    engine = make_engine(settings.database_url, pool_size=1, max_overflow=0)
    factory = make_session_factory(engine)
    try:
        with tenant_session(factory, a) as session:
            pid = session.scalar(text("select pg_backend_pid()"))
            assert session.scalar(text("select count(*) from projects")) >= 1
        with tenant_session(factory, None) as session:
            assert session.scalar(text("select pg_backend_pid()")) == pid
            assert session.scalar(text("select count(*) from projects")) == 0
            assert session.scalar(text("select current_setting('app.current_tenant', true)")) == ""
        # Even a session-level setting made by someone on that connection does not survive our next transaction.
        with engine.connect() as connection:
            connection.execute(text("select set_config('app.current_tenant', :t, false)"), {"t": str(a)})
            connection.commit()
        with tenant_session(factory, None) as session:
            assert session.scalar(text("select count(*) from projects")) == 0
    finally:
        engine.dispose()


def test_foreign_keys_cannot_point_across_tenants(session_factory, owner_engine, two_tenants):
    """Composite keys: A cannot attach a row to B's project even knowing its id (no existence leak)."""
    a, b = two_tenants
    with owner_engine.connect() as connection:
        b_project = connection.scalar(text("select id from projects where tenant_id = :b"), {"b": b})
    with pytest.raises(DBAPIError, match="foreign key|violates"):
        _run(
            session_factory,
            a,
            "insert into variables (id, tenant_id, project_id, definition, position, created_at) "
            """values (:id, :a, :p, '{"name": "x", "type": "text"}', 0, :now)""",
            {"id": uuid.uuid4(), "a": a, "p": b_project, "now": datetime.now(UTC)},
        )


DEFINER_ROLE = "coderai_definer"


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
