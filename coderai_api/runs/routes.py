from __future__ import annotations

import uuid

from fastapi import APIRouter

from coderai_api.deps import OrchestratorDep, SessionDep, TenantId
from coderai_api.errors import ERROR_RESPONSES
from coderai_api.projects.service import get_project
from coderai_api.runs import service
from coderai_api.runs.schemas import RunCreate, RunRead

router = APIRouter(tags=["runs"], responses=ERROR_RESPONSES)


@router.post("/projects/{project_id}/runs", response_model=RunRead, status_code=202)
def start_run(
    project_id: uuid.UUID,
    body: RunCreate,
    session: SessionDep,
    tenant_id: TenantId,
    orchestrator: OrchestratorDep,
):
    project = get_project(session, tenant_id, project_id)
    return service.start_run(session, orchestrator, project, body.kind, body.sample_size, body.seed)


@router.get("/projects/{project_id}/runs", response_model=list[RunRead])
def list_runs(project_id: uuid.UUID, session: SessionDep, tenant_id: TenantId):
    return service.list_runs(session, get_project(session, tenant_id, project_id))


@router.get("/runs/{run_id}", response_model=RunRead)
def get_run(run_id: uuid.UUID, session: SessionDep, tenant_id: TenantId, orchestrator: OrchestratorDep):
    run = service.get_run(session, tenant_id, run_id)
    result = RunRead.model_validate(run)
    result.dagster_status = orchestrator.run_statuses(run.id)
    return result
