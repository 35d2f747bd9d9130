"""Creating runs and finding the run a Dagster materialisation belongs to. Shared by the facade and the assets."""

from __future__ import annotations

import random
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from coderai_assets.errors import InvalidInput
from coderai_assets.models import Document, Project, Run, RunDocument, RunKind, RunStatus, utcnow
from coderai_assets.pipeline import ensure_prompt_version
from coderai_assets.settings import get_settings


def create_run(
    session: Session,
    project: Project,
    kind: RunKind,
    sample_size: int | None = None,
    *,
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
    version = ensure_prompt_version(session, project, get_settings().request_quotes)
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


def run_for_materialisation(session: Session, project: Project, tagged_run_id: str | None, dagster_run_id: str) -> Run:
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
        version = ensure_prompt_version(session, project, get_settings().request_quotes)
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
