"""reviewers' feedback on values: what a value should have been, by whom and when, an edit keeping history (the
earlier row superseded); missed and spurious entities; and each reviewer's review of a run, done or not (double
coding: nobody sees another's feedback on a run before both are done)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "coderai_app"


def _tenant_table(name: str) -> None:
    op.execute(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {name} USING (tenant_id = coderai_current_tenant()) "
        "WITH CHECK (tenant_id = coderai_current_tenant())"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {name} TO {APP_ROLE}")


def upgrade() -> None:
    op.add_column("feedback", sa.Column("run_id", sa.UUID()))
    op.add_column("feedback", sa.Column("document_id", sa.UUID()))
    op.add_column("feedback", sa.Column("variable_name", sa.String(63)))
    op.add_column("feedback", sa.Column("superseded_at", sa.DateTime(timezone=True)))
    op.create_index("ix_feedback_run", "feedback", ["run_id"])
    # One current answer per reviewer and value: two requests racing cannot both be current.
    op.create_index(
        "uq_feedback_current",
        "feedback",
        ["extraction_id", "user_id"],
        unique=True,
        postgresql_where=sa.text("superseded_at IS NULL"),
    )
    op.create_table(
        "entity_feedback",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("run_id", sa.UUID(), nullable=False),
        sa.Column("document_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("entity_index", sa.Integer(), nullable=True),
        sa.Column("entity_text", sa.Text(), nullable=True),
        sa.Column("char_start", sa.Integer(), nullable=True),
        sa.Column("char_end", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id", "run_id"], ["runs.tenant_id", "runs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_entity_feedback_run", "entity_feedback", ["run_id"])
    _tenant_table("entity_feedback")
    op.create_table(
        "reviews",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("run_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id", "run_id"], ["runs.tenant_id", "runs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "user_id"),
    )
    _tenant_table("reviews")


def downgrade() -> None:
    op.drop_table("reviews")
    op.drop_table("entity_feedback")
    op.drop_index("uq_feedback_current", table_name="feedback")
    op.drop_index("ix_feedback_run", table_name="feedback")
    for column in ("superseded_at", "variable_name", "document_id", "run_id"):
        op.drop_column("feedback", column)
