"""a run that stopped says why with a stable code (`llm_auth_failed`, `llm_quota_exceeded`, `llm_unavailable`)
beside its message

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("error_code", sa.String(50)))


def downgrade() -> None:
    op.drop_column("runs", "error_code")
