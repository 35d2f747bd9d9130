"""spending caps: a run's cap and what it has spent, a workspace's monthly cap, and what each workspace spent each
month (counted as each answer is committed)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "coderai_app"


def upgrade() -> None:
    op.add_column("runs", sa.Column("max_cost_usd", sa.Float()))
    op.add_column("runs", sa.Column("spent_usd", sa.Float(), server_default="0", nullable=False))
    op.add_column("tenants", sa.Column("monthly_budget_usd", sa.Float()))
    op.create_table(
        "workspace_spend",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("spent_usd", sa.Float(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "month"),
    )
    op.execute("ALTER TABLE workspace_spend ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE workspace_spend FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON workspace_spend USING (tenant_id = coderai_current_tenant()) "
        "WITH CHECK (tenant_id = coderai_current_tenant())"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON workspace_spend TO {APP_ROLE}")


def downgrade() -> None:
    op.drop_table("workspace_spend")
    op.drop_column("tenants", "monthly_budget_usd")
    op.drop_column("runs", "spent_usd")
    op.drop_column("runs", "max_cost_usd")
