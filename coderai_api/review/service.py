"""Reading a run's documents and values, filtered and a page at a time (one count and one page query each)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from coderai_assets.storage.models import (
    Document,
    Extraction,
    PromptVersion,
    Run,
    RunDocument,
    RunDocumentStatus,
    ValueStatus,
)


def _page(session: Session, query: Select, page: int, page_size: int) -> tuple[list[Any], int]:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = session.execute(query.limit(page_size).offset((page - 1) * page_size)).all()
    return list(rows), total


def run_documents(
    session: Session, run: Run, status: RunDocumentStatus | None, page: int, page_size: int
) -> tuple[list[dict], int]:
    query = (
        select(RunDocument, Document.file_name, Document.error_message)
        .join(Document, Document.id == RunDocument.document_id)
        .where(RunDocument.run_id == run.id)
        .order_by(Document.created_at, Document.id)
    )
    if status is not None:
        query = query.where(RunDocument.status == status)
    rows, total = _page(session, query, page, page_size)
    items = [
        {
            **{c.key: getattr(row, c.key) for c in RunDocument.__table__.columns},
            "file_name": file_name,
            # The document's own message describes its last failure: shown only when it failed in this run.
            "error_message": message if row.status == RunDocumentStatus.failed else None,
        }
        for row, file_name, message in rows
    ]
    return items, total


def run_values(
    session: Session,
    run: Run,
    *,
    status: ValueStatus | None,
    variable: str | None,
    document_id: uuid.UUID | None,
    page: int,
    page_size: int,
) -> tuple[list[dict], int]:
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
    rows, total = _page(session, query, page, page_size)
    items = [
        {
            **{c.key: getattr(value, c.key) for c in Extraction.__table__.columns},
            "variable": value.variable_name,
            "file_name": file_name,
            "prompt_version": version,
        }
        for value, file_name, version in rows
    ]
    return items, total
