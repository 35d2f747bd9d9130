"""extraction alignment status

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 02:45:59.092870
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("extractions", sa.Column("alignment", sa.String(length=12), nullable=True))


def downgrade() -> None:
    op.drop_column("extractions", "alignment")
