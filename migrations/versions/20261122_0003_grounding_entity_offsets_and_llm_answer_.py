"""grounding, entity offsets and LLM answer cache

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 03:14:51.146164
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("extractions", sa.Column("entity_start", sa.Integer(), nullable=True))
    op.add_column("extractions", sa.Column("entity_end", sa.Integer(), nullable=True))
    op.add_column("extractions", sa.Column("alignment", sa.String(length=12), nullable=True))
    op.add_column("llm_answers", sa.Column("cache_key", sa.String(length=64), nullable=True))
    op.add_column("llm_answers", sa.Column("cached", sa.Boolean(), server_default="false", nullable=False))
    op.add_column("llm_answers", sa.Column("chunk_key", sa.String(length=64), nullable=True))
    op.add_column("llm_answers", sa.Column("variable_hashes", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.create_index("ix_llm_answers_cache", "llm_answers", ["tenant_id", "cache_key"], unique=False)
    op.create_index("ix_llm_answers_chunk_key", "llm_answers", ["tenant_id", "chunk_key"], unique=False)
    op.add_column("run_documents", sa.Column("cached_calls", sa.Integer(), server_default="0", nullable=False))
    op.add_column("runs", sa.Column("cached_calls", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("runs", "cached_calls")
    op.drop_column("run_documents", "cached_calls")
    op.drop_index("ix_llm_answers_chunk_key", table_name="llm_answers")
    op.drop_index("ix_llm_answers_cache", table_name="llm_answers")
    op.drop_column("llm_answers", "variable_hashes")
    op.drop_column("llm_answers", "chunk_key")
    op.drop_column("llm_answers", "cached")
    op.drop_column("llm_answers", "cache_key")
    op.drop_column("extractions", "alignment")
    op.drop_column("extractions", "entity_end")
    op.drop_column("extractions", "entity_start")
