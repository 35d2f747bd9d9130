from __future__ import annotations

import uuid

from pydantic import BaseModel, EmailStr, Field

from coderai_api.schemas import Body
from coderai_assets.storage.models import Role


class RegisterBody(Body):
    email: EmailStr
    password: str = Field(min_length=8, max_length=1024)
    display_name: str = Field(default="", max_length=200)
    workspace_name: str = Field(default="", max_length=200)


class LoginBody(Body):
    email: EmailStr
    password: str = Field(max_length=1024)
    workspace_id: uuid.UUID | None = None


class AccountDelete(Body):
    password: str = Field(max_length=1024)


class RefreshBody(Body):
    refresh_token: str = Field(max_length=4096)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
    workspace_id: uuid.UUID


class WorkspaceRead(BaseModel):
    id: uuid.UUID
    name: str
    role: Role


class UserRead(BaseModel):
    id: uuid.UUID
    email: str
    display_name: str
    workspaces: list[WorkspaceRead] = []


class InvitationAccept(Body):
    token: str = Field(min_length=16, max_length=200)


class Registered(BaseModel):
    status: str = "accepted"
    message: str = "If the address had no account, it has one now, with a workspace of its own: log in."
