"""Workspaces (tenants), their members and invitations. Owners manage members; everybody sees the list."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from coderai_api.auth import tokens
from coderai_api.auth.service import Principal, normalise_email, workspaces_of
from coderai_api.quotas import QuotaExceeded
from coderai_api.workspaces.schemas import MemberRead
from coderai_assets.domain.deletion import ask_workspace_deletion
from coderai_assets.errors import Conflict, InvalidInput, NotFound
from coderai_assets.pipeline.spending import this_month
from coderai_assets.settings import Settings
from coderai_assets.storage.db import tenant_session
from coderai_assets.storage.models import (
    Invitation,
    MailMessage,
    Membership,
    Role,
    Tenant,
    utcnow,
)
from coderai_assets.storage.repositories import accounts


def check_workspace(principal: Principal, workspace_id: uuid.UUID) -> None:
    # Another workspace is not found, whatever the caller's role there: pick it per request to act in it.
    if workspace_id != principal.tenant_id:
        raise NotFound("No such workspace.", code="workspace_not_found")


def delete_workspace(session: Session, principal: Principal) -> None:
    if len(workspaces_of(session, principal.user_id)) < 2:
        raise Conflict(
            "This is your only workspace; delete your account instead (DELETE /auth/me), or create another first.",
            code="last_workspace",
        )
    accounts.lock_workspace(session, principal.tenant_id)
    tenant = session.get(Tenant, principal.tenant_id)
    if tenant is not None:
        ask_workspace_deletion(session, tenant)


def create_workspace(factory: sessionmaker[Session], user_id: uuid.UUID, name: str, *, limit: int) -> uuid.UUID:
    """A workspace the user owns; at most `limit` per account (each has quotas of its own, so one account
    creating many would multiply them). Counted under the user row's lock: two creates at once cannot both pass."""
    workspace_id = uuid.uuid4()
    with tenant_session(factory, workspace_id) as session:
        accounts.lock_user(session, user_id)
        owned = sum(1 for w in workspaces_of(session, user_id) if w.role == Role.owner)
        if owned >= limit:
            raise QuotaExceeded(f"The account owns {owned} workspaces, its quota; ask an operator for more.")
        session.add(Tenant(id=workspace_id, name=name))
        session.flush()
        session.add(Membership(tenant_id=workspace_id, user_id=user_id, role=Role.owner))
    return workspace_id


def list_members(session: Session) -> list[MemberRead]:
    members = accounts.members(session)
    invited = accounts.open_invitations(session)
    return [MemberRead(user_id=m.user_id, email=m.email, role=m.role, status="member") for m in members] + [
        MemberRead(user_id=None, email=i.email, role=i.role, status="invited") for i in invited
    ]


def invite(session: Session, settings: Settings, principal: Principal, email: str, role: Role) -> MemberRead:
    email = normalise_email(email)
    user = accounts.user_by_email(session, email)
    if user is not None:
        if session.get(Membership, (principal.tenant_id, user.id)) is not None:
            raise Conflict("Already a member.", code="already_member")
        session.add(Membership(tenant_id=principal.tenant_id, user_id=user.id, role=role))
        session.flush()
        return MemberRead(user_id=user.id, email=email, role=role, status="member")
    # A single-use token, mailed to the address: only its holder can accept (POST /auth/invitations/accept).
    # Inviting again replaces the token, so an earlier link stops working.
    token = secrets.token_urlsafe(32)
    invitation = accounts.invitation_for(session, email)
    if invitation is None:
        invitation = Invitation(tenant_id=principal.tenant_id, email=email, invited_by=principal.user_id, role=role)
        session.add(invitation)
    invitation.role, invitation.accepted_at = role, None
    invitation.token_hash = tokens.token_hash(token)
    invitation.expires_at = utcnow() + timedelta(days=settings.invitation_days)
    workspace = session.get(Tenant, principal.tenant_id)
    session.add(
        MailMessage(
            tenant_id=principal.tenant_id,
            to_email=email,
            subject=f"You are invited to {workspace.name if workspace else 'a workspace'} on CoderAI"[:200],
            body=(
                f"You are invited to join the workspace as {role.value}. Open this link within "
                f"{settings.invitation_days} days, logged in to CoderAI (register first with any address):\n\n"
                f"{settings.public_url.rstrip('/')}/invitations/accept?token={token}\n\n"
                f"or send the token to POST /api/v1/auth/invitations/accept. If you did not expect this, ignore it."
            ),
        )
    )
    session.flush()
    return MemberRead(user_id=None, email=email, role=role, status="invited")


def _membership(session: Session, principal: Principal, user_id: uuid.UUID) -> Membership:
    membership = session.get(Membership, (principal.tenant_id, user_id))
    if membership is None:
        raise NotFound("No such member.", code="member_not_found")
    return membership


def _keep_an_owner(session: Session, membership: Membership) -> None:
    # The owners' rows locked: two owners demoting each other at once are served one after the other, and the
    # second sees one owner left (counted without a lock, both saw two and the workspace kept none).
    owners = len(accounts.lock_owners(session))
    if membership.role == Role.owner and owners == 1:
        raise InvalidInput("A workspace keeps at least one owner.", code="last_owner")


def change_role(session: Session, principal: Principal, user_id: uuid.UUID, role: Role) -> MemberRead:
    membership = _membership(session, principal, user_id)
    if role != Role.owner:
        _keep_an_owner(session, membership)
    membership.role = role
    session.flush()
    email = accounts.email_of(session, user_id)
    return MemberRead(user_id=user_id, email=email, role=role, status="member")


def remove_member(session: Session, principal: Principal, user_id: uuid.UUID) -> None:
    membership = _membership(session, principal, user_id)
    _keep_an_owner(session, membership)
    session.delete(membership)
    session.flush()


def spending(session: Session, settings: Settings, tenant_id: uuid.UUID) -> dict:
    month = this_month()
    spent = accounts.month_spent(session, tenant_id, month)
    tenant = session.get(Tenant, tenant_id)
    own = tenant.monthly_budget_usd if tenant is not None else None
    return {
        "month": month.strftime("%Y-%m"),
        "spent_usd": round(spent or 0.0, 6),
        "monthly_budget_usd": own if own is not None else settings.workspace_monthly_budget_usd,
    }


def set_budget(session: Session, settings: Settings, tenant_id: uuid.UUID, budget: float | None) -> dict:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("No such workspace.", code="workspace_not_found")
    tenant.monthly_budget_usd = budget
    session.flush()
    return spending(session, settings, tenant_id)
