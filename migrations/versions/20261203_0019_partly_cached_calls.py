"""calls that asked only a chunk's changed variables (earlier answers giving the rest) are counted per document and
run, so a sample after a refinement shows how much the cache spared it

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("llm_answers", sa.Column("reused_variables", sa.Integer(), server_default="0", nullable=False))
    for table in ("run_documents", "runs"):
        op.add_column(table, sa.Column("partly_cached_calls", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    for table in ("runs", "run_documents"):
        op.drop_column(table, "partly_cached_calls")
    op.drop_column("llm_answers", "reused_variables")
