"""runs that resume and show their progress: the calls each answer cost, each document's stage in its run, the
prices a run is costed at, cancelled runs, retry attempts, and at most one active full run per project

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

SEARCH_PATH = "SET search_path = pg_catalog, public, pg_temp"
# The runs the sensors move along: queued and under way, and cancelled ones whose Dagster runs (as last recorded)
# have not all ended yet, which the lifecycle sensor terminates. Replaced, so the owner (coderai_definer) stays.
ACTIVE_RUNS = f"""
    CREATE OR REPLACE FUNCTION coderai_active_runs()
    RETURNS TABLE (id uuid, tenant_id uuid, project_id uuid, status text)
    LANGUAGE sql STABLE SECURITY DEFINER {SEARCH_PATH} AS
    $$ SELECT r.id, r.tenant_id, r.project_id, r.status::text FROM public.runs r
       WHERE r.status IN ('queued', 'running', 'exporting')
          OR (r.status::text = 'canceled' AND EXISTS (
              SELECT 1 FROM jsonb_each_text(r.dagster_status) s
              WHERE s.value NOT IN ('SUCCESS', 'FAILURE', 'CANCELED')))
       ORDER BY r.created_at $$"""
PREVIOUS_ACTIVE_RUNS = f"""
    CREATE OR REPLACE FUNCTION coderai_active_runs()
    RETURNS TABLE (id uuid, tenant_id uuid, project_id uuid, status text)
    LANGUAGE sql STABLE SECURITY DEFINER {SEARCH_PATH} AS
    $$ SELECT r.id, r.tenant_id, r.project_id, r.status::text FROM public.runs r
       WHERE r.status IN ('queued', 'running', 'exporting') ORDER BY r.created_at $$"""

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("llm_answers", sa.Column("calls", sa.Integer(), server_default="1", nullable=False))
    op.execute("UPDATE llm_answers SET calls = 0 WHERE cached")
    op.add_column("run_documents", sa.Column("stage", sa.String(20)))
    op.add_column("runs", sa.Column("attempt", sa.Integer(), server_default="0", nullable=False))
    op.add_column("runs", sa.Column("input_price_per_mtok", sa.Float()))
    op.add_column("runs", sa.Column("output_price_per_mtok", sa.Float()))
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE run_status ADD VALUE IF NOT EXISTS 'canceled'")
    op.execute(ACTIVE_RUNS)
    # Two full runs of one project at once would code every document twice: refused by the database, so two
    # requests racing cannot both pass.
    op.create_index(
        "uq_runs_one_active_full",
        "runs",
        ["project_id"],
        unique=True,
        postgresql_where=sa.text("kind = 'full' AND status IN ('queued', 'running', 'exporting')"),
    )


def downgrade() -> None:
    op.execute(PREVIOUS_ACTIVE_RUNS)
    op.drop_index("uq_runs_one_active_full", table_name="runs")
    op.drop_column("runs", "output_price_per_mtok")
    op.drop_column("runs", "input_price_per_mtok")
    op.drop_column("runs", "attempt")
    op.drop_column("run_documents", "stage")
    op.drop_column("llm_answers", "calls")
