"""what reviewers said reaches the dataset: a wrong verdict says whether the reviewer gave what the value should be
(`has_correction`: empty included), a verdict carried to a later run's unchanged value says where it came from,
and an export records the feedback it was built with (`feedback_state`, `feedback_scope`), so a download rebuilds
it when the feedback has changed since

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("feedback", sa.Column("has_correction", sa.Boolean(), server_default=sa.false(), nullable=False))
    # Before this, a wrong verdict with an empty correction was read as "the reviewer does not say": kept so.
    op.execute(
        "UPDATE feedback SET has_correction = true WHERE verdict = 'wrong' AND corrected_value IS NOT NULL "
        "AND corrected_value <> 'null'::jsonb"
    )
    op.add_column("feedback", sa.Column("carried_from_id", sa.UUID(), nullable=True))
    op.add_column("feedback", sa.Column("carried_from_run_id", sa.UUID(), nullable=True))
    op.create_index("ix_feedback_document", "feedback", ["document_id"])
    op.add_column("exports", sa.Column("feedback_state", sa.String(200), nullable=True))
    op.add_column("exports", sa.Column("feedback_scope", sa.UUID(), nullable=True))


def downgrade() -> None:
    op.drop_column("exports", "feedback_scope")
    op.drop_column("exports", "feedback_state")
    op.drop_index("ix_feedback_document", table_name="feedback")
    op.drop_column("feedback", "carried_from_run_id")
    op.drop_column("feedback", "carried_from_id")
    op.drop_column("feedback", "has_correction")
