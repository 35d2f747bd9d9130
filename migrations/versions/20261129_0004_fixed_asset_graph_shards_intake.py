"""fixed asset graph: project shards, upload intake, auto-processing, runs launched by a sensor

Revision ID: 0004
Revises: 0003

Projects are pinned to a shard of the fixed asset graph and may code new uploads by themselves; documents record
when the intake sensor registered them as Dagster partitions; runs keep the Dagster status the lifecycle sensor
last saw, so the API never asks Dagster. Three narrow cross-tenant functions serve the sensors
(docs/decisions.md: tenancy); the per-project function that the old code location used is dropped.
Create Date: 2026-11-29 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "coderai_app"
# pg_temp last: a temporary object of the caller's session can never stand in for one of ours.
SEARCH_PATH = "SET search_path = pg_catalog, public, pg_temp"
FUNCTIONS = {
    "coderai_unregistered_documents(integer)": f"""
        CREATE FUNCTION coderai_unregistered_documents(p_limit integer)
        RETURNS TABLE (id uuid, tenant_id uuid, project_id uuid, shard integer)
        LANGUAGE sql STABLE SECURITY DEFINER {SEARCH_PATH} AS
        $$ SELECT d.id, d.tenant_id, d.project_id, p.shard
           FROM public.documents d JOIN public.projects p ON p.id = d.project_id AND p.tenant_id = d.tenant_id
           WHERE d.registered_at IS NULL
           ORDER BY d.project_id, d.created_at, d.id
           LIMIT p_limit $$""",
    "coderai_active_runs()": f"""
        CREATE FUNCTION coderai_active_runs()
        RETURNS TABLE (id uuid, tenant_id uuid, project_id uuid, status text)
        LANGUAGE sql STABLE SECURITY DEFINER {SEARCH_PATH} AS
        $$ SELECT r.id, r.tenant_id, r.project_id, r.status::text FROM public.runs r
           WHERE r.status IN ('queued', 'running', 'exporting') ORDER BY r.created_at $$""",
    "coderai_project_tenant(uuid)": f"""
        CREATE FUNCTION coderai_project_tenant(p_project uuid) RETURNS uuid
        LANGUAGE sql STABLE SECURITY DEFINER {SEARCH_PATH} AS
        $$ SELECT p.tenant_id FROM public.projects p WHERE p.id = p_project $$""",
}


def upgrade() -> None:
    op.add_column("projects", sa.Column("shard", sa.Integer(), server_default="0", nullable=False))
    op.add_column("projects", sa.Column("auto_process", sa.Boolean(), server_default="false", nullable=False))
    op.add_column("documents", sa.Column("registered_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_documents_unregistered",
        "documents",
        ["project_id", "created_at"],
        postgresql_where=sa.text("registered_at IS NULL"),
    )
    op.add_column(
        "runs",
        sa.Column("dagster_status", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
    )
    op.create_index(
        "ix_runs_active",
        "runs",
        ["created_at"],
        postgresql_where=sa.text("status IN ('queued', 'running', 'exporting')"),
    )
    # PostgreSQL 12+ allows this inside the migration's transaction; the value is not used in it.
    op.execute("ALTER TYPE run_kind ADD VALUE IF NOT EXISTS 'auto'")
    op.execute("DROP FUNCTION IF EXISTS coderai_list_projects()")
    for signature, body in FUNCTIONS.items():
        op.execute(body)
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP_ROLE}")


def downgrade() -> None:
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    op.execute("""
        CREATE FUNCTION coderai_list_projects() RETURNS TABLE (id uuid, tenant_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS
        $$ SELECT id, tenant_id FROM projects ORDER BY created_at $$""")
    op.execute("REVOKE ALL ON FUNCTION coderai_list_projects() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION coderai_list_projects() TO {APP_ROLE}")
    # An enum value cannot be dropped: runs of kind 'auto' become full runs and the type is rebuilt.
    op.execute("UPDATE runs SET kind = 'full' WHERE kind = 'auto'")
    op.execute("ALTER TYPE run_kind RENAME TO run_kind_old")
    op.execute("CREATE TYPE run_kind AS ENUM ('sample', 'full')")
    op.execute("ALTER TABLE runs ALTER COLUMN kind TYPE run_kind USING kind::text::run_kind")
    op.execute("DROP TYPE run_kind_old")
    op.drop_index("ix_runs_active", table_name="runs")
    op.drop_column("runs", "dagster_status")
    op.drop_index("ix_documents_unregistered", table_name="documents")
    op.drop_column("documents", "registered_at")
    op.drop_column("projects", "auto_process")
    op.drop_column("projects", "shard")
