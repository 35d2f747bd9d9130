"""The floor: the least an authenticated read can cost on this machine. It does the real route's core work and
nothing else: verify an HS256 access token as the API does, open a transaction as `coderai_app`, set the tenant
with `set_config`, select one project row (or one run row, or the first page of a project's documents and their
count) under row-level security, answer JSON. `bench/api_floor.py` loads it
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


_RUN = text("select * from runs where id = :id")
# The documents list's first page as the real route asks it: keyset order, text not loaded, and the count.
_DOCUMENTS = text(
    "select id, file_name, format, size_bytes, sha256, status, error_code, error_message, page_count, created_at "
    "from documents where project_id = :id and deleted_at is null order by created_at, id limit 51"
)
_COUNT = text("select count(*) from documents where project_id = :id and deleted_at is null")


def _tenant(authorization: str) -> str:
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
    return claims["tid"]


def _one(query, tenant: str, row_id: uuid.UUID) -> dict:
    with engine.begin() as connection:
        connection.execute(text("select set_config('app.current_tenant', :t, true)"), {"t": tenant})
        row = connection.execute(query, {"id": row_id}).mappings().first()
    if row is None:
        raise HTTPException(404, "not found")
    return dict(row)


@app.get("/projects/{project_id}")
def get_project(project_id: uuid.UUID, authorization: str = Header()) -> dict:
    return _one(_PROJECT, _tenant(authorization), project_id)


@app.get("/runs/{run_id}")
def get_run(run_id: uuid.UUID, authorization: str = Header()) -> dict:
    return _one(_RUN, _tenant(authorization), run_id)


@app.get("/projects/{project_id}/documents")
def list_documents(project_id: uuid.UUID, authorization: str = Header()) -> dict:
    with engine.begin() as connection:
        connection.execute(text("select set_config('app.current_tenant', :t, true)"), {"t": _tenant(authorization)})
        rows = [dict(r) for r in connection.execute(_DOCUMENTS, {"id": project_id}).mappings()]
        total = connection.scalar(_COUNT, {"id": project_id})
    return {"items": rows[:50], "total": total, "limit": 50, "next_cursor": "x" if len(rows) > 50 else None}
