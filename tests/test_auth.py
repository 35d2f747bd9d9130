"""Accounts and tokens: every malformed, foreign, expired or revoked token is 401; refresh rotation with reuse
detection; Argon2id; login throttling with Retry-After."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from coderai_api.main import create_app

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def app(database, settings):
    return create_app(settings)


@pytest.fixture
def client(app):
    with TestClient(app, base_url="http://test/api/v1") as client:
        yield client


def register(client, email=None) -> str:
    email = email or f"u-{uuid.uuid4().hex[:10]}@example.org"
    assert client.post("/auth/register", json={"email": email, "password": PASSWORD}).status_code == 202
    return email


def login(client, email) -> dict:
    response = client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()


def get_projects(client, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.get("/projects", headers=headers)


def _claims(settings, token: str) -> dict:
    return jwt.decode(
        token,
        settings.secret_key.get_secret_value(),
        algorithms=[settings.jwt_algorithm],
        options={"verify_aud": False},
    )


def _forge(settings, base: dict, *, drop=(), key=None, algorithm=None, **changes) -> str:
    payload = {k: v for k, v in {**base, **changes}.items() if k not in drop}
    return jwt.encode(
        payload, key or settings.secret_key.get_secret_value(), algorithm=algorithm or settings.jwt_algorithm
    )


def _token_cases(settings, tokens: dict) -> dict[str, str | None]:
    access = tokens["access_token"]
    good = _claims(settings, access)
    now = datetime.now(UTC)
    header, payload, signature = access.split(".")
    unsigned_none = jwt.encode(good, None, algorithm="none")
    return {
        "missing": None,
        "garbage": "not-a-jwt",
        "alg none": unsigned_none,
        "alg none, no signature part": f"{header}.{payload}.",
        "wrong algorithm (HS512, same key)": _forge(settings, good, algorithm="HS512"),
        "wrong key": _forge(settings, good, key="another-secret-of-at-least-thirty-two-bytes"),
        "expired": _forge(
            settings,
            good,
            exp=now - timedelta(seconds=5),
            iat=now - timedelta(minutes=20),
            nbf=now - timedelta(minutes=20),
        ),
        "not yet valid": _forge(settings, good, nbf=now + timedelta(minutes=5)),
        "missing exp": _forge(settings, good, drop=("exp",)),
        "missing sub": _forge(settings, good, drop=("sub",)),
        "missing jti": _forge(settings, good, drop=("jti",)),
        "missing session": _forge(settings, good, drop=("sid",)),
        "wrong audience": _forge(settings, good, aud="somebody-else"),
        "wrong issuer": _forge(settings, good, iss="evil"),
        "wrong type": _forge(settings, good, typ="refresh"),
        "refresh token as access": tokens["refresh_token"],
        "tampered signature": f"{header}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}",
        "tampered payload": f"{header}.{_forge(settings, good, sub=str(uuid.uuid4())).split('.')[1]}.{signature}",
        "unknown session": _forge(settings, good, sid=str(uuid.uuid4())),
        "other user's session": _forge(settings, good, sub=str(uuid.uuid4())),
    }


def test_token_matrix_all_401(client, settings):
    tokens = login(client, register(client))
    assert get_projects(client, tokens["access_token"]).status_code == 200  # the control
    cases = _token_cases(settings, tokens)
    for name, token in cases.items():
        response = get_projects(client, token)
        assert response.status_code == 401, name
        # An expired token says so, so that a client knows to refresh; anything else is just not valid.
        assert response.json()["code"] == ("token_expired" if name == "expired" else "invalid_token"), name
        assert response.headers["WWW-Authenticate"] == "Bearer", name
    assert len(cases) == 20


def test_logout_revokes_access_and_refresh(client):
    tokens = login(client, register(client))
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.post("/auth/logout", headers=headers).status_code == 204
    assert get_projects(client, tokens["access_token"]).status_code == 401
    assert client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401


def test_deleted_user_is_401(client, settings):
    email = register(client)
    tokens = login(client, email)
    engine = create_engine(settings.migration_database_url)
    with engine.begin() as connection:
        connection.execute(text("delete from users where email = :e"), {"e": email})
    engine.dispose()
    assert get_projects(client, tokens["access_token"]).status_code == 401


def test_refresh_rotates_and_reuse_revokes_the_family(client, settings):
    tokens = login(client, register(client))
    first = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert first.status_code == 200
    successor = first.json()
    assert successor["refresh_token"] != tokens["refresh_token"]
    assert get_projects(client, successor["access_token"]).status_code == 200
    # The grace window for a second refresh (two tabs) has passed: the token was used long ago.
    engine = create_engine(settings.migration_database_url)
    with engine.begin() as connection:
        connection.execute(
            text("update refresh_tokens set used_at = used_at - interval '1 hour' where used_at is not null")
        )
    engine.dispose()
    # The old refresh token again: refused, and its whole family with it.
    reused = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert reused.status_code == 401
    assert client.post("/auth/refresh", json={"refresh_token": successor["refresh_token"]}).status_code == 401
    assert get_projects(client, successor["access_token"]).status_code == 401
    assert get_projects(client, tokens["access_token"]).status_code == 401


def test_access_token_is_not_a_refresh_token(client):
    tokens = login(client, register(client))
    assert client.post("/auth/refresh", json={"refresh_token": tokens["access_token"]}).status_code == 401


def test_passwords_are_argon2id_at_owasp_parameters(client, settings):
    email = register(client)
    engine = create_engine(settings.migration_database_url)
    with engine.connect() as connection:
        stored = connection.scalar(text("select password_hash from users where email = :e"), {"e": email})
    engine.dispose()
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in stored


def test_login_is_throttled_per_account_with_retry_after(client, settings):
    email = register(client)
    for _ in range(settings.login_max_failures_per_account):
        assert client.post("/auth/login", json={"email": email, "password": "wrong password"}).status_code == 401
    blocked = client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert blocked.status_code == 429 and blocked.json()["code"] == "too_many_attempts"
    assert 0 < int(blocked.headers["Retry-After"]) <= settings.login_window_seconds


def test_login_is_throttled_per_address(client, settings):
    # Different accounts from one address: the address limit trips.
    for i in range(settings.login_max_failures_per_address):
        client.post("/auth/login", json={"email": f"nobody-{i}-{uuid.uuid4().hex[:6]}@example.org", "password": "x"})
    blocked = client.post("/auth/login", json={"email": register(client), "password": PASSWORD})
    assert blocked.status_code == 429 and "Retry-After" in blocked.headers
    engine = create_engine(settings.migration_database_url)
    with engine.begin() as connection:  # leave the address usable for the other tests
        connection.execute(text("delete from login_attempts where key like 'address:%'"))
    engine.dispose()


def test_unknown_fields_cannot_set_tenant_or_role(client):
    email = register(client)
    tokens = login(client, email)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    response = client.post("/projects", headers=headers, json={"name": "x", "tenant_id": str(uuid.uuid4())})
    assert response.status_code == 422
    response = client.post("/auth/register", json={"email": "r" + email, "password": PASSWORD, "role": "owner"})
    assert response.status_code == 422


def test_public_routes_need_no_token(client):
    assert client.get("/health").status_code == 200
    assert client.get("http://test/openapi.json").status_code == 200
