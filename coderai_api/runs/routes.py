from __future__ import annotations

import asyncio
import uuid

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from coderai_api.deps import OrchestratorDep, SessionDep, TenantId, current_tenant
from coderai_api.errors import ERROR_RESPONSES
from coderai_api.projects.service import get_project
from coderai_api.runs import service
from coderai_api.runs.schemas import RunCreate, RunRead
from coderai_assets.db import tenant_session
from coderai_assets.errors import NotFound
from coderai_assets.models import RunStatus

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


ws_router = APIRouter(tags=["runs"])
_FINAL = {RunStatus.succeeded, RunStatus.failed}
WS_NOT_FOUND = 4404  # application close code: no such run


def _run_snapshot(websocket: WebSocket, run_id: uuid.UUID) -> dict | None:
    # A short session per message: a WebSocket must not hold a database session open.
    tenant_id = current_tenant(websocket)
    with tenant_session(websocket.app.state.session_factory, tenant_id) as session:
        try:
            return RunRead.model_validate(service.get_run(session, tenant_id, run_id)).model_dump(mode="json")
        except NotFound:
            return None


@ws_router.websocket("/ws/jobs/{run_id}")
async def run_progress(websocket: WebSocket, run_id: uuid.UUID, interval: float = 1.0):
    """Sends the run (as GET /runs/{id}) whenever it changes, and closes when the run has finished."""
    await websocket.accept()
    last = None
    try:
        while True:
            snapshot = await run_in_threadpool(_run_snapshot, websocket, run_id)
            if snapshot is None:
                await websocket.close(code=WS_NOT_FOUND, reason="run_not_found")
                return
            if snapshot != last:
                await websocket.send_json(snapshot)
                last = snapshot
            if snapshot["status"] in _FINAL:
                await websocket.close()
                return
            await asyncio.sleep(max(0.2, interval))
    except WebSocketDisconnect:
        return
