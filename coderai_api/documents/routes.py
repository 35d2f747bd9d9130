from __future__ import annotations

import uuid

from fastapi import APIRouter, UploadFile

from coderai_api.deps import Editor, OrchestratorDep, SessionDep, SettingsDep, StorageDep, Viewer
from coderai_api.documents import service
from coderai_api.documents.schemas import DocumentRead, UploadResult
from coderai_api.errors import ERROR_RESPONSES
from coderai_api.projects.service import get_project

router = APIRouter(prefix="/projects/{project_id}/documents", tags=["documents"], responses=ERROR_RESPONSES)


@router.post("", response_model=list[UploadResult], status_code=201)
def upload_documents(
    project_id: uuid.UUID,
    files: list[UploadFile],
    session: SessionDep,
    principal: Editor,
    storage: StorageDep,
    orchestrator: OrchestratorDep,
    settings: SettingsDep,
):
    """Upload one or more files (multipart field `files`). Format is detected from content when parsed."""
    project = get_project(session, principal.tenant_id, project_id)
    results = []
    for upload in files:
        data = upload.file.read(settings.max_upload_bytes + 1)
        document, duplicate = service.add_document(
            session, storage, project, upload.filename or "document", data, settings.max_upload_bytes
        )
        results.append(UploadResult(document=DocumentRead.model_validate(document), duplicate=duplicate))
    # Registered before the transaction commits: a partition without a row is skipped by the assets,
    # while a row without a partition could never be run.
    orchestrator.add_documents(project.id, [r.document.id.hex for r in results if not r.duplicate])
    return results


@router.get("", response_model=list[DocumentRead])
def list_documents(project_id: uuid.UUID, session: SessionDep, principal: Viewer):
    return service.list_documents(session, get_project(session, principal.tenant_id, project_id))
