"""Accounts, logins, token rotation and revocation. Services flush; the caller owns the transaction, except where
a revocation must survive the error that reports it (it commits on its own session then)."""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from coderai_api.auth import tokens
from coderai_api.auth.passwords import hash_password, needs_rehash, verify_password
from coderai_api.auth.schemas import TokenPair, WorkspaceRead
from coderai_api.auth.tokens import InvalidToken
from coderai_api.errors import HTTPError
from coderai_assets.domain.deletion import ask_workspace_deletion
from coderai_assets.settings import Settings
from coderai_assets.storage.db import remember_tenant, set_tenant, tenant_session
from coderai_assets.storage.models import AuthSession, LoginAttempt, Membership, RefreshToken, Role, Tenant, User
from coderai_assets.storage.repositories import accounts


class TooManyAttempts(HTTPError):
    code = "too_many_attempts"
    status_code = 429

    def __init__(self, retry_after: int):
        super().__init__(f"Too many failed logins; try again in {retry_after} s.")
        self.retry_after = retry_after


class BadCredentials(HTTPError):
    code = "invalid_credentials"
    status_code = 401


class NotAMember(HTTPError):
    code = "not_a_member"
    status_code = 403


@dataclass(frozen=True)
class Principal:
    """Who is asking, in which workspace, with which role."""

    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: Role
    session_id: uuid.UUID


def workspaces_of(session: Session, user_id: uuid.UUID) -> list[WorkspaceRead]:
    # Memberships of every workspace are behind row-level security; this function returns only the caller's.
    rows = session.execute(text("select tenant_id, role, name from coderai_user_workspaces(:u)"), {"u": user_id})
    return [WorkspaceRead(id=r.tenant_id, name=r.name, role=Role(r.role)) for r in rows]


def normalise_email(email: str) -> str:
    return email.strip().lower()


def register(factory: sessionmaker[Session], email: str, password: str, display_name: str, workspace_name: str) -> None:
    """A user with a workspace of their own (owner). The answer is the same whether the address had an account or
    not (and takes as long: the password is hashed either way), so registration tells nobody which addresses are
    users; two registrations of one address at once make one account, never an error. Invitations to the address
    are not accepted here: only the token mailed to it proves the address is theirs (`accept_invitation`)."""
    email = normalise_email(email)
    password_hash = hash_password(password)
    workspace_id = uuid.uuid4()
    try:
        # The new workspace's id is the transaction's tenant, so its rows pass the row-level security checks.
        with tenant_session(factory, workspace_id) as session:
            if accounts.email_taken(session, email):
                return
            user = User(email=email, password_hash=password_hash, display_name=display_name)
            session.add(user)
            session.add(Tenant(id=workspace_id, name=workspace_name or f"{display_name or email}'s workspace"))
            session.flush()
            session.add(Membership(tenant_id=workspace_id, user_id=user.id, role=Role.owner))
            session.flush()
    except IntegrityError:
        return  # the same address registered at the same moment: that registration made the account


class InvitationNotFound(HTTPError):
    code = "invitation_not_found"
    status_code = 404


def accept_invitation(factory: sessionmaker[Session], user_id: uuid.UUID, token: str) -> WorkspaceRead:
    """Joins the invitation's workspace with its role; the token works once, before it expires."""
    with tenant_session(factory, None) as session:
        row = session.execute(
            text("select workspace_id, member_role, workspace_name from coderai_accept_invitation(:u, :h)"),
            {"u": user_id, "h": tokens.token_hash(token)},
        ).first()
    if row is None:
        raise InvitationNotFound("No such invitation: the link is wrong, used or expired.")
    return WorkspaceRead(id=row.workspace_id, name=row.workspace_name, role=Role(row.member_role))


@dataclass(frozen=True)
class ThrottleKey:
    key: str
    free: int  # failures in the window before a delay applies
    max_delay: int  # seconds; the delay doubles with each further failure up to this


def client_key(address: str) -> str:
    """The unit a client is throttled by: an IPv4 address, an IPv6 /64 (one subscriber's whole prefix; throttling
    single IPv6 addresses lets a client rotate through 2^64 of them), or the raw value if it is no address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:100]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def throttle_keys(settings: Settings, email: str, address: str) -> list[ThrottleKey]:
    """An account from one client, a client across accounts, and an account from anywhere. The last only ever
    slows logins down (a minute at most), so nobody can lock another's account: failures from elsewhere do not
    touch the owner's own client key."""
    client = client_key(address)
    window = settings.login_window_seconds
    return [
        ThrottleKey(f"account:{email}|{client}", settings.login_max_failures_per_account, window),
        ThrottleKey(f"address:{client}", settings.login_max_failures_per_address, window),
        ThrottleKey(f"account:{email}", settings.login_max_failures_per_account * 10, 60),
    ]


