"""Request dependencies as Annotated aliases: the principal (from the access token), the session (which owns
the transaction and works for the principal's workspace), role checks, services."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from coderai_api.auth.service import Principal, authenticate
from coderai_api.auth.tokens import InvalidToken
from coderai_api.orchestrator import Orchestrator
from coderai_assets.db import tenant_session
from coderai_assets.errors import CoderAIError
from coderai_assets.models import Role
from coderai_assets.settings import Settings
from coderai_assets.storage import FileStorage

_bearer = HTTPBearer(auto_error=False, description="Access token from POST /api/v1/auth/login")
WORKSPACE_HEADER = "X-Workspace-Id"
_RANK = {Role.viewer: 0, Role.editor: 1, Role.owner: 2}


class Forbidden(CoderAIError):
    code = "forbidden"
    status_code = 403


def get_settings_dep(connection: HTTPConnection) -> Settings:
    return connection.app.state.settings


def _workspace_header(connection: HTTPConnection) -> uuid.UUID | None:
    value = connection.headers.get(WORKSPACE_HEADER)
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise InvalidToken(f"{WORKSPACE_HEADER} is not a workspace id.") from exc


def principal_from_token(connection: HTTPConnection, token: str | None) -> Principal:
    if not token:
        raise InvalidToken("An access token is required.")
    state = connection.app.state
    return authenticate(state.session_factory, state.settings, token, _workspace_header(connection))


def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    return principal_from_token(request, credentials.credentials if credentials else None)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(role: Role) -> Callable[[Principal], Principal]:
    def check(principal: CurrentPrincipal) -> Principal:
        if _RANK[principal.role] < _RANK[role]:
            raise Forbidden(f"This needs the {role.value} role in the workspace.")
        return principal

    return check


Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Editor = Annotated[Principal, Depends(require(Role.editor))]
Owner = Annotated[Principal, Depends(require(Role.owner))]


def get_session(request: Request, principal: CurrentPrincipal) -> Iterator[Session]:
    # The request owns the transaction: services only flush; commit on success, roll back on error.
    # Every statement runs with the principal's workspace as the row-level security tenant.
    with tenant_session(request.app.state.session_factory, principal.tenant_id) as session:
        yield session


def get_orchestrator(request: Request) -> Orchestrator:
    return request.app.state.orchestrator


def get_storage(request: Request) -> FileStorage:
    return request.app.state.storage


# scope="function": commit before the response is sent, so a failed commit is never reported as success.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
OrchestratorDep = Annotated[Orchestrator, Depends(get_orchestrator)]
StorageDep = Annotated[FileStorage, Depends(get_storage)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
