from __future__ import annotations

import uuid

from pydantic import BaseModel, EmailStr, Field

from coderai_api.schemas import Body
from coderai_assets.storage.models import Role


class WorkspaceCreate(Body):
    name: str = Field(min_length=1, max_length=200)


class WorkspaceBudgetUpdate(Body):
    # USD the workspace's runs may spend a calendar month (UTC); null: the platform's default (or no cap).
    monthly_budget_usd: float | None = Field(ge=0)


class WorkspaceSpending(BaseModel):
    month: str  # YYYY-MM, UTC
    spent_usd: float
    # The workspace's own budget, or the platform's default; null: no cap.
    monthly_budget_usd: float | None


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
