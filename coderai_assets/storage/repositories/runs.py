"""Runs, their documents and the counts the quotas and views need."""

from __future__ import annotations

import uuid

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from coderai_assets.storage.models import ACTIVE, Document, Project, Run, RunDocument, RunDocumentStatus


def get(session: Session, tenant_id: uuid.UUID, run_id: uuid.UUID) -> Run | None:
    return session.scalars(select(Run).where(Run.id == run_id, Run.tenant_id == tenant_id)).first()


def of_project(session: Session, project: Project) -> list[Run]:
    """Newest first."""
    return list(session.scalars(select(Run).where(Run.project_id == project.id).order_by(Run.created_at.desc())))


def per_prompt_version(session: Session, project: Project) -> dict[uuid.UUID | None, int]:
    rows = session.execute(
        select(Run.prompt_version_id, func.count()).where(Run.project_id == project.id).group_by(Run.prompt_version_id)
    ).all()
    return {version: count for version, count in rows}


def active_count(session: Session, tenant_id: uuid.UUID) -> int:
    """The workspace's runs queued or under way."""
    return (
        session.scalar(select(func.count()).select_from(Run).where(Run.tenant_id == tenant_id, Run.status.in_(ACTIVE)))
        or 0
    )


def documents_query(run: Run, status: RunDocumentStatus | None) -> Select:
    """The run's documents (row, file name, the document's last error message), in upload order."""
    query = (
        select(RunDocument, Document.file_name, Document.error_message)
        .join(Document, Document.id == RunDocument.document_id)
        .where(RunDocument.run_id == run.id)
        .order_by(Document.created_at, Document.id)
    )
    return query.where(RunDocument.status == status) if status is not None else query
