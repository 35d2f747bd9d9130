"""The model's answers, one row per chunk and run (llm_answers): the cache, a run's committed chunks, and their
counts."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from coderai_assets.storage.models import Document, LlmAnswer, Project, PromptVersion


def cached(session: Session, cache_key: str) -> LlmAnswer | None:
    """The latest usable answer to the same call (model, prompt and text). Row-level security keeps the cache
    inside the tenant."""
    return session.scalars(
        select(LlmAnswer)
        .where(LlmAnswer.cache_key == cache_key, LlmAnswer.payload.is_not(None), LlmAnswer.error.is_(None))
        .order_by(LlmAnswer.created_at.desc())
        .limit(1)
    ).first()


def latest_for_text(session: Session, chunk_key: str) -> LlmAnswer | None:
    """The latest usable answer for the same model and text, whatever the prompt version."""
    return session.scalars(
        select(LlmAnswer)
        .where(
            LlmAnswer.chunk_key == chunk_key,
            LlmAnswer.payload.is_not(None),
            LlmAnswer.error.is_(None),
            LlmAnswer.variable_hashes.is_not(None),
        )
        .order_by(LlmAnswer.created_at.desc())
        .limit(1)
    ).first()


def of_document(session: Session, run_id: uuid.UUID, document_id: uuid.UUID) -> list[LlmAnswer]:
    """The run's answers for the document, chunk by chunk."""
    return list(
        session.scalars(
            select(LlmAnswer)
            .where(LlmAnswer.run_id == run_id, LlmAnswer.document_id == document_id)
            .order_by(LlmAnswer.chunk_index)
        )
    )


def drop(session: Session, answer_ids: list[uuid.UUID]) -> None:
    session.execute(delete(LlmAnswer).where(LlmAnswer.id.in_(answer_ids)))


def drop_chunk(session: Session, run_id: uuid.UUID, document_id: uuid.UUID, chunk_index: int) -> None:
    session.execute(
        delete(LlmAnswer).where(
            LlmAnswer.run_id == run_id, LlmAnswer.document_id == document_id, LlmAnswer.chunk_index == chunk_index
        )
    )


def totals_of_document(session: Session, run_id: uuid.UUID, document_id: uuid.UUID) -> Any:
    """The document's calls, cached chunks, partly cached calls, input and output tokens in the run."""
    return session.execute(
        select(
            func.coalesce(func.sum(LlmAnswer.calls), 0),
            func.count().filter(LlmAnswer.cached),
            func.count().filter(LlmAnswer.reused_variables > 0, LlmAnswer.calls > 0),
            func.coalesce(func.sum(LlmAnswer.input_tokens), 0),
            func.coalesce(func.sum(LlmAnswer.output_tokens), 0),
        ).where(LlmAnswer.run_id == run_id, LlmAnswer.document_id == document_id)
    ).one()


def observed_output(session: Session, project: Project, model: str) -> tuple[int, int]:
    """The project's calls answered by `model` and the output tokens they took: the estimate's answer length."""
    calls, output = session.execute(
        select(func.coalesce(func.sum(LlmAnswer.calls), 0), func.coalesce(func.sum(LlmAnswer.output_tokens), 0))
        .join(Document, Document.id == LlmAnswer.document_id)
        .where(Document.project_id == project.id, LlmAnswer.calls > 0, LlmAnswer.model == model)
    ).one()
    return int(calls), int(output)


def version_for_hash(session: Session, project: Project, variables_hash: str) -> uuid.UUID | None:
    """The project's prompt version of this codebook, if there is one."""
    return session.scalars(
        select(PromptVersion.id).where(
            PromptVersion.project_id == project.id, PromptVersion.variables_hash == variables_hash
        )
    ).first()


def answered_chunks(
    session: Session, version_id: uuid.UUID, model: str, document_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Per document, its chunks with a usable answer of this prompt version and model (the cache will answer)."""
    rows = session.execute(
        select(LlmAnswer.document_id, func.count(func.distinct(LlmAnswer.chunk_index)))
        .where(
            LlmAnswer.prompt_version_id == version_id,
            LlmAnswer.model == model,
            LlmAnswer.payload.is_not(None),
            LlmAnswer.document_id.in_(document_ids),
        )
        .group_by(LlmAnswer.document_id)
    ).all()
    return {document_id: count for document_id, count in rows}