def claim_attempt(session: Session, settings: Settings, keys: list[ThrottleKey]) -> list[int]:
    """Counts and records the attempt atomically: under a transaction lock per key, the failures in the window are
    counted, a delay is enforced (429 with Retry-After), and the attempt is recorded as a failure *before* the
    password is checked (and removed if it is right), so attempts in parallel each count all the others."""
    now = datetime.now(UTC)
    since = now - timedelta(seconds=settings.login_window_seconds)
    for name in sorted(k.key for k in keys):  # one order, so two logins never wait on each other's locks
        session.execute(text("select pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": name})
    wait = 0
    for key in keys:
        count, latest = accounts.attempts_since(session, key.key, since)
        if count >= key.free and latest is not None:  # no attempt yet: nothing to wait for
            delay = min(key.max_delay, 2 ** min(count - key.free, 20))
            wait = max(wait, int((latest + timedelta(seconds=delay) - now).total_seconds() + 0.999))
    if wait > 0:
        raise TooManyAttempts(wait)
    attempts = [LoginAttempt(key=key.key) for key in keys]
    session.add_all(attempts)
    session.flush()
    return [a.id for a in attempts]


def login(
    factory: sessionmaker[Session],
    settings: Settings,
    email: str,
    password: str,
    address: str,
    workspace_id: uuid.UUID | None,
) -> TokenPair:
    email = normalise_email(email)
    keys = throttle_keys(settings, email, address)
    with tenant_session(factory, None) as session:
        claimed = claim_attempt(session, settings, keys)
        user = accounts.user_by_email(session, email)
        password_hash = user.password_hash if user else None
    # Committed: the attempt counts as a failure while the (slow) hash is checked, outside any lock.
    ok = verify_password(password_hash, password) and user is not None
    if not ok or user is None:
        raise BadCredentials("Wrong email or password.")
    with tenant_session(factory, None) as session:
        # Right: this attempt was no failure, and this client's failures for the account are forgiven.
        session.execute(delete(LoginAttempt).where(LoginAttempt.id.in_(claimed)))
        session.execute(delete(LoginAttempt).where(LoginAttempt.key == keys[0].key))
        if password_hash and needs_rehash(password_hash):  # the hashing parameters changed since it was made
            session.execute(update(User).where(User.id == user.id).values(password_hash=hash_password(password)))
        memberships = workspaces_of(session, user.id)
    if not memberships:
        raise NotAMember("The account belongs to no workspace.")
    chosen = memberships[0].id if workspace_id is None else workspace_id
    if chosen not in {m.id for m in memberships}:
        raise NotAMember("The account is not a member of that workspace.")
    with tenant_session(factory, None) as session:
        auth = AuthSession(user_id=user.id)
        session.add(auth)
        session.flush()
        return _pair(session, settings, user.id, chosen, auth.id)


def _pair(
    session: Session,
    settings: Settings,
    user_id: uuid.UUID,
    workspace_id: uuid.UUID,
    session_id: uuid.UUID,
    *,
    rotation: tuple[str, datetime] | None = None,
    store: bool = True,
) -> TokenPair:
    """A new access and refresh token. `rotation` (the used refresh token's id and when it was used) makes the
    pair a function of it, the same every time; `store=False` answers a pair that is stored already."""
    now, parent = (rotation[1], rotation[0]) if rotation else (None, None)

    def issue(kind: str) -> tuple[str, tokens.Claims]:
        jti = tokens.successor_jti(settings, parent, kind) if parent else None
        return tokens.issue(settings, kind, user_id, workspace_id, session_id, now=now, jti=jti)

    access, _ = issue(tokens.ACCESS)
    refresh, claims = issue(tokens.REFRESH)
    if store:
        session.add(
            RefreshToken(
                jti_hash=tokens.token_hash(claims.jti),
                session_id=session_id,
                user_id=user_id,
                workspace_id=workspace_id,
                expires_at=claims.expires_at,
            )
        )
    return TokenPair(
        access_token=access,
        refresh_token=refresh,
        expires_in=settings.access_token_minutes * 60,
        workspace_id=workspace_id,
    )


def revoke_session(factory: sessionmaker[Session], session_id: uuid.UUID, reason: str) -> None:
    with tenant_session(factory, None) as session:
        session.execute(
            update(AuthSession)
            .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=func.now(), revoked_reason=reason)
        )


