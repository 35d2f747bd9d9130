"""Accounts: users, their workspaces and memberships, invitations, sessions and refresh tokens, login attempts,
and a workspace's spending."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coderai_assets.storage.models import (
    Invitation,
    LoginAttempt,
    MailMessage,
    Membership,
    RefreshToken,
    Role,
    Tenant,
    User,
    WorkspaceSpend,
)


def user_by_email(session: Session, email: str) -> User | None:
    """`email` normalised (lower case): addresses are one account whatever their case."""
    return session.scalars(select(User).where(func.lower(User.email) == email)).first()


def email_taken(session: Session, email: str) -> bool:
    return session.scalar(select(User.id).where(func.lower(User.email) == email)) is not None


def email_of(session: Session, user_id: uuid.UUID) -> str:
    return session.scalar(select(User.email).where(User.id == user_id)) or ""


def lock_user(session: Session, user_id: uuid.UUID) -> None:
    """The user's row, held to the end of the transaction: two workspaces created at once count one after the
    other."""
    session.execute(select(User.id).where(User.id == user_id).with_for_update())


def members(session: Session) -> list[Any]:
    """The session's workspace's members (user_id, email, role), oldest first."""
    return list(
        session.execute(
            select(Membership.user_id, User.email, Membership.role)
            .join(User, User.id == Membership.user_id)
            .order_by(Membership.created_at)
        ).all()
    )


def open_invitations(session: Session) -> list[Invitation]:
    return list(session.scalars(select(Invitation).where(Invitation.accepted_at.is_(None))).all())


def invitation_for(session: Session, email: str) -> Invitation | None:
    return session.scalars(select(Invitation).where(func.lower(Invitation.email) == email)).first()


def lock_owners(session: Session) -> list[uuid.UUID]:
    """The workspace's owners, their memberships locked: two owners demoting each other go one after the other."""
    return list(session.scalars(select(Membership.user_id).where(Membership.role == Role.owner).with_for_update()))


def month_spent(session: Session, tenant_id: uuid.UUID, month: date) -> float | None:
    return session.scalar(
        select(WorkspaceSpend.spent_usd).where(WorkspaceSpend.tenant_id == tenant_id, WorkspaceSpend.month == month)
    )


def attempts_since(session: Session, key: str, since: datetime) -> tuple[int, datetime | None]:
    """Login attempts under `key` (an account, an address) since then, and the latest."""
    count, latest = session.execute(
        select(func.count(), func.max(LoginAttempt.attempted_at)).where(
            LoginAttempt.key == key, LoginAttempt.attempted_at > since
        )
    ).one()
    return count, latest


def refresh_token_use(session: Session, digest: str) -> Any:
    """A refresh token by the hash of its id: its session, user, workspace and when it was used (or None)."""
    return session.execute(
        select(RefreshToken.session_id, RefreshToken.user_id, RefreshToken.workspace_id, RefreshToken.used_at).where(
            RefreshToken.jti_hash == digest
        )
    ).first()


def refresh_token_session(session: Session, digest: str) -> uuid.UUID | None:
    return session.scalar(select(RefreshToken.session_id).where(RefreshToken.jti_hash == digest))


def lock_workspace(session: Session, tenant_id: uuid.UUID) -> None:
    """The workspace's row, held to the end of the transaction: quotas are counted one request at a time."""
    session.execute(select(Tenant.id).where(Tenant.id == tenant_id).with_for_update())


def unsent_mail(session: Session) -> list[MailMessage]:
    """Mail not sent yet, locked; mail another sender holds is skipped."""
    return list(
        session.scalars(select(MailMessage).where(MailMessage.sent_at.is_(None)).with_for_update(skip_locked=True))
    )


def monthly_budget(session: Session, tenant_id: uuid.UUID) -> float | None:
    """The workspace's own monthly budget (None: the default applies)."""
    return session.scalar(select(Tenant.monthly_budget_usd).where(Tenant.id == tenant_id))
