"""the reliability gate: a project's alpha threshold (and per-variable ones), and a full run's override of it with
the reason, which the export's about sheet carries

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("projects", sa.Column("reliability_threshold", sa.Float(), server_default="0.8", nullable=False))
    op.add_column("projects", sa.Column("reliability_thresholds", postgresql.JSONB()))
    op.add_column("runs", sa.Column("reliability_override", postgresql.JSONB()))


def downgrade() -> None:
    op.drop_column("runs", "reliability_override")
    op.drop_column("projects", "reliability_thresholds")
    op.drop_column("projects", "reliability_threshold")
