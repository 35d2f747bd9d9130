"""a variable's definition is one JSON value (`VariableSpec.stored()`), the same model the API, the codebook and
each prompt version's snapshot use; its name, the dataset column, is derived from it

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIELDS = (
    "display_name",
    "type",
    "description",
    "allowed_values",
    "if_uncertain",
    "uncertain_code",
    "if_multiple_values",
    "max_values",
    "default_value",
    "depends_on",
    "depends_on_value",
    "validation",
)
ENUMS = {
    "variable_type": ("text", "integer", "number", "boolean", "date", "category", "list"),
    "if_uncertain": ("leave_empty", "best_guess", "code"),
    "if_multiple_values": ("first", "all", "flag"),
}


def upgrade() -> None:
    op.add_column("variables", sa.Column("definition", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    pairs = ", ".join(f"'{f}', {f}" for f in ("name", *FIELDS))
    # jsonb_build_object keeps SQL nulls as JSON nulls; empty allowed values become null, as the model stores them.
    op.execute(
        f"UPDATE variables SET definition = jsonb_build_object({pairs}) "
        "|| jsonb_build_object('allowed_values', "
        "CASE WHEN jsonb_array_length(coalesce(allowed_values, '[]')) = 0 THEN NULL ELSE allowed_values END)"
    )
    op.alter_column("variables", "definition", nullable=False)
    op.drop_constraint("uq_variables_project_name", "variables", type_="unique")
    for field in ("name", *FIELDS):
        op.drop_column("variables", field)
    for name in ENUMS:
        op.execute(f"DROP TYPE {name}")
    op.add_column(
        "variables",
        sa.Column("name", sa.String(length=63), sa.Computed("definition ->> 'name'", persisted=True), nullable=False),
    )
    op.create_unique_constraint("uq_variables_project_name", "variables", ["tenant_id", "project_id", "name"])


def downgrade() -> None:
    for name, values in ENUMS.items():
        postgresql.ENUM(*values, name=name).create(op.get_bind())
    op.drop_constraint("uq_variables_project_name", "variables", type_="unique")
    op.drop_column("variables", "name")
    op.add_column("variables", sa.Column("name", sa.String(length=63), nullable=True))
    text_columns = {
        "display_name": sa.String(length=200),
        "description": sa.Text(),
        "uncertain_code": sa.String(length=50),
        "default_value": sa.Text(),
        "depends_on": sa.String(length=63),
        "depends_on_value": sa.Text(),
    }
    for field, type_ in text_columns.items():
        op.add_column("variables", sa.Column(field, type_, nullable=True))
    for field in ("allowed_values", "validation"):
        op.add_column("variables", sa.Column(field, postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column("variables", sa.Column("max_values", sa.Integer(), nullable=True))
    for field, enum_name in (
        ("type", "variable_type"),
        ("if_uncertain", "if_uncertain"),
        ("if_multiple_values", "if_multiple_values"),
    ):
        op.add_column("variables", sa.Column(field, postgresql.ENUM(name=enum_name, create_type=False), nullable=True))
    op.execute(
        "UPDATE variables SET name = definition->>'name', display_name = coalesce(definition->>'display_name', ''), "
        "type = (definition->>'type')::variable_type, description = coalesce(definition->>'description', ''), "
        "allowed_values = nullif(definition->'allowed_values', 'null'), "
        "if_uncertain = (definition->>'if_uncertain')::if_uncertain, uncertain_code = definition->>'uncertain_code', "
        "if_multiple_values = (definition->>'if_multiple_values')::if_multiple_values, "
        "max_values = (definition->>'max_values')::int, default_value = definition->>'default_value', "
        "depends_on = definition->>'depends_on', depends_on_value = definition->>'depends_on_value', "
        "validation = nullif(definition->'validation', 'null')"
    )
    for field in ("name", "display_name", "type", "description", "if_uncertain", "if_multiple_values"):
        op.alter_column("variables", field, nullable=False)
    op.create_unique_constraint("uq_variables_project_name", "variables", ["tenant_id", "project_id", "name"])
    op.drop_column("variables", "definition")
