"""Runs of a project: recorded here, launched by the intake sensor as one Dagster run each."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from coderai_assets.errors import NotFound
from coderai_assets.storage import runs as stored
from coderai_assets.storage.models import Project, Run, RunKind
from coderai_assets.storage.runs import ACTIVE, create_run


def start_run(
    session: Session,
    project: Project,
    kind: RunKind,
    sample_size: int | None,
    seed: int | None,
    *,
    with_quotes: bool,
) -> Run:
    """Only recorded: the request never waits on Dagster. The intake sensor launches queued runs."""
    run, _ = create_run(session, project, kind, sample_size, seed=seed, with_quotes=with_quotes)
    return run


def get_run(session: Session, tenant_id: uuid.UUID, run_id: uuid.UUID) -> Run:
    run = session.scalars(select(Run).where(Run.id == run_id, Run.tenant_id == tenant_id)).first()
    if run is None:
        raise NotFound("No such run.", code="run_not_found")
    return run


def list_runs(session: Session, project: Project) -> list[Run]:
    return list(session.scalars(select(Run).where(Run.project_id == project.id).order_by(Run.created_at.desc())))


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
    return stored.retry_run(session, get_run(session, tenant_id, run_id))
