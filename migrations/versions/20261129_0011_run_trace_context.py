"""the trace context of the request that started a run, so that its Dagster runs continue the trace

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("trace_context", postgresql.JSONB()))


def downgrade() -> None:
    op.drop_column("runs", "trace_context")
