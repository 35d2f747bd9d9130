from __future__ import annotations

import uuid

from fastapi import APIRouter, BackgroundTasks, Request, Response

from coderai_api.auth.schemas import WorkspaceRead
from coderai_api.auth.service import workspaces_of
from coderai_api.deps import CurrentPrincipal, Owner, SessionDep, SettingsDep, Viewer
from coderai_api.errors import ERROR_RESPONSES
from coderai_api.mail import send_pending
from coderai_api.schemas import DeletionAccepted
from coderai_api.workspaces import service
from coderai_api.workspaces.schemas import (
    MemberInvite,
    MemberRead,
    MemberUpdate,
    WorkspaceBudgetUpdate,
    WorkspaceCreate,
    WorkspaceSpending,
)
from coderai_assets.storage.models import Role

router = APIRouter(prefix="/workspaces", tags=["workspaces"], responses=ERROR_RESPONSES)


@router.get("", response_model=list[WorkspaceRead])
def my_workspaces(principal: CurrentPrincipal, request: Request):
    """The caller's workspaces; act in one by sending its id as X-Workspace-Id (or log in to it)."""
    with request.app.state.session_factory() as session:
        return workspaces_of(session, principal.user_id)


@router.post("", response_model=WorkspaceRead, status_code=201)
def create_workspace(body: WorkspaceCreate, principal: CurrentPrincipal, request: Request, settings: SettingsDep):
    """409 `quota_exceeded` once the account owns `CODERAI_QUOTA_WORKSPACES_PER_ACCOUNT` workspaces."""
    factory = request.app.state.session_factory
    workspace_id = service.create_workspace(
        factory, principal.user_id, body.name, limit=settings.quota_workspaces_per_account
    )
    return WorkspaceRead(id=workspace_id, name=body.name, role=Role.owner)


@router.delete("/{workspace_id}", response_model=DeletionAccepted, status_code=202)
def delete_workspace(workspace_id: uuid.UUID, principal: Owner, session: SessionDep):
    """Deletes the workspace with all it holds (owners): nobody can act in it from now on, its runs are cancelled,
    and its projects, members, files and Dagster partitions are removed once its Dagster runs have stopped. 409
    `last_workspace` for the caller's only workspace: delete the account instead (DELETE /auth/me)."""
    service.check_workspace(principal, workspace_id)
    service.delete_workspace(session, principal)
    return DeletionAccepted(kind="workspace", id=workspace_id)


@router.get("/{workspace_id}/spending", response_model=WorkspaceSpending)
def get_spending(workspace_id: uuid.UUID, principal: Viewer, session: SessionDep, settings: SettingsDep):
    """What the workspace's runs spent this month (counted as each answer is committed), and its monthly budget."""
    service.check_workspace(principal, workspace_id)
    return service.spending(session, settings, principal.tenant_id)


@router.put("/{workspace_id}/spending", response_model=WorkspaceSpending)
def set_budget(
    workspace_id: uuid.UUID, body: WorkspaceBudgetUpdate, principal: Owner, session: SessionDep, settings: SettingsDep
):
    """Sets the workspace's monthly budget (owners): a call that would pass it is not made, and its run stops with
    `budget_exceeded`; a retry goes on once the budget allows."""
    service.check_workspace(principal, workspace_id)
    return service.set_budget(session, settings, principal.tenant_id, body.monthly_budget_usd)


@router.get("/{workspace_id}/members", response_model=list[MemberRead])
def list_members(workspace_id: uuid.UUID, principal: Viewer, session: SessionDep):
    service.check_workspace(principal, workspace_id)
    return service.list_members(session)


@router.post("/{workspace_id}/members", response_model=MemberRead, status_code=201)
def invite_member(
    workspace_id: uuid.UUID,
    body: MemberInvite,
    principal: Owner,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    background: BackgroundTasks,
):
    """Adds an existing account at once; an email without an account gets a single-use link by mail, and joins
    when its holder accepts it (POST /auth/invitations/accept)."""
    service.check_workspace(principal, workspace_id)
    member = service.invite(session, settings, principal, body.email, body.role)
    # Runs after the response, so after the request's transaction committed the message.
    background.add_task(send_pending, request.app.state.session_factory, settings, principal.tenant_id)
    return member


@router.patch("/{workspace_id}/members/{user_id}", response_model=MemberRead)
def change_role(workspace_id: uuid.UUID, user_id: uuid.UUID, body: MemberUpdate, principal: Owner, session: SessionDep):
    service.check_workspace(principal, workspace_id)
    return service.change_role(session, principal, user_id, body.role)


@router.delete("/{workspace_id}/members/{user_id}", status_code=204)
def remove_member(workspace_id: uuid.UUID, user_id: uuid.UUID, principal: Owner, session: SessionDep) -> Response:
    service.check_workspace(principal, workspace_id)
    service.remove_member(session, principal, user_id)
    return Response(status_code=204)
