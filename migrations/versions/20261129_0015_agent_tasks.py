"""agent tasks: the refiner's and the co-pilot's LLM work, recorded by the API and done by a Dagster run (the
request never waits on a model), with what it asked, what it found, its tokens and cost, and whether a user
applied it

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "coderai_app"
DEFINER_ROLE = "coderai_definer"
SEARCH_PATH = "SET search_path = pg_catalog, public, pg_temp"
SIGNATURE = "coderai_open_agent_tasks()"
# Across workspaces, for the agent sensor: tasks to launch and tasks under way (whose Dagster run may have died).
OPEN_TASKS = f"""
    CREATE FUNCTION {SIGNATURE}
    RETURNS TABLE (id uuid, tenant_id uuid, project_id uuid, kind text, status text)
    LANGUAGE sql STABLE SECURITY DEFINER {SEARCH_PATH} AS
    $$ SELECT t.id, t.tenant_id, t.project_id, t.kind::text, t.status::text FROM public.agent_tasks t
       WHERE t.status IN ('queued', 'running') ORDER BY t.created_at $$"""


def upgrade() -> None:
    op.create_table(
        "agent_tasks",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("request", JSONB(), nullable=False),
        sa.Column("result", JSONB(), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.Column("dagster_run_id", sa.String(64), nullable=True),
        sa.Column("llm_calls", sa.Integer(), server_default="0", nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cost_usd", sa.Float(), server_default="0", nullable=False),
        sa.Column("applied", JSONB(), nullable=True),
        sa.Column("applied_by", sa.UUID(), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id", "project_id"], ["projects.tenant_id", "projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["applied_by"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_agent_tasks_project", "agent_tasks", ["project_id", "created_at"])
    op.create_index(
        "ix_agent_tasks_open",
        "agent_tasks",
        ["created_at"],
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.execute("ALTER TABLE agent_tasks ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE agent_tasks FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON agent_tasks USING (tenant_id = coderai_current_tenant()) "
        "WITH CHECK (tenant_id = coderai_current_tenant())"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON agent_tasks TO {APP_ROLE}")
    op.execute(f"GRANT SELECT ON agent_tasks TO {DEFINER_ROLE}")
    op.execute(OPEN_TASKS)
    op.execute(f"ALTER FUNCTION {SIGNATURE} OWNER TO {DEFINER_ROLE}")
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
    op.drop_table("agent_tasks")
