"""invitations accepted only with a single-use token mailed to the address (a mail outbox); the cross-tenant
SECURITY DEFINER functions owned by a dedicated non-superuser role, with a safe search_path and qualified names;
no temporary objects for the app role; the app role's attributes enforced

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 07:00:00

Before: registering an invited address joined its workspace with the invited role, and nothing verified the
address, so whoever registered it first took the invitation (an owner invite became a stranger's ownership). And
the functions, owned by the superuser that ran the migrations, searched the caller's temporary schema first: a
temporary `invitations` table with a trigger, created by the app role, ran the trigger as the superuser.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "coderai_app"
# Owns the cross-tenant functions: it bypasses row-level security (they exist to cross tenants) but is no
# superuser, cannot log in, and holds only the privileges the functions' bodies use.
DEFINER_ROLE = "coderai_definer"
APP_ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION"
DEFINER_ROLE_ATTRIBUTES = "NOLOGIN NOSUPERUSER BYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION"
DEFINER_GRANTS = {
    "SELECT": ("documents", "projects", "runs", "memberships", "tenants", "invitations"),
    "INSERT": ("memberships",),
    "UPDATE": ("invitations",),
}
# pg_temp last, and every name qualified: no object of the caller's session can stand in for one of ours.
SEARCH_PATH = "SET search_path = pg_catalog, public, pg_temp"
ACCEPT = "coderai_accept_invitation(uuid, text)"
KEPT = (
    "coderai_unregistered_documents(integer)",
    "coderai_active_runs()",
    "coderai_project_tenant(uuid)",
)
WORKSPACES = f"""
    CREATE OR REPLACE FUNCTION coderai_user_workspaces(p_user uuid) RETURNS TABLE (tenant_id uuid, role public.role,
        name text)
    LANGUAGE sql STABLE SECURITY DEFINER {SEARCH_PATH} AS
    $$ SELECT m.tenant_id, m.role, t.name::text FROM public.memberships m JOIN public.tenants t ON t.id = m.tenant_id
       WHERE m.user_id = p_user ORDER BY m.created_at $$"""


def _ensure_role(name: str, attributes: str) -> None:
    op.execute(f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN
                CREATE ROLE {name} {attributes};
            END IF;
        END $$""")
    # Enforced even when the role existed: an operator may have created it with more.
    op.execute(f"ALTER ROLE {name} {attributes.replace('NOLOGIN ', '')}")


def upgrade() -> None:
    op.add_column("invitations", sa.Column("token_hash", sa.String(length=64), nullable=True))
    op.add_column("invitations", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_unique_constraint("uq_invitations_token_hash", "invitations", ["token_hash"])
    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("to_email", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_mail_outbox_unsent", "mail_outbox", ["tenant_id"], postgresql_where=sa.text("sent_at IS NULL"))
    op.execute("ALTER TABLE mail_outbox ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE mail_outbox FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON mail_outbox USING (tenant_id = coderai_current_tenant()) "
        "WITH CHECK (tenant_id = coderai_current_tenant())"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON mail_outbox TO {APP_ROLE}")

    _ensure_role(APP_ROLE, APP_ROLE_ATTRIBUTES)
    _ensure_role(DEFINER_ROLE, DEFINER_ROLE_ATTRIBUTES)
    op.execute(f"GRANT USAGE ON SCHEMA public TO {DEFINER_ROLE}")
    for privilege, tables in DEFINER_GRANTS.items():
        op.execute(f"GRANT {privilege} ON {', '.join(tables)} TO {DEFINER_ROLE}")
    # Temporary tables are how a caller shadows a name; the app role has no use for them.
    op.execute(f"""
        DO $$ BEGIN
            EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC, {APP_ROLE}', current_database());
        END $$""")

    op.execute("DROP FUNCTION IF EXISTS coderai_accept_invitations(uuid, text)")
    op.execute(WORKSPACES)
    op.execute(f"""
        CREATE FUNCTION coderai_accept_invitation(p_user uuid, p_token_hash text)
        RETURNS TABLE (workspace_id uuid, member_role text, workspace_name text)
        LANGUAGE plpgsql SECURITY DEFINER {SEARCH_PATH} AS
        $$ DECLARE
            v_tenant uuid;
            v_role public.role;
        BEGIN
            -- Single use: the row is claimed by the update, so two acceptances at once cannot both succeed.
            UPDATE public.invitations i SET accepted_at = now()
                WHERE i.token_hash = p_token_hash AND i.accepted_at IS NULL AND i.expires_at > now()
                RETURNING i.tenant_id, i.role INTO v_tenant, v_role;
            IF v_tenant IS NULL THEN
                RETURN;
            END IF;
            INSERT INTO public.memberships (tenant_id, user_id, role, created_at)
                VALUES (v_tenant, p_user, v_role, now()) ON CONFLICT DO NOTHING;
            RETURN QUERY SELECT t.id, v_role::text, t.name::text FROM public.tenants t WHERE t.id = v_tenant;
        END $$""")
    for signature in ("coderai_user_workspaces(uuid)", ACCEPT, *KEPT):
        op.execute(f"ALTER FUNCTION {signature} {SEARCH_PATH}")
        op.execute(f"ALTER FUNCTION {signature} OWNER TO {DEFINER_ROLE}")
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {ACCEPT}")
    for signature in ("coderai_user_workspaces(uuid)", *KEPT):
        op.execute(f"ALTER FUNCTION {signature} OWNER TO CURRENT_USER")
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
    op.execute("REVOKE ALL ON FUNCTION coderai_accept_invitations(uuid, text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION coderai_accept_invitations(uuid, text) TO {APP_ROLE}")
    op.execute("""
        DO $$ BEGIN
            EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO PUBLIC', current_database());
        END $$""")
    for privilege, tables in DEFINER_GRANTS.items():
        op.execute(f"REVOKE {privilege} ON {', '.join(tables)} FROM {DEFINER_ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {DEFINER_ROLE}")
    # The role is cluster-wide: other databases of the cluster may still use it, and then it stays.
    op.execute(f"""
        DO $$ BEGIN
            DROP ROLE {DEFINER_ROLE};
        EXCEPTION WHEN dependent_objects_still_exist THEN
            RAISE NOTICE 'role {DEFINER_ROLE} is still used by another database; kept';
        END $$""")
    op.execute("DROP TABLE mail_outbox")
    op.drop_constraint("uq_invitations_token_hash", "invitations", type_="unique")
    op.drop_column("invitations", "expires_at")
    op.drop_column("invitations", "token_hash")
