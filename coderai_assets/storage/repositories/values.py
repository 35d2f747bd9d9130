"""The values a run coded (extractions)."""

from __future__ import annotations

import uuid

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from coderai_assets.storage.models import Document, Extraction, PromptVersion, Run, ValueStatus


def get(session: Session, tenant_id: uuid.UUID, value_id: uuid.UUID, *, lock: bool = False) -> Extraction | None:
    """`lock`: two verdicts on one value at once are recorded one after the other."""
    query = select(Extraction).where(Extraction.id == value_id, Extraction.tenant_id == tenant_id)
    return session.scalars(query.with_for_update() if lock else query).first()


def entities_of(session: Session, run: Run, document_id: uuid.UUID) -> dict[int, int]:
    """The document's records in the run (entity index -> values): one record for a document-level project."""
    rows = session.execute(
        select(Extraction.entity_index, func.count())
        .where(Extraction.run_id == run.id, Extraction.document_id == document_id)
        .group_by(Extraction.entity_index)
    ).all()
    return {index: count for index, count in rows}


def of_run_query(
    run: Run, *, status: ValueStatus | None, variable: str | None, document_id: uuid.UUID | None
) -> Select:
    """The run's values (value, file name, prompt version number), document by document, filtered as given."""
    query = (
        select(Extraction, Document.file_name, PromptVersion.version)
        .join(Document, Document.id == Extraction.document_id)
        .outerjoin(PromptVersion, PromptVersion.id == Extraction.prompt_version_id)
        .where(Extraction.run_id == run.id)
        .order_by(Document.created_at, Document.id, Extraction.entity_index, Extraction.variable_name)
    )
    if status is not None:
        query = query.where(Extraction.status == status)
    if variable is not None:
        query = query.where(Extraction.variable_name == variable)
    if document_id is not None:
        query = query.where(Extraction.document_id == document_id)
    return query


def of_documents(session: Session, run: Run, document_ids: list[uuid.UUID]) -> list[Extraction]:
    return list(
        session.scalars(
            select(Extraction).where(Extraction.run_id == run.id, Extraction.document_id.in_(document_ids))
        ).all()
    )
