from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query

from coderai_api.deps import Editor, SessionDep, SettingsDep, Viewer
from coderai_api.errors import ERROR_RESPONSES
from coderai_api.pagination import Page, Paged
from coderai_api.projects.service import get_project
from coderai_api.prompts import service
from coderai_api.prompts.schemas import PromptVersionDiff, PromptVersionRead, PromptVersionSummary

Version = Annotated[int, Path(ge=1, le=1_000_000)]
router = APIRouter(prefix="/projects/{project_id}/prompt-versions", tags=["prompt versions"], responses=ERROR_RESPONSES)


@router.get("", response_model=Page[PromptVersionSummary])
def list_versions(project_id: uuid.UUID, session: SessionDep, principal: Viewer, page: Paged):
    """Newest first, with the variables each asks for and how many runs used it."""
    return service.list_versions(session, get_project(session, principal.tenant_id, project_id), page)


@router.get("/{version}", response_model=PromptVersionRead)
def show_version(project_id: uuid.UUID, version: Version, session: SessionDep, principal: Viewer):
    """What the version sends the model (system prompt, user template, JSON schema) and the specification it was
    compiled from. Every value records the version that produced it (`prompt_version` in GET /runs/{id}/values)."""
    return service.show(session, get_project(session, principal.tenant_id, project_id), version)


@router.get("/{version}/diff", response_model=PromptVersionDiff)
def diff_version(
    project_id: uuid.UUID,
    version: Version,
    session: SessionDep,
    principal: Viewer,
    against: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
):
    """What changed from `against` (the version before, by default) to this one."""
    return service.diff(session, get_project(session, principal.tenant_id, project_id), version, against)


@router.post("/{version}/restore", response_model=PromptVersionRead)
def restore_version(
    project_id: uuid.UUID, version: Version, session: SessionDep, principal: Editor, settings: SettingsDep
):
    """Makes the version's codebook the project's again (variables and description); answers the prompt version
    the next run will use, the same codebook, so runs answer its chunks from the cache."""
    project = get_project(session, principal.tenant_id, project_id)
    restored = service.restore(session, project, version, with_quotes=settings.request_quotes)
    return service.show(session, project, restored.version)
