"""a value the text does not support says so in its status (`ungrounded`), counted per document and run

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE value_status ADD VALUE IF NOT EXISTS 'ungrounded'")
    op.add_column("run_documents", sa.Column("values_ungrounded", sa.Integer(), server_default="0", nullable=False))
    op.add_column("runs", sa.Column("values_ungrounded", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("runs", "values_ungrounded")
    op.drop_column("run_documents", "values_ungrounded")
