"""Runs of a project: recorded here, launched by the intake sensor as one Dagster run each."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from coderai_assets.errors import NotFound
from coderai_assets.storage.models import Project, Run, RunKind
from coderai_assets.storage.runs import create_run


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
