"""accounts, composite keys, row-level security

Revision ID: 0002
Revises: 0001

Row-level security on every tenant-owned table, the application role, foreign keys that include tenant_id,
and the tables of accounts and tokens.
Create Date: 2026-11-22 02:29:02.669846
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Frozen with this revision: tables created later add their own policies in their own migration
# (tests/test_tenancy.py fails for any tenant table without them).
TENANT_TABLES = (
    "projects",
    "variables",
    "documents",
    "document_chunks",
    "prompt_versions",
    "runs",
    "run_documents",
    "extractions",
    "feedback",
    "exports",
    "llm_answers",
    "memberships",
    "invitations",
)
APP_TABLES = TENANT_TABLES + ("tenants", "users", "auth_sessions", "refresh_tokens", "login_attempts")
APP_ROLE = "coderai_app"


def enable_row_level_security() -> None:
    """The app role (owns nothing, cannot bypass RLS) and one policy per tenant-owned table
    (docs/decisions.md: tenancy)."""
    op.execute(f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
            END IF;
        END $$""")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(APP_TABLES)} TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON SEQUENCE login_attempts_id_seq TO {APP_ROLE}")
    # After a transaction-local setting ends, current_setting returns '' rather than NULL, hence NULLIF.
    op.execute("""
        CREATE FUNCTION coderai_current_tenant() RETURNS uuid LANGUAGE sql STABLE AS
        $$ SELECT NULLIF(current_setting('app.current_tenant', true), '')::uuid $$""")
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} USING (tenant_id = coderai_current_tenant()) "
            f"WITH CHECK (tenant_id = coderai_current_tenant())"
        )
    op.execute("ALTER TABLE tenants ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE tenants FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON tenants USING (id = coderai_current_tenant()) "
        "WITH CHECK (id = coderai_current_tenant())"
    )
    # Narrow, explicit paths across tenants, owned by the migration's role. Each returns only what its caller
    # needs; the allowlist in tests/test_tenancy.py names them.
    op.execute("""
        CREATE FUNCTION coderai_list_projects() RETURNS TABLE (id uuid, tenant_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS
        $$ SELECT id, tenant_id FROM projects ORDER BY created_at $$""")
    op.execute("""
        CREATE FUNCTION coderai_user_workspaces(p_user uuid) RETURNS TABLE (tenant_id uuid, role role, name text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS
        $$ SELECT m.tenant_id, m.role, t.name::text FROM memberships m JOIN tenants t ON t.id = m.tenant_id
           WHERE m.user_id = p_user ORDER BY m.created_at $$""")
    op.execute("""
        CREATE FUNCTION coderai_accept_invitations(p_user uuid, p_email text) RETURNS integer
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS
        $$ DECLARE accepted integer;
        BEGIN
            INSERT INTO memberships (tenant_id, user_id, role, created_at)
                SELECT tenant_id, p_user, role, now() FROM invitations
                WHERE lower(email) = lower(p_email) AND accepted_at IS NULL
                ON CONFLICT DO NOTHING;
            UPDATE invitations SET accepted_at = now() WHERE lower(email) = lower(p_email) AND accepted_at IS NULL;
            GET DIAGNOSTICS accepted = ROW_COUNT;
            RETURN accepted;
        END $$""")
    for function in (
        "coderai_list_projects()",
        "coderai_user_workspaces(uuid)",
        "coderai_accept_invitations(uuid, text)",
    ):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {APP_ROLE}")


