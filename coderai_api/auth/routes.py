from __future__ import annotations

from fastapi import APIRouter, Request, Response

from coderai_api.auth import service
from coderai_api.auth.schemas import (
    AccountDelete,
    InvitationAccept,
    LoginBody,
    RefreshBody,
    RegisterBody,
    Registered,
    TokenPair,
    UserRead,
    WorkspaceRead,
)
from coderai_api.deps import CurrentPrincipal, SettingsDep
from coderai_api.errors import ERROR_RESPONSES

router = APIRouter(prefix="/auth", tags=["auth"], responses=ERROR_RESPONSES)


@router.post("/register", response_model=Registered, status_code=202)
def register(body: RegisterBody, request: Request):
    """Creates the account and a workspace of its own, then log in. The answer is the same for an address that
    already has an account (nothing changes then), so it tells nobody which addresses are users."""
    service.register(
        request.app.state.session_factory, body.email, body.password, body.display_name, body.workspace_name
    )
    return Registered()


@router.post("/login", response_model=TokenPair)
def login(body: LoginBody, request: Request, settings: SettingsDep):
    address = request.client.host if request.client else "unknown"
    return service.login(
        request.app.state.session_factory, settings, body.email, body.password, address, body.workspace_id
    )


@router.post("/refresh", response_model=TokenPair)
def refresh(body: RefreshBody, request: Request, settings: SettingsDep):
    return service.refresh(request.app.state.session_factory, settings, body.refresh_token)


@router.post("/invitations/accept", response_model=WorkspaceRead)
def accept_invitation(body: InvitationAccept, principal: CurrentPrincipal, request: Request):
    """Joins a workspace with the single-use token of an invitation mail, as the logged-in account."""
    return service.accept_invitation(request.app.state.session_factory, principal.user_id, body.token)


@router.post("/logout", status_code=204)
def logout(principal: CurrentPrincipal, request: Request) -> Response:
    """Ends the session: its access and refresh tokens stop working at once."""
    service.revoke_session(request.app.state.session_factory, principal.session_id, "logout")
    return Response(status_code=204)


@router.delete("/me", status_code=204)
def delete_account(body: AccountDelete, principal: CurrentPrincipal, request: Request) -> Response:
    """Deletes the caller's account, confirmed with its password (401 `invalid_credentials` otherwise): its
    sessions end at once, and the workspaces it alone belonged to are deleted with all they hold. 409 `sole_owner`
    while it is the only owner of a workspace others belong to."""
    service.delete_account(request.app.state.session_factory, principal.user_id, body.password)
    return Response(status_code=204)


@router.get("/me", response_model=UserRead)
def me(principal: CurrentPrincipal, request: Request):
    from coderai_assets.storage.models import User

    with request.app.state.session_factory() as session:
        user = session.get(User, principal.user_id)
        workspaces = service.workspaces_of(session, principal.user_id)
        return UserRead(
            id=principal.user_id,
            email=user.email if user else "",
            display_name=user.display_name if user else "",
            workspaces=workspaces,
        )
