from __future__ import annotations

import asyncio
import uuid

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from coderai_api import quotas
from coderai_api.deps import Editor, SessionDep, SettingsDep, Viewer, authenticated_session
from coderai_api.errors import ERROR_RESPONSES
from coderai_api.feedback.agreement import check_reliability
from coderai_api.pagination import Page, Paged
from coderai_api.projects.service import get_project
from coderai_api.runs import service
from coderai_api.runs.schemas import RunCreate, RunEstimate, RunRead
from coderai_assets.errors import CoderAIError, NotFound
from coderai_assets.storage.models import RunKind, RunStatus

router = APIRouter(tags=["runs"], responses=ERROR_RESPONSES)


@router.post("/projects/{project_id}/runs", response_model=RunRead, status_code=202)
def start_run(
    project_id: uuid.UUID,
    body: RunCreate,
    session: SessionDep,
    principal: Editor,
    settings: SettingsDep,
):
    """Records the run and returns at once (202): the intake sensor launches it within seconds, and its status
    moves queued -> running -> exporting -> succeeded (or failed, or canceled) in GET /runs/{id} and the WebSocket.
    A project has at most one full run under way (409 `run_already_active`)."""
    project = get_project(session, principal.tenant_id, project_id)
    quotas.check_active_runs(session, settings, principal.tenant_id)
    override = None
    if body.kind == RunKind.full:
        reason = body.reliability_override.reason if body.reliability_override else None
        override = check_reliability(session, principal, project, reason)
    run = service.start_run(
        session,
        project,
        body.kind,
        body.sample_size,
        body.seed,
        with_quotes=settings.request_quotes,
        max_cost_usd=body.max_cost_usd,
    )
    run.reliability_override = override
    return service.run_view(session, run)


@router.post("/projects/{project_id}/runs/estimate", response_model=RunEstimate)
def estimate_run(
    project_id: uuid.UUID,
    body: RunCreate,
    session: SessionDep,
    principal: Editor,
    settings: SettingsDep,
):
    """What POST /projects/{id}/runs with this body would cost: documents, chunks, calls, tokens, USD, with the
    chunks the cache answers taken out. Nothing is recorded. Set `max_cost_usd` on the run from it. For editors,
    as starting a run is."""
    project = get_project(session, principal.tenant_id, project_id)
    return service.estimate_run(session, settings, project, body.kind, body.sample_size, body.seed)


@router.get("/projects/{project_id}/runs", response_model=Page[RunRead])
def list_runs(
    project_id: uuid.UUID,
    session: SessionDep,
    principal: Viewer,
    page: Paged,
    status: RunStatus | None = None,
    kind: RunKind | None = None,
):
    """The project's runs, newest first."""
    project = get_project(session, principal.tenant_id, project_id)
    return service.list_runs(session, project, page, status, kind)


@router.get("/runs/{run_id}", response_model=RunRead)
def get_run(run_id: uuid.UUID, session: SessionDep, principal: Viewer):
    return service.run_view(session, service.get_run(session, principal.tenant_id, run_id))


@router.post("/runs/{run_id}/cancel", response_model=RunRead)
def cancel_run(run_id: uuid.UUID, session: SessionDep, principal: Editor):
    """Stops a queued or running run (409 `run_not_active` once it has ended). Documents already coded stay; the
    calls in flight finish; POST /runs/{id}/retry goes on from there."""
    return service.run_view(session, service.cancel_run(session, principal.tenant_id, run_id))


@router.post("/runs/{run_id}/retry", response_model=RunRead, status_code=202)
def retry_run(run_id: uuid.UUID, session: SessionDep, principal: Editor, settings: SettingsDep):
    """Codes again, as a new attempt, the documents of an ended run that failed or were never coded; the done ones
    stay, and chunks answered before are not asked again (409 `run_active` while it runs, `nothing_to_retry`)."""
    quotas.check_active_runs(session, settings, principal.tenant_id)
    return service.run_view(session, service.retry_run(session, principal.tenant_id, run_id))


ws_router = APIRouter(tags=["runs"])
_FINAL = {RunStatus.succeeded, RunStatus.failed, RunStatus.canceled}
WS_UNAUTHORISED = 4401  # application close codes: the token is missing, invalid, expired or revoked
WS_NOT_FOUND = 4404  # no such run in the workspace


def _websocket_token(websocket: WebSocket) -> str | None:
    # Browsers cannot set headers on a WebSocket: the token comes as the subprotocols ["bearer", token].
    protocols = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    if len(protocols) == 2 and protocols[0].lower() == "bearer":
        return protocols[1]
    header = websocket.headers.get("authorization", "")
    return header[7:] if header.lower().startswith("bearer ") else None


WS_TOO_MANY = 4429  # the workspace has its quota of open WebSockets
_SLOTS = quotas.WebSocketSlots()


def _run_snapshot(websocket: WebSocket, token: str | None, run_id: uuid.UUID) -> tuple[uuid.UUID, dict] | None:
    # Authenticated again for every message, so a logout or an expiry closes the stream; one short transaction
    # per message: a WebSocket must not hold a database session open.
    with authenticated_session(websocket, token) as auth:
        try:
            run = service.get_run(auth.session, auth.principal.tenant_id, run_id)
        except NotFound:
            return None
        view = service.run_view(auth.session, run)
        return auth.principal.tenant_id, RunRead.model_validate(view).model_dump(mode="json")


@ws_router.websocket("/ws/jobs/{run_id}")
async def run_progress(websocket: WebSocket, run_id: uuid.UUID, interval: float = 1.0):
    """Sends the run (as GET /runs/{id}) whenever it changes, and closes when the run has finished.
    Authenticate with the subprotocols ["bearer", <access token>] or an Authorization header."""
    token = _websocket_token(websocket)
    subprotocol = "bearer" if "bearer" in websocket.headers.get("sec-websocket-protocol", "").lower() else None
    await websocket.accept(subprotocol=subprotocol)
    settings = websocket.app.state.settings
    try:
        first = await run_in_threadpool(_run_snapshot, websocket, token, run_id)
    except CoderAIError as exc:
        await websocket.close(code=WS_UNAUTHORISED, reason=exc.code)
        return
    if first is None:
        await websocket.close(code=WS_NOT_FOUND, reason="run_not_found")
        return
    tenant_id, snapshot = first
    with _SLOTS.hold(tenant_id, settings.quota_websockets) as free:
        if not free:
            await websocket.close(code=WS_TOO_MANY, reason="quota_exceeded")
            return
        await _stream(websocket, token, run_id, snapshot, max(1.0, interval))


async def _stream(websocket: WebSocket, token: str | None, run_id: uuid.UUID, snapshot: dict, interval: float) -> None:
    last = None
    try:
        while True:
            if snapshot != last:
                await websocket.send_json(snapshot)
                last = snapshot
            if snapshot["status"] in _FINAL:
                await websocket.close()
                return
            await asyncio.sleep(interval)
            try:
                current = await run_in_threadpool(_run_snapshot, websocket, token, run_id)
            except CoderAIError as exc:
                await websocket.close(code=WS_UNAUTHORISED, reason=exc.code)
                return
            if current is None:
                await websocket.close(code=WS_NOT_FOUND, reason="run_not_found")
                return
            snapshot = current[1]
    except WebSocketDisconnect:
        return
