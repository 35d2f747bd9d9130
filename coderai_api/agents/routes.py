"""The co-pilot (suggested variables) and the refiner (a better definition of weak variables, scored on held-out
documents): a request records a task and answers 202 at once; GET /agent-tasks/{id} shows it until it ends; an
editor accepts what they want of it."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from coderai_api import quotas
from coderai_api.agents import service
from coderai_api.agents.schemas import (
    AcceptRequest,
    AcceptResult,
    AgentTaskRead,
    RefinementEstimate,
    RefineRequest,
    SuggestRequest,
)
from coderai_api.deps import Editor, SessionDep, SettingsDep, Viewer
from coderai_api.errors import ERROR_RESPONSES
from coderai_api.pagination import Page, Paged
from coderai_api.projects.service import get_project
from coderai_assets.storage.models import AgentTaskKind, AgentTaskStatus

router = APIRouter(tags=["agents"], responses=ERROR_RESPONSES)


@router.post("/projects/{project_id}/suggestions", response_model=AgentTaskRead, status_code=202)
def suggest_variables(
    project_id: uuid.UUID, body: SuggestRequest, session: SessionDep, principal: Editor, settings: SettingsDep
):
    """The co-pilot reads a few documents and the project's description and suggests variables, each with a
    reason and an example quote located in a document (`result.suggestions`). 409 `no_documents`."""
    project = get_project(session, principal.tenant_id, project_id)
    quotas.check_active_runs(session, settings, principal.tenant_id)  # 409 quota_exceeded, shared with runs
    return service.request_suggestions(session, project, principal, body)


@router.post("/projects/{project_id}/refinements", response_model=AgentTaskRead, status_code=202)
def refine_codebook(
    project_id: uuid.UUID, body: RefineRequest, session: SessionDep, principal: Editor, settings: SettingsDep
):
    """From a run's feedback, the refiner proposes a new definition of each weak variable and scores it on
    reviewed documents it was not written from: `result.held_out` has the before/after figures, `result.verdict`
    is `offered` or `rejected`. 409 `no_feedback`, `too_few_reviewed_documents`."""
    project = get_project(session, principal.tenant_id, project_id)
    quotas.check_active_runs(session, settings, principal.tenant_id)
    return service.request_refinement(session, project, principal, body)


@router.post("/projects/{project_id}/refinements/estimate", response_model=RefinementEstimate)
def estimate_refinement(
    project_id: uuid.UUID, body: RefineRequest, session: SessionDep, principal: Editor, settings: SettingsDep
):
    """What POST /projects/{id}/refinements with this body would cost, before anything is asked: the weak
    variables, calls, tokens and USD. Nothing is recorded."""
    project = get_project(session, principal.tenant_id, project_id)
    return service.estimate(session, settings, project, principal, body)


@router.get("/projects/{project_id}/agent-tasks", response_model=Page[AgentTaskRead])
def list_agent_tasks(
    project_id: uuid.UUID,
    session: SessionDep,
    principal: Viewer,
    page: Paged,
    status: AgentTaskStatus | None = None,
    kind: AgentTaskKind | None = None,
):
    """The project's co-pilot and refiner tasks, newest first."""
    project = get_project(session, principal.tenant_id, project_id)
    return service.list_tasks(session, principal, project, page, status, kind)


@router.get("/agent-tasks/{task_id}", response_model=AgentTaskRead)
def get_agent_task(task_id: uuid.UUID, session: SessionDep, principal: Viewer):
    return service.shown_to(principal, service.get_task(session, principal.tenant_id, task_id))


@router.post("/agent-tasks/{task_id}/cancel", response_model=AgentTaskRead)
def cancel_agent_task(task_id: uuid.UUID, session: SessionDep, principal: Editor):
    """Stops a queued or running task: it makes no further call, and what its calls cost stays recorded. 409
    `agent_task_ended`."""
    return service.cancel(session, principal, task_id)


@router.post("/agent-tasks/{task_id}/accept", response_model=AcceptResult)
def accept_agent_task(
    task_id: uuid.UUID, body: AcceptRequest, session: SessionDep, principal: Editor, settings: SettingsDep
):
    """Suggestions: creates the chosen variables (edited as asked). A refinement: applies the chosen proposals to
    the live variables and answers the prompt version the next run uses, with its diff. 409
    `agent_task_not_ready`, `agent_task_applied`, `refinement_rejected`, `refinement_stale`."""
    return service.accept(session, principal, task_id, body, with_quotes=settings.request_quotes)
