"""Runs of a project: recorded here, launched by the intake sensor as one Dagster run each."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from coderai_api.pagination import PageRequest
from coderai_assets.domain import runs as stored
from coderai_assets.domain.runs import ACTIVE, choose_documents, create_run
from coderai_assets.engine.model_limits import ModelLimits, model_label, resolve_limits
from coderai_assets.errors import NotFound
from coderai_assets.pipeline import estimate
from coderai_assets.settings import Settings
from coderai_assets.storage import repositories
from coderai_assets.storage.models import Project, Run, RunKind, RunStatus
from coderai_assets.storage.repositories import runs
from coderai_assets.tracing import current_context_carrier


def start_run(
    session: Session,
    project: Project,
    kind: RunKind,
    sample_size: int | None,
    seed: int | None,
    *,
    with_quotes: bool,
    max_cost_usd: float | None = None,
) -> Run:
    """Only recorded: the request never waits on Dagster. The intake sensor launches queued runs."""
    run, _ = create_run(
        session, project, kind, sample_size, seed=seed, with_quotes=with_quotes, max_cost_usd=max_cost_usd
    )
    run.trace_context = current_context_carrier() or None  # its Dagster runs continue this request's trace
    return run


def get_run(session: Session, tenant_id: uuid.UUID, run_id: uuid.UUID) -> Run:
    run = runs.get(session, tenant_id, run_id)
    if run is None:
        raise NotFound("No such run.", code="run_not_found")
    return run


def list_runs(
    session: Session, project: Project, page: PageRequest, status: RunStatus | None, kind: RunKind | None
) -> dict:
    query = runs.of_project_query(project, status=status, kind=kind)
    found = repositories.keyset_page(session, query, name="runs", scalars=True, **page.args)
    return page.answer(found, lambda run: run_view(session, run))


def run_view(session: Session, run: Run) -> dict:
    """The run as GET /runs/{id} shows it: while it is active, the counters come from its documents' rows, which
    move with every committed chunk and stage, with the progress of each stage and an estimate of the time left."""
    view = {c.key: getattr(run, c.key) for c in Run.__table__.columns}
    if run.status in ACTIVE:
        progress = stored.run_progress(session, run)
        view.update({k: progress[k] for k in ("documents_failed", "llm_calls", "cached_calls", "input_tokens")})
        view.update(
            output_tokens=progress["output_tokens"],
            documents_done=progress["documents_validated"],
            cost_usd=progress["cost_usd"],
            progress=progress,
        )
    return view


def cancel_run(session: Session, tenant_id: uuid.UUID, run_id: uuid.UUID) -> Run:
    return stored.cancel_run(session, get_run(session, tenant_id, run_id))


def retry_run(session: Session, tenant_id: uuid.UUID, run_id: uuid.UUID) -> Run:
    run = stored.retry_run(session, get_run(session, tenant_id, run_id))
    run.trace_context = current_context_carrier() or run.trace_context
    return run


def estimate_run(session: Session, settings: Settings, project: Project, kind: RunKind, sample_size, seed) -> dict:
    documents = choose_documents(session, project, kind, sample_size, seed)
    return estimate.estimate_run(
        session,
        project,
        [d.id for d in documents],
        limits=model_limits(settings),
        model_name=model_label(settings),
        with_quotes=settings.request_quotes,
        chunk_chars=settings.chunk_chars,
        overlap=settings.chunk_overlap_chars,
        max_output_tokens=settings.llm_max_output_tokens,
    )


_LIMITS: dict[tuple, ModelLimits] = {}


def model_limits(settings: Settings) -> ModelLimits:
    """Resolved once per API process and model settings (it may ask the model's server)."""
    key = (
        settings.llm_provider,
        model_label(settings),
        settings.llm_base_url,
        settings.llm_context_tokens,
        settings.llm_input_price_per_mtok,
        settings.llm_output_price_per_mtok,
    )
    if key not in _LIMITS:
        _LIMITS[key] = resolve_limits(settings)
    return _LIMITS[key]
