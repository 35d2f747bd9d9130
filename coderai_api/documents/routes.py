from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, UploadFile

from coderai_api import quotas
from coderai_api.deps import Editor, SessionDep, SettingsDep, StorageDep, Viewer
from coderai_api.documents import service
from coderai_api.documents.schemas import DocumentDetail, DocumentRead, DocumentText, UploadResult
from coderai_api.errors import ERROR_RESPONSES
from coderai_api.pagination import Page, Paged, Search
from coderai_api.projects.service import get_project
from coderai_api.schemas import DeletionAccepted
from coderai_assets.domain.deletion import ask_document_deletion
from coderai_assets.storage.models import DocumentStatus

router = APIRouter(prefix="/projects/{project_id}/documents", tags=["documents"], responses=ERROR_RESPONSES)


@router.post("", response_model=list[UploadResult], status_code=201)
def upload_documents(
    project_id: uuid.UUID,
    files: list[UploadFile],
    session: SessionDep,
    principal: Editor,
    storage: StorageDep,
    settings: SettingsDep,
):
    """Upload one or more files (multipart field `files`). Format is detected from content when parsed; the
    intake sensor makes each new document a Dagster partition (and codes it, if the project auto-processes)."""
    project = get_project(session, principal.tenant_id, project_id)
    quotas.check_documents(session, settings, principal.tenant_id, len(files))
    results, written = [], []
    try:
        for upload in files:
            data = upload.file.read(settings.max_upload_bytes + 1)
            document, duplicate = service.add_document(
                session, storage, project, upload.filename or "document", data, settings.max_upload_bytes
            )
            if not duplicate:
                written.append(document.storage_path)
            results.append(UploadResult(document=DocumentRead.model_validate(document), duplicate=duplicate))
    except Exception:
        # The transaction rolls back, so no row will point at these files. (A failed commit after this point
        # leaves them to the hourly housekeeping job.)
        for key in written:
            storage.delete(key)
        raise
    return results


@router.get("", response_model=Page[DocumentRead])
def list_documents(
    project_id: uuid.UUID,
    session: SessionDep,
    principal: Viewer,
    page: Paged,
    status: DocumentStatus | None = None,
    name: Search = None,
):
    """The project's documents in upload order; `status` (uploaded, parsed, failed...) and `name` (file names that
    hold it) narrow the list."""
    project = get_project(session, principal.tenant_id, project_id)
    return service.list_documents(session, project, page, status, name)


@router.get("/{document_id}", response_model=DocumentDetail)
def get_document(project_id: uuid.UUID, document_id: uuid.UUID, session: SessionDep, principal: Viewer):
    document, chars = service.get_document(session, get_project(session, principal.tenant_id, project_id), document_id)
    return {
        **DocumentRead.model_validate(document).model_dump(),
        "parse_warnings": document.parse_warnings,
        "text_chars": chars,
    }


@router.delete("/{document_id}", response_model=DeletionAccepted, status_code=202)
def delete_document(project_id: uuid.UUID, document_id: uuid.UUID, session: SessionDep, principal: Editor):
    """Deletes the document with its text, values and verdicts, and the exports that hold them. Active runs that
    include it are cancelled (retry them for the other documents); its rows, file and Dagster partition are removed
    once their Dagster runs have stopped."""
    project = get_project(session, principal.tenant_id, project_id)
    ask_document_deletion(session, service.get_document(session, project, document_id)[0])
    return DeletionAccepted(kind="document", id=document_id)


@router.get("/{document_id}/text", response_model=DocumentText)
def document_text(
    project_id: uuid.UUID,
    document_id: uuid.UUID,
    session: SessionDep,
    principal: Viewer,
    offset: Annotated[int, Query(ge=0, le=2_000_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1_000_000)] = 100_000,
):
    """The parsed text the values' offsets point into (`char_start`, `char_end`), a slice at a time: a quote is
    checked with `offset=char_start&limit=char_end-char_start`. 404 `text_not_available` before it is parsed."""
    project = get_project(session, principal.tenant_id, project_id)
    text, total = service.document_text(session, project, document_id, offset, limit)
    return {"offset": offset, "total_chars": total, "text": text}
