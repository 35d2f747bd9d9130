from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import FileResponse

from coderai_api.deps import SessionDep, StorageDep, Viewer
from coderai_api.errors import ERROR_RESPONSES
from coderai_api.exports import service
from coderai_api.projects.service import get_project

router = APIRouter(prefix="/projects/{project_id}/export", tags=["exports"], responses=ERROR_RESPONSES)

_MEDIA = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


@router.get("", response_class=FileResponse)
def download_export(
    project_id: uuid.UUID,
    session: SessionDep,
    principal: Viewer,
    storage: StorageDep,
    format: Literal["csv", "xlsx"] = "csv",
    run_id: uuid.UUID | None = None,
):
    """The dataset with the feedback as it stands now (built again when it changed since the last export): every
    reviewer's corrections once every review is complete, before that only the caller's own (blind coding).
    The about sheet says when it was built and whose feedback it holds."""
    project = get_project(session, principal.tenant_id, project_id)
    export = service.current_export(session, storage, project, run_id, principal.user_id)
    path = storage.path(export.csv_path if format == "csv" else export.xlsx_path)
    name = f"{project.name[:50].strip().replace(' ', '_') or 'dataset'}-{export.id.hex[:8]}.{format}"
    return FileResponse(path, media_type=_MEDIA[format], filename=name)
