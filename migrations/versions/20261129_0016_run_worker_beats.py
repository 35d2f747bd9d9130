"""run workers' heartbeats: each Dagster run coding a run's documents writes one every few seconds, so that the
lifecycle sensor fails a Dagster run whose worker is gone even when its code server never noticed (Dagster then
re-executes it)

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "coderai_app"


def upgrade() -> None:
    op.create_table(
        "run_worker_beats",
        sa.Column("dagster_run_id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id", "run_id"], ["runs.tenant_id", "runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("dagster_run_id", "run_id"),
    )
    op.create_index("ix_run_worker_beats_run", "run_worker_beats", ["run_id"])
    op.execute("ALTER TABLE run_worker_beats ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE run_worker_beats FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON run_worker_beats USING (tenant_id = coderai_current_tenant()) "
        "WITH CHECK (tenant_id = coderai_current_tenant())"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON run_worker_beats TO {APP_ROLE}")


def downgrade() -> None:
    op.drop_table("run_worker_beats")
