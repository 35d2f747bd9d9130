"""The floor: the least an authenticated read can cost on this machine. It does the real route's core work and
nothing else: verify an HS256 access token as the API does, open a transaction as `coderai_app`, set the tenant
with `set_config`, select one project row under row-level security, answer JSON. `bench/api_floor.py` loads it
beside the real API with the same workers, so the gap between them is the project's own overhead.

Run as `uvicorn bench.floor_app:app` with the platform's settings in the environment."""

from __future__ import annotations

import uuid

import jwt
from fastapi import FastAPI, Header, HTTPException
from sqlalchemy import create_engine, text

from coderai_assets.settings import get_settings

settings = get_settings()
engine = create_engine(settings.database_url, pool_size=settings.api_db_pool_size, max_overflow=0, pool_pre_ping=False)
app = FastAPI()

_PROJECT = text(
    "select id, tenant_id, name, domain_description, extraction_unit, created_at from projects where id = :id"
)


@app.get("/projects/{project_id}")
def get_project(project_id: uuid.UUID, authorization: str = Header()) -> dict:
    try:
        claims = jwt.decode(
            authorization.removeprefix("Bearer "),
            settings.secret_key.get_secret_value(),
            algorithms=[settings.jwt_algorithm],
            audience="coderai:access",
            issuer=settings.jwt_issuer,
        )
    except jwt.PyJWTError as exc:
        raise HTTPException(401, "invalid token") from exc
    with engine.begin() as connection:
        connection.execute(text("select set_config('app.current_tenant', :t, true)"), {"t": claims["tid"]})
        row = connection.execute(_PROJECT, {"id": project_id}).mappings().first()
    if row is None:
        raise HTTPException(404, "no such project")
    return dict(row)
