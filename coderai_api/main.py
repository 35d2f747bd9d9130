"""The ASGI app: `uvicorn coderai_api.main:app`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import APIRouter, FastAPI
from fastapi_offline import FastAPIOffline

from coderai_api.agents.routes import router as agents_router
from coderai_api.auth.routes import router as auth_router
from coderai_api.concurrency import RequestLimit, thread_limit
from coderai_api.documents.routes import router as documents_router
from coderai_api.errors import install_error_handlers
from coderai_api.exports.routes import router as exports_router
from coderai_api.feedback.routes import router as feedback_router
from coderai_api.gate import RequestGate
from coderai_api.metrics import install_metrics
from coderai_api.projects.routes import router as projects_router
from coderai_api.prompts.routes import router as prompts_router
from coderai_api.review.routes import router as review_router
from coderai_api.runs.routes import router as runs_router
from coderai_api.runs.routes import ws_router
from coderai_api.workspaces.routes import router as workspaces_router
from coderai_assets.settings import Settings, get_settings
from coderai_assets.storage.db import make_engine, make_session_factory
from coderai_assets.storage.files import LocalFileStorage
from coderai_assets.tracing import configure_tracing, tracing_enabled


def create_app(settings: Settings | None = None) -> FastAPI:
    s = settings or get_settings()
    s.check_token_secret()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Engines are created here, never at import.
        engine = make_engine(s.database_url, pool_size=s.api_db_pool_size, max_overflow=s.api_db_max_overflow)
        # Sync routes run in this thread pool; RequestLimit admits as many requests as the pool has connections.
        to_thread.current_default_thread_limiter().total_tokens = thread_limit(s)
        app.state.settings = s
        app.state.session_factory = make_session_factory(engine)
        app.state.storage = LocalFileStorage(s.storage_dir)
        yield
        engine.dispose()

    # /docs and /redoc load Swagger UI and ReDoc from the package (fastapi-offline), not a CDN: self-hosted
    # installs are often offline.
    app = FastAPIOffline(title="CoderAI", version="0.1.0", lifespan=lifespan)
    app.add_middleware(RequestLimit)
    app.add_middleware(RequestGate)  # outermost of ours: body limits and anonymous bodies, before any reading
    install_error_handlers(app)
    api = APIRouter(prefix="/api/v1")
    uploads = APIRouter(form_limits={"max_files": s.max_files_per_upload, "max_fields": 0})
    uploads.include_router(documents_router)
    for router in (
        auth_router,
        workspaces_router,
        projects_router,
        prompts_router,
        uploads,
        runs_router,
        review_router,
        feedback_router,
        agents_router,
        exports_router,
    ):
        api.include_router(router)

    @api.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(api)
    app.include_router(ws_router)
    install_metrics(app, s)
    if configure_tracing("coderai-api") or tracing_enabled():
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, excluded_urls="metrics,api/v1/health")
    return app


app = create_app()
