"""What the model did in a run, for review: its documents (status, error, calls, tokens) and its values (what the
model wrote, what it became, status, confidence, quote and offsets, prompt version, model), filtered and paginated.
The text the offsets point into: GET /projects/{id}/documents/{document_id}/text."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from coderai_api.deps import SessionDep, Viewer
from coderai_api.errors import ERROR_RESPONSES
from coderai_api.pagination import Page, Paged
from coderai_api.review import service
from coderai_api.review.schemas import RunDocumentRead, ValueRead
from coderai_api.runs.service import get_run
from coderai_assets.storage.models import RunDocumentStatus, ValueStatus

router = APIRouter(prefix="/runs/{run_id}", tags=["review"], responses=ERROR_RESPONSES)


@router.get("/documents", response_model=Page[RunDocumentRead])
def run_documents(
    run_id: uuid.UUID,
    session: SessionDep,
    principal: Viewer,
    page: Paged,
    status: RunDocumentStatus | None = None,
):
    """The run's documents in upload order; `status`: pending, done or failed."""
    run = get_run(session, principal.tenant_id, run_id)
    return service.run_documents(session, run, status, page)


@router.get("/values", response_model=Page[ValueRead])
def run_values(
    run_id: uuid.UUID,
    session: SessionDep,
    principal: Viewer,
    page: Paged,
    status: ValueStatus | None = None,
    variable: Annotated[str | None, Query(max_length=63)] = None,
    document_id: uuid.UUID | None = None,
):
    """The run's values by document, entity and variable. Filter on `status` (e.g. every `invalid`, `missing` or
    `ungrounded` value: found by the model but not in the text), `variable` or `document_id`."""
    run = get_run(session, principal.tenant_id, run_id)
    return service.run_values(session, run, page, status=status, variable=variable, document_id=document_id)
