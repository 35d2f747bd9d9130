"""a run reads its own definition: the project specification is stored in the prompt version; values keep their
variable's name and outlive the variable

Revision ID: 0005
Revises: 0004

Deleting a variable used to cascade into every past run's values (a foreign key with ON DELETE CASCADE), and an
edit changed how a finished run was validated and exported. Now each prompt version holds the whole specification
it was compiled from, and a value names its variable, so a finished run's data never changes.
Create Date: 2026-11-29 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("prompt_versions", sa.Column("spec", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column("extractions", sa.Column("variable_name", sa.String(length=63), nullable=True))
    op.execute(
        "UPDATE extractions e SET variable_name = v.name FROM variables v "
        "WHERE v.id = e.variable_id AND v.tenant_id = e.tenant_id"
    )
    op.alter_column("extractions", "variable_name", nullable=False)
    op.drop_constraint("fk_extractions_variable", "extractions", type_="foreignkey")


def downgrade() -> None:
    op.execute(
        "DELETE FROM extractions e WHERE NOT EXISTS "
        "(SELECT 1 FROM variables v WHERE v.id = e.variable_id AND v.tenant_id = e.tenant_id)"
    )
    op.create_foreign_key(
        "fk_extractions_variable",
        "extractions",
        "variables",
        ["tenant_id", "variable_id"],
        ["tenant_id", "id"],
        ondelete="CASCADE",
    )
    op.drop_column("extractions", "variable_name")
    op.drop_column("prompt_versions", "spec")
