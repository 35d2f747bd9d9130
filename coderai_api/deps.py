"""Request dependencies as Annotated aliases: the session (which owns the transaction), the tenant, the services."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from coderai_api.orchestrator import Orchestrator
from coderai_assets.db import tenant_session
from coderai_assets.models import Tenant
from coderai_assets.settings import Settings
from coderai_assets.storage import FileStorage


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def current_tenant(connection: HTTPConnection) -> uuid.UUID:
    """The workspace of the request (or WebSocket). Until accounts exist every request uses the default one."""
    state = connection.app.state
    cached = getattr(state, "default_tenant_id", None)
    if cached is None:
        with tenant_session(state.session_factory, None) as session:
            name = state.settings.default_tenant_name
            tenant = session.scalars(select(Tenant).where(Tenant.name == name)).first()
            if tenant is None:
                tenant = Tenant(name=name)
                session.add(tenant)
                session.flush()
            cached = state.default_tenant_id = tenant.id
    return cached


TenantId = Annotated[uuid.UUID, Depends(current_tenant)]


def get_session(request: Request, tenant_id: TenantId) -> Iterator[Session]:
    # The request owns the transaction: services only flush; commit on success, roll back on error.
    with tenant_session(request.app.state.session_factory, tenant_id) as session:
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
