"""JWT access and refresh tokens: algorithm pinned, exp/sub/jti required, distinct audiences and types so one
can never stand for the other (docs/decisions.md: tokens)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from coderai_api.errors import HTTPError
from coderai_assets.settings import Settings

ACCESS = "access"
REFRESH = "refresh"
_AUDIENCE = {ACCESS: "coderai:access", REFRESH: "coderai:refresh"}
_REQUIRED = ["exp", "iat", "nbf", "sub", "jti", "aud", "iss", "typ", "sid", "tid"]


class InvalidToken(HTTPError):
    code = "invalid_token"
    status_code = 401


class TokenExpired(InvalidToken):
    """A well-signed token past its lifetime: said apart from an invalid one, so a client knows to refresh."""

    code = "token_expired"


@dataclass(frozen=True)
class Claims:
    user_id: uuid.UUID
    workspace_id: uuid.UUID
    session_id: uuid.UUID
    jti: str
    expires_at: datetime


def issue(
    settings: Settings,
    kind: str,
    user_id: uuid.UUID,
    workspace_id: uuid.UUID,
    session_id: uuid.UUID,
    now: datetime | None = None,
    jti: str | None = None,
) -> tuple[str, Claims]:
    """`now` and `jti` given, the same token comes out each time (HS256 signatures are deterministic)."""
    now = now or datetime.now(UTC)
    lifetime = (
        timedelta(minutes=settings.access_token_minutes)
        if kind == ACCESS
        else timedelta(days=settings.refresh_token_days)
    )
    jti = jti or secrets.token_urlsafe(24)
    expires = now + lifetime
    payload = {
        "iss": settings.jwt_issuer,
        "aud": _AUDIENCE[kind],
        "typ": kind,
        "sub": str(user_id),
        "tid": str(workspace_id),
        "sid": str(session_id),
        "jti": jti,
        "iat": now,
        "nbf": now,
        "exp": expires,
    }
    token = jwt.encode(
        payload, settings.secret_key.get_secret_value(), algorithm=settings.jwt_algorithm, headers={"typ": "JWT"}
    )
    return token, Claims(user_id, workspace_id, session_id, jti, expires)


def decode(settings: Settings, token: str, kind: str) -> Claims:
    """Claims of a valid token of `kind`; InvalidToken (401) for anything else, whatever the reason."""
    try:
        payload = jwt.decode(
            token,
            settings.secret_key.get_secret_value(),
            algorithms=[settings.jwt_algorithm],
            audience=_AUDIENCE[kind],
            issuer=settings.jwt_issuer,
            options={"require": _REQUIRED},
            leeway=0,
        )
        if payload.get("typ") != kind:
            raise InvalidToken("Wrong token type.")
        return Claims(
            user_id=uuid.UUID(payload["sub"]),
            workspace_id=uuid.UUID(payload["tid"]),
            session_id=uuid.UUID(payload["sid"]),
            jti=str(payload["jti"]),
            expires_at=datetime.fromtimestamp(payload["exp"], UTC),
        )
    except InvalidToken:
        raise
    except jwt.ExpiredSignatureError as exc:  # raised only once the signature has been verified
        hint = "refresh it with the refresh token" if kind == ACCESS else "log in again"
        raise TokenExpired(f"The {kind} token has expired: {hint}.") from exc
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise InvalidToken(f"The {kind} token is not valid.") from exc


def successor_jti(settings: Settings, parent_jti: str, kind: str) -> str:
    """The id of a token that rotation issues for `parent_jti`: derived with the secret, so the same rotation
    can be answered again (a refresh's grace window) without storing the tokens."""
    digest = hmac.new(
        settings.secret_key.get_secret_value().encode(), f"{kind}:{parent_jti}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def token_hash(jti: str) -> str:
    """Refresh tokens are stored as a hash of their id: a database leak yields no usable token."""
    return hashlib.sha256(jti.encode()).hexdigest()
