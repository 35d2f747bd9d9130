"""the lifecycle sensor follows every ended run whose Dagster runs, as last recorded, have not all ended (not only
cancelled ones), so that a run's recorded Dagster status reaches its final value and a retry can go on

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 11:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH_PATH = "SET search_path = pg_catalog, public, pg_temp"
# Replaced, so the owner (coderai_definer) and the grants stay.
ACTIVE_RUNS = f"""
    CREATE OR REPLACE FUNCTION coderai_active_runs()
    RETURNS TABLE (id uuid, tenant_id uuid, project_id uuid, status text)
    LANGUAGE sql STABLE SECURITY DEFINER {SEARCH_PATH} AS
    $$ SELECT r.id, r.tenant_id, r.project_id, r.status::text FROM public.runs r
       WHERE r.status IN ('queued', 'running', 'exporting')
          OR EXISTS (
              SELECT 1 FROM jsonb_each_text(r.dagster_status) s
              WHERE s.value NOT IN ('SUCCESS', 'FAILURE', 'CANCELED'))
       ORDER BY r.created_at $$"""
PREVIOUS_ACTIVE_RUNS = f"""
    CREATE OR REPLACE FUNCTION coderai_active_runs()
    RETURNS TABLE (id uuid, tenant_id uuid, project_id uuid, status text)
    LANGUAGE sql STABLE SECURITY DEFINER {SEARCH_PATH} AS
    $$ SELECT r.id, r.tenant_id, r.project_id, r.status::text FROM public.runs r
       WHERE r.status IN ('queued', 'running', 'exporting')
          OR (r.status::text = 'canceled' AND EXISTS (
              SELECT 1 FROM jsonb_each_text(r.dagster_status) s
              WHERE s.value NOT IN ('SUCCESS', 'FAILURE', 'CANCELED')))
       ORDER BY r.created_at $$"""


def upgrade() -> None:
    op.execute(ACTIVE_RUNS)


def downgrade() -> None:
    op.execute(PREVIOUS_ACTIVE_RUNS)