def disable_row_level_security() -> None:
    for function in (
        "coderai_list_projects()",
        "coderai_user_workspaces(uuid)",
        "coderai_accept_invitations(uuid, text)",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
    for table in (*TENANT_TABLES, "tenants"):
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute("DROP FUNCTION IF EXISTS coderai_current_tenant()")
    op.execute(f"REVOKE ALL ON {', '.join(APP_TABLES)} FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON SEQUENCE login_attempts_id_seq FROM {APP_ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {APP_ROLE}")
    # The role is cluster-wide: other databases of the cluster may still use it, and then it stays.
    op.execute(f"""
        DO $$ BEGIN
            DROP ROLE {APP_ROLE};
        EXCEPTION WHEN dependent_objects_still_exist THEN
            RAISE NOTICE 'role {APP_ROLE} is still used by another database; kept';
        END $$""")


revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _schema_upgrade()
    enable_row_level_security()


def _schema_upgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_attempts_key_at", "login_attempts", ["key", "attempted_at"], unique=False)
    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=50), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_auth_sessions_user_id"), "auth_sessions", ["user_id"], unique=False)
    op.create_table(
        "invitations",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", postgresql.ENUM("owner", "editor", "viewer", name="role", create_type=False), nullable=False),
        sa.Column("invited_by", sa.UUID(), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["invited_by"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "email", name="uq_invitations_tenant_email"),
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("jti_hash", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["auth_sessions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["workspace_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("jti_hash"),
    )
    op.create_index(op.f("ix_refresh_tokens_session_id"), "refresh_tokens", ["session_id"], unique=False)
    op.create_unique_constraint("uq_variables_tenant_id", "variables", ["tenant_id", "id"])
    op.drop_constraint(op.f("exports_run_id_fkey"), "exports", type_="foreignkey")
    op.create_foreign_key(
        "fk_exports_run", "exports", "runs", ["tenant_id", "run_id"], ["tenant_id", "id"], ondelete="CASCADE"
    )
    op.drop_constraint(op.f("extractions_prompt_version_id_fkey"), "extractions", type_="foreignkey")
    op.drop_constraint(op.f("extractions_variable_id_fkey"), "extractions", type_="foreignkey")
    op.create_foreign_key(
        "fk_extractions_variable",
        "extractions",
        "variables",
        ["tenant_id", "variable_id"],
        ["tenant_id", "id"],
        ondelete="CASCADE",
    )
    op.create_foreign_key(
        "fk_extractions_prompt_version",
        "extractions",
        "prompt_versions",
        ["tenant_id", "prompt_version_id"],
        ["tenant_id", "id"],
    )
    op.drop_constraint(op.f("llm_answers_prompt_version_id_fkey"), "llm_answers", type_="foreignkey")
    op.create_foreign_key(
        "fk_llm_answers_prompt_version",
        "llm_answers",
        "prompt_versions",
        ["tenant_id", "prompt_version_id"],
        ["tenant_id", "id"],
    )
    op.drop_constraint(op.f("runs_prompt_version_id_fkey"), "runs", type_="foreignkey")
    op.create_foreign_key(
        "fk_runs_prompt_version", "runs", "prompt_versions", ["tenant_id", "prompt_version_id"], ["tenant_id", "id"]
    )


def downgrade() -> None:
    disable_row_level_security()
    op.drop_constraint("fk_runs_prompt_version", "runs", type_="foreignkey")
    op.create_foreign_key(op.f("runs_prompt_version_id_fkey"), "runs", "prompt_versions", ["prompt_version_id"], ["id"])
    op.drop_constraint("fk_llm_answers_prompt_version", "llm_answers", type_="foreignkey")
    op.create_foreign_key(
        op.f("llm_answers_prompt_version_id_fkey"), "llm_answers", "prompt_versions", ["prompt_version_id"], ["id"]
    )
    op.drop_constraint("fk_extractions_variable", "extractions", type_="foreignkey")
    op.drop_constraint("fk_extractions_prompt_version", "extractions", type_="foreignkey")
    op.create_foreign_key(
        op.f("extractions_variable_id_fkey"), "extractions", "variables", ["variable_id"], ["id"], ondelete="CASCADE"
    )
    op.create_foreign_key(
        op.f("extractions_prompt_version_id_fkey"), "extractions", "prompt_versions", ["prompt_version_id"], ["id"]
    )
    op.drop_constraint("fk_exports_run", "exports", type_="foreignkey")
    op.create_foreign_key(op.f("exports_run_id_fkey"), "exports", "runs", ["run_id"], ["id"], ondelete="SET NULL")
    op.drop_constraint("uq_variables_tenant_id", "variables", type_="unique")
    op.drop_index(op.f("ix_refresh_tokens_session_id"), table_name="refresh_tokens")
    op.drop_table("refresh_tokens")
    op.drop_table("invitations")
    op.drop_index(op.f("ix_auth_sessions_user_id"), table_name="auth_sessions")
    op.drop_table("auth_sessions")
    op.drop_index("ix_login_attempts_key_at", table_name="login_attempts")
    op.drop_table("login_attempts")
