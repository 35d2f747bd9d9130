"""Reading a run's documents and values, filtered and a page at a time (one count and one page query each)."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from coderai_assets.storage import repositories
from coderai_assets.storage.models import (
    Extraction,
    Run,
    RunDocument,
    RunDocumentStatus,
    ValueStatus,
)
from coderai_assets.storage.repositories import runs, values


def run_documents(
    session: Session, run: Run, status: RunDocumentStatus | None, page: int, page_size: int
) -> tuple[list[dict], int]:
    rows, total = repositories.page(session, runs.documents_query(run, status), page, page_size)
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
    query = values.of_run_query(run, status=status, variable=variable, document_id=document_id)
    rows, total = repositories.page(session, query, page, page_size)
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
