"""deletion: a workspace, project or document asked to be deleted is marked `deleted_at` (hidden at once) and the
deletions sensor removes it; the cross-tenant functions leave out what is being deleted. Lists page on keys:
indexes on their order

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "coderai_app"
DEFINER_ROLE = "coderai_definer"
SEARCH_PATH = "SET search_path = pg_catalog, public, pg_temp"
PENDING = "coderai_pending_deletions()"
INDEXES = {
    "ix_projects_tenant_created": ("projects", ["tenant_id", "created_at", "id"]),
    # The tenant first, as row-level security asks for it: with stale statistics (a bulk upload a moment ago) the
    # planner otherwise took uq_documents_project_sha256 and sorted the whole project for a page of 50.
    "ix_documents_project_created": ("documents", ["tenant_id", "project_id", "created_at", "id"]),
    "ix_runs_project_created": ("runs", ["tenant_id", "project_id", "created_at", "id"]),
}
REPLACED = {
    "ix_projects_tenant_id": ("projects", ["tenant_id"]),
    "ix_documents_project_id": ("documents", ["project_id"]),
    "ix_runs_project_id": ("runs", ["project_id"]),
}


def _unregistered(deleted: str) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION coderai_unregistered_documents(p_limit integer)
        RETURNS TABLE (id uuid, tenant_id uuid, project_id uuid, shard integer)
        LANGUAGE sql STABLE SECURITY DEFINER {SEARCH_PATH} AS
        $$ SELECT d.id, d.tenant_id, d.project_id, p.shard
           FROM public.documents d JOIN public.projects p ON p.id = d.project_id AND p.tenant_id = d.tenant_id
           WHERE d.registered_at IS NULL {deleted}
           ORDER BY d.project_id, d.created_at, d.id
           LIMIT p_limit $$"""


def _workspaces(deleted: str) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION coderai_user_workspaces(p_user uuid) RETURNS TABLE (tenant_id uuid,
            role public.role, name text)
        LANGUAGE sql STABLE SECURITY DEFINER {SEARCH_PATH} AS
        $$ SELECT m.tenant_id, m.role, t.name::text FROM public.memberships m
           JOIN public.tenants t ON t.id = m.tenant_id
           WHERE m.user_id = p_user {deleted} ORDER BY m.created_at $$"""


def upgrade() -> None:
    for table in ("tenants", "projects", "documents"):
        op.add_column(table, sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns)
    # Each is in a list's order index now; the planner chose the single column and sorted a whole project's
    # 10,000 documents for a page of 50 (7 ms).
    for name, (table, _) in REPLACED.items():
        op.drop_index(name, table_name=table)
    op.execute(_unregistered("AND d.deleted_at IS NULL AND p.deleted_at IS NULL"))
    op.execute(_workspaces("AND t.deleted_at IS NULL"))
    # A document of a project being deleted goes with its project, a project of a workspace with the workspace.
    op.execute(f"""
        CREATE FUNCTION {PENDING} RETURNS TABLE (kind text, id uuid, tenant_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER {SEARCH_PATH} AS
        $$ SELECT kind, id, tenant_id FROM (
               SELECT 'workspace' AS kind, t.id, t.id AS tenant_id, t.deleted_at FROM public.tenants t
               WHERE t.deleted_at IS NOT NULL
               UNION ALL
               SELECT 'project', p.id, p.tenant_id, p.deleted_at FROM public.projects p
               JOIN public.tenants t ON t.id = p.tenant_id
               WHERE p.deleted_at IS NOT NULL AND t.deleted_at IS NULL
               UNION ALL
               SELECT 'document', d.id, d.tenant_id, d.deleted_at FROM public.documents d
               JOIN public.projects p ON p.id = d.project_id AND p.tenant_id = d.tenant_id
               JOIN public.tenants t ON t.id = d.tenant_id
               WHERE d.deleted_at IS NOT NULL AND p.deleted_at IS NULL AND t.deleted_at IS NULL
           ) pending ORDER BY deleted_at $$""")
    op.execute(f"ALTER FUNCTION {PENDING} OWNER TO {DEFINER_ROLE}")
    op.execute(f"REVOKE ALL ON FUNCTION {PENDING} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {PENDING} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {PENDING}")
    op.execute(_workspaces(""))
    op.execute(_unregistered(""))
    for name, (table, columns) in REPLACED.items():
        op.create_index(name, table, columns)
    for name, (table, _) in INDEXES.items():
        op.drop_index(name, table_name=table)
    for table in ("documents", "projects", "tenants"):
        op.drop_column(table, "deleted_at")
