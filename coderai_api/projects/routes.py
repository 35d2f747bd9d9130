from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from coderai_api import quotas
from coderai_api.deps import Editor, Owner, SessionDep, SettingsDep, Viewer
from coderai_api.errors import ERROR_RESPONSES
from coderai_api.pagination import Page, Paged, Search
from coderai_api.projects import service
from coderai_api.projects.schemas import (
    ProjectCreate,
    ProjectRead,
    ProjectUpdate,
    VariableCreate,
    VariableRead,
    VariableUpdate,
)
from coderai_api.schemas import DeletionAccepted
from coderai_assets.domain.deletion import ask_project_deletion
from coderai_assets.storage.repositories import projects

router = APIRouter(prefix="/projects", tags=["projects"], responses=ERROR_RESPONSES)


@router.post("", response_model=ProjectRead, status_code=201)
def create_project(body: ProjectCreate, session: SessionDep, principal: Editor, settings: SettingsDep):
    """The project is pinned to a shard of the fixed asset graph; Dagster needs nothing new for it."""
    quotas.check_projects(session, settings, principal.tenant_id)
    return service.create_project(session, principal.tenant_id, body, shards=settings.dagster_shards)


@router.patch("/{project_id}", response_model=ProjectRead)
def update_project(
    project_id: uuid.UUID, body: ProjectUpdate, session: SessionDep, principal: Editor, settings: SettingsDep
):
    """Rename, redescribe, or switch auto-processing of new uploads on or off."""
    project = service.get_project(session, principal.tenant_id, project_id)
    updated = service.update_project(session, project, body)
    service.record_codebook(session, project, with_quotes=settings.request_quotes)
    return updated


@router.get("", response_model=Page[ProjectRead])
def list_projects(session: SessionDep, principal: Viewer, page: Paged, name: Search = None):
    """The workspace's projects, oldest first; `name` keeps those whose name holds it."""
    return service.list_projects(session, principal.tenant_id, page, name)


@router.delete("/{project_id}", response_model=DeletionAccepted, status_code=202)
def delete_project(project_id: uuid.UUID, session: SessionDep, principal: Owner):
    """Deletes the project with its documents, runs, values, verdicts and exports (owners). It is gone from every
    read at once and its active runs are cancelled; its rows, files and Dagster partitions are removed once its
    Dagster runs have stopped."""
    ask_project_deletion(session, service.get_project(session, principal.tenant_id, project_id))
    return DeletionAccepted(kind="project", id=project_id)


@router.get("/{project_id}", response_model=ProjectRead)
def get_project(project_id: uuid.UUID, session: SessionDep, principal: Viewer):
    return service.get_project(session, principal.tenant_id, project_id)


@router.post("/{project_id}/variables", response_model=VariableRead, status_code=201)
def create_variable(
    project_id: uuid.UUID, body: VariableCreate, session: SessionDep, principal: Editor, settings: SettingsDep
):
    """Each edit of the codebook (here, PATCH and DELETE) makes its prompt version at once."""
    project = service.get_project(session, principal.tenant_id, project_id)
    variable = service.create_variable(session, project, body)
    service.record_codebook(session, project, with_quotes=settings.request_quotes)
    return service.variable_read(variable)


@router.get("/{project_id}/variables", response_model=list[VariableRead])
def list_variables(project_id: uuid.UUID, session: SessionDep, principal: Viewer):
    project = service.get_project(session, principal.tenant_id, project_id)
    return [service.variable_read(v) for v in projects.variables(session, project)]


@router.patch("/{project_id}/variables/{variable_id}", response_model=VariableRead)
def update_variable(
    project_id: uuid.UUID,
    variable_id: uuid.UUID,
    body: VariableUpdate,
    session: SessionDep,
    principal: Editor,
    settings: SettingsDep,
):
    project = service.get_project(session, principal.tenant_id, project_id)
    variable = service.update_variable(session, project, variable_id, body)
    service.record_codebook(session, project, with_quotes=settings.request_quotes)
    return service.variable_read(variable)


@router.delete("/{project_id}/variables/{variable_id}", status_code=204)
def delete_variable(
    project_id: uuid.UUID, variable_id: uuid.UUID, session: SessionDep, principal: Editor, settings: SettingsDep
) -> Response:
    project = service.get_project(session, principal.tenant_id, project_id)
    service.delete_variable(session, project, variable_id)
    service.record_codebook(session, project, with_quotes=settings.request_quotes)
    return Response(status_code=204)