def refresh(factory: sessionmaker[Session], settings: Settings, token: str) -> TokenPair:
    """Rotate: the token is used once; a second use revokes its whole family (session). Within
    `refresh_grace_seconds` of the first use, a second refresh (two tabs, a retry after a lost response) is
    answered with the same successor pair instead."""
    claims = tokens.decode(settings, token, tokens.REFRESH)
    digest = tokens.token_hash(claims.jti)
    now = datetime.now(UTC).replace(microsecond=0)  # the successor's iat: whole seconds, so it can be re-made
    with tenant_session(factory, None) as session:
        row = session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.jti_hash == digest, RefreshToken.used_at.is_(None), RefreshToken.expires_at > func.now()
            )
            .values(used_at=now)
            .returning(RefreshToken.session_id, RefreshToken.user_id, RefreshToken.workspace_id, RefreshToken.used_at)
        ).first()
        fresh = row is not None
        if row is None:
            # Waited for the row lock of a refresh of the same token, or came later: within the grace window
            # the successor pair is answered again (not stored again).
            used = accounts.refresh_token_use(session, digest)
            grace = timedelta(seconds=settings.refresh_grace_seconds)
            if used is not None and used.used_at is not None and now - used.used_at <= grace:
                row = used
        auth = session.get(AuthSession, claims.session_id)
        user = session.get(User, row.user_id) if row is not None else None
        if row is not None and auth is not None and auth.revoked_at is None and user is not None:
            member = any(w.id == row.workspace_id for w in workspaces_of(session, row.user_id))
            if member:
                return _pair(
                    session,
                    settings,
                    row.user_id,
                    row.workspace_id,
                    row.session_id,
                    rotation=(claims.jti, row.used_at),
                    store=fresh,
                )
        known = accounts.refresh_token_session(session, digest)
    if known is not None and row is None:
        # A used token came back: someone holds a copy. End the whole family (docs/decisions.md: tokens).
        revoke_session(factory, known, "refresh_reuse")
    raise InvalidToken("The refresh token is not valid.")


_PRINCIPAL = text(
    """
    SELECT s.user_id, s.revoked_at IS NULL AS live, u.id IS NOT NULL AS user_exists, w.tenant_id, w.role,
           -- The chosen workspace becomes the transaction's tenant in the same round trip, if the user is a
           -- member with a live session; the checks below reject the request otherwise, so it never runs as it.
           CASE WHEN w.tenant_id = :chosen AND s.revoked_at IS NULL AND u.id IS NOT NULL
                THEN set_config('app.current_tenant', CAST(:chosen AS text), true) END AS tenant_set
    FROM auth_sessions s
    LEFT JOIN users u ON u.id = s.user_id
    LEFT JOIN LATERAL coderai_user_workspaces(s.user_id) w ON true
    WHERE s.id = :session_id
    """
)


def authenticate(session: Session, settings: Settings, token: str, workspace_id: uuid.UUID | None) -> Principal:
    """The principal of an access token: the session must be live, the user exist and be a member. One query, in
    the caller's transaction, which also makes the principal's workspace the transaction's tenant: a request
    needs one connection and one round trip to know who is asking."""
    claims = tokens.decode(settings, token, tokens.ACCESS)
    chosen = workspace_id or claims.workspace_id
    rows = session.execute(_PRINCIPAL, {"session_id": claims.session_id, "chosen": chosen}).all()
    if not rows or not rows[0].live or rows[0].user_id != claims.user_id:
        raise InvalidToken("The session has ended.")
    if not rows[0].user_exists:
        raise InvalidToken("The account no longer exists.")
    roles = {r.tenant_id: Role(r.role) for r in rows if r.tenant_id is not None}
    if chosen not in roles:
        raise NotAMember("Not a member of this workspace.")
    remember_tenant(session, chosen)
    return Principal(claims.user_id, chosen, roles[chosen], claims.session_id)


class SoleOwner(HTTPError):
    code = "sole_owner"
    status_code = 409


def delete_account(factory: sessionmaker[Session], user_id: uuid.UUID, password: str) -> list[uuid.UUID]:
    """Deletes the account (its password confirms it): its sessions, tokens and memberships go with it, and the
    workspaces it was the only member of are deleted (domain/deletion.py). Its verdicts in other workspaces stay,
    no longer tied to anyone. Refused (`sole_owner`) while it is the only owner of a workspace others belong to:
    make another member owner first. Returns the workspaces deleted with it."""
    with tenant_session(factory, None) as session:
        accounts.lock_user(session, user_id)
        user = session.get(User, user_id)
        if user is None or not verify_password(user.password_hash, password):
            raise BadCredentials("Wrong password.")
        alone = []
        for workspace in workspaces_of(session, user_id):
            set_tenant(session, workspace.id)
            others = [m for m in accounts.members(session) if m.user_id != user_id]
            if not others:
                alone.append(workspace.id)
            elif workspace.role == Role.owner and not any(m.role == Role.owner for m in others):
                raise SoleOwner(f"You are the only owner of {workspace.name!r}; make another member owner first.")
        for tenant_id in alone:
            set_tenant(session, tenant_id)
            tenant = session.get(Tenant, tenant_id)
            if tenant is not None:
                ask_workspace_deletion(session, tenant)
        session.execute(delete(User).where(User.id == user_id))
    return alone
