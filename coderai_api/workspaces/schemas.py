from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from coderai_assets.storage.models import Role


class WorkspaceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)


class MemberInvite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailStr
    role: Role = Role.viewer


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role


class MemberRead(BaseModel):
    user_id: uuid.UUID | None
    email: str
    role: Role
    status: str  # member, invited
