"""Reading a run's documents and values, filtered and a page at a time (one count and one page query each)."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from coderai_api.pagination import PageRequest
from coderai_assets.storage import repositories
from coderai_assets.storage.models import (
    Extraction,
    Run,
    RunDocument,
    RunDocumentStatus,
    ValueStatus,
)
from coderai_assets.storage.repositories import runs, values


def run_documents(session: Session, run: Run, status: RunDocumentStatus | None, page: PageRequest) -> dict:
    found = repositories.keyset_page(session, runs.documents_query(run, status), name="run-documents", **page.args)
    return page.answer(found, _run_document)


def _run_document(found) -> dict:
    row, file_name, message = found
    return {
        **{c.key: getattr(row, c.key) for c in RunDocument.__table__.columns},
        "file_name": file_name,
        # The document's own message describes its last failure: shown only when it failed in this run.
        "error_message": message if row.status == RunDocumentStatus.failed else None,
    }


def run_values(
    session: Session,
    run: Run,
    page: PageRequest,
    *,
    status: ValueStatus | None,
    variable: str | None,
    document_id: uuid.UUID | None,
) -> dict:
    query = values.of_run_query(run, status=status, variable=variable, document_id=document_id)
    return page.answer(repositories.keyset_page(session, query, name="run-values", **page.args), _value)


def _value(found) -> dict:
    value, file_name, version = found
    return {
        **{c.key: getattr(value, c.key) for c in Extraction.__table__.columns},
        "variable": value.variable_name,
        "file_name": file_name,
        "prompt_version": version,
    }
