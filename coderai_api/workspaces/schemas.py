from __future__ import annotations

import uuid

from pydantic import BaseModel, EmailStr, Field

from coderai_api.schemas import Body
from coderai_assets.storage.models import Role


class WorkspaceCreate(Body):
    name: str = Field(min_length=1, max_length=200)


class MemberInvite(Body):
    email: EmailStr
    role: Role = Role.viewer


class MemberUpdate(Body):
    role: Role


class MemberRead(BaseModel):
    user_id: uuid.UUID | None
    email: str
    role: Role
    status: str  # member, invited
