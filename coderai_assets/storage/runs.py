"""Creating runs and finding the run a Dagster materialisation belongs to. Shared by the facade, the sensors and the
assets. A run is only recorded here; the intake sensor launches it."""

from __future__ import annotations

import random
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from coderai_assets.errors import InvalidInput
from coderai_assets.storage.models import Document, Project, Run, RunDocument, RunKind, RunStatus, utcnow
from coderai_assets.storage.specs import ensure_prompt_version


def create_run(
    session: Session,
    project: Project,
    kind: RunKind,
    sample_size: int | None = None,
    *,
    with_quotes: bool,
    seed: int | None = None,
) -> tuple[Run, list[Document]]:
    """A run over all the project's documents, or over a random sample of them."""
    documents = list(
        session.scalars(
            select(Document).where(Document.project_id == project.id).order_by(Document.created_at, Document.id)
        ).all()
    )
    if not documents:
        raise InvalidInput("The project has no documents to run on.", code="no_documents")
    if kind == RunKind.sample:
        if not sample_size or sample_size < 1:
            raise InvalidInput("A sample run needs sample_size >= 1.", code="invalid_sample_size")
        chosen = random.Random(seed).sample(documents, min(sample_size, len(documents)))
        documents = sorted(chosen, key=lambda d: (d.created_at, d.id))
    version = ensure_prompt_version(session, project, with_quotes)
    run = Run(
        tenant_id=project.tenant_id,
        project_id=project.id,
        kind=kind,
        sample_size=sample_size,
        prompt_version_id=version.id,
        documents_total=len(documents),
        status=RunStatus.queued,
    )
    session.add(run)
    session.flush()
    for document in documents:
        session.add(RunDocument(run_id=run.id, document_id=document.id, tenant_id=project.tenant_id))
    session.flush()
    return run, documents


def run_for_materialisation(
    session: Session, project: Project, tagged_run_id: str | None, dagster_run_id: str, *, with_quotes: bool
) -> Run:
    """The app run a Dagster run works for: the tagged one, or (for a run started in the Dagster UI) one made for it."""
    if tagged_run_id:
        run = session.get(Run, uuid.UUID(tagged_run_id))
        if run is None or run.project_id != project.id:
            raise InvalidInput(f"run {tagged_run_id} does not belong to project {project.id}")
        if dagster_run_id not in (run.dagster_run_ids or []):
            run.dagster_run_ids = [*(run.dagster_run_ids or []), dagster_run_id]
        return run
    run = session.scalars(select(Run).where(Run.dagster_run_ids.contains([dagster_run_id]))).first()
    if run is None:
        version = ensure_prompt_version(session, project, with_quotes)
        run = Run(
            tenant_id=project.tenant_id,
            project_id=project.id,
            kind=RunKind.full,
            status=RunStatus.running,
            prompt_version_id=version.id,
            dagster_run_ids=[dagster_run_id],
            started_at=utcnow(),
        )
        session.add(run)
        session.flush()
    return run


def run_documents(session: Session, run: Run) -> list[uuid.UUID]:
    return list(session.scalars(select(RunDocument.document_id).where(RunDocument.run_id == run.id)).all())


def accepted_full_run(session: Session, project: Project) -> Run | None:
    """The latest full run that has not failed: its prompt version is the one new uploads are coded with."""
    return session.scalars(
        select(Run)
        .where(Run.project_id == project.id, Run.kind == RunKind.full, Run.status != RunStatus.failed)
        .order_by(Run.created_at.desc())
        .limit(1)
    ).first()


def create_auto_run(session: Session, project: Project, document_ids: list[uuid.UUID]) -> Run | None:
    """A run over newly uploaded documents of an auto-processing project, with the accepted full run's prompt
    version; None when the project has no accepted full run or every document is already in a full or auto run."""
    accepted = accepted_full_run(session, project)
    if accepted is None or not document_ids:
        return None
    covered = set(
        session.scalars(
            select(RunDocument.document_id)
            .join(Run, Run.id == RunDocument.run_id)
            .where(
                Run.project_id == project.id,
                Run.kind.in_([RunKind.full, RunKind.auto]),
                RunDocument.document_id.in_(document_ids),
            )
        )
    )
    fresh = [d for d in document_ids if d not in covered]
    if not fresh:
        return None
    run = Run(
        tenant_id=project.tenant_id,
        project_id=project.id,
        kind=RunKind.auto,
        prompt_version_id=accepted.prompt_version_id,
        documents_total=len(fresh),
        status=RunStatus.queued,
    )
    session.add(run)
    session.flush()
    session.add_all(RunDocument(run_id=run.id, document_id=d, tenant_id=project.tenant_id) for d in fresh)
    session.flush()
    return run
