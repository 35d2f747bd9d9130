"""Starting runs: a full run is one Dagster run over the project's key range; a sample is one run per key."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from coderai_api.orchestrator import Orchestrator
from coderai_assets.errors import NotFound
from coderai_assets.models import Project, Run, RunKind, RunStatus
from coderai_assets.runs import create_run


def start_run(
    session: Session,
    orchestrator: Orchestrator,
    project: Project,
    kind: RunKind,
    sample_size: int | None,
    seed: int | None,
) -> Run:
    run, documents = create_run(session, project, kind, sample_size, seed=seed)
    keys = [d.id.hex for d in documents]
    if kind == RunKind.full:
        # The range runs over the partition order, which is the upload order: take its ends from Dagster.
        registered = orchestrator.partition_keys(project.id)
        order = {k: i for i, k in enumerate(registered)}
        missing = [k for k in keys if k not in order]
        if missing:
            orchestrator.add_documents(project.id, missing)
            registered = orchestrator.partition_keys(project.id)
            order = {k: i for i, k in enumerate(registered)}
        keys.sort(key=order.__getitem__)
        covered = registered[order[keys[0]] : order[keys[-1]] + 1]
        contiguous = covered == keys
    else:
        contiguous = False
    # Commit the run before Dagster can start on it: its workers read it from the database.
    session.commit()
    try:
        run.dagster_run_ids = orchestrator.launch_documents(project.id, run.id, keys, contiguous=contiguous)
    except Exception as exc:
        run.status, run.error = RunStatus.failed, str(exc)
        session.commit()
        raise
    return run


def get_run(session: Session, tenant_id: uuid.UUID, run_id: uuid.UUID) -> Run:
    run = session.scalars(select(Run).where(Run.id == run_id, Run.tenant_id == tenant_id)).first()
    if run is None:
        raise NotFound("No such run.", code="run_not_found")
    return run


def list_runs(session: Session, project: Project) -> list[Run]:
    return list(session.scalars(select(Run).where(Run.project_id == project.id).order_by(Run.created_at.desc())))
