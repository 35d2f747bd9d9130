"""What a deletion removes: the runs it waits for, the files and the rows of a project, a document or a workspace
(domain/deletion.py decides the order)."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from coderai_assets.storage.models import (
    ACTIVE,
    AgentTask,
    AgentTaskStatus,
    Document,
    EntityFeedback,
    Export,
    Project,
    Run,
    RunDocument,
    Tenant,
)


def pending(session: Session) -> list[tuple[str, uuid.UUID, uuid.UUID]]:
    """Deletions asked and not yet carried out, in every workspace: (kind, id, tenant id), oldest first; a
    project or document of a workspace being deleted goes with the workspace."""
    rows = session.execute(text("select kind, id, tenant_id from coderai_pending_deletions()")).all()
    return [(row.kind, row.id, row.tenant_id) for row in rows]


def active_runs_of_projects(session: Session, project_ids: list[uuid.UUID]) -> list[Run]:
    return list(session.scalars(select(Run).where(Run.project_id.in_(project_ids), Run.status.in_(ACTIVE))))


def active_runs_with_document(session: Session, document_id: uuid.UUID) -> list[Run]:
    in_run = select(RunDocument.run_id).where(RunDocument.document_id == document_id)
    return list(session.scalars(select(Run).where(Run.id.in_(in_run), Run.status.in_(ACTIVE))))


def runs_with_document(session: Session, document_id: uuid.UUID) -> list[uuid.UUID]:
    return list(session.scalars(select(RunDocument.run_id).where(RunDocument.document_id == document_id)))


def open_tasks_of_projects(session: Session, project_ids: list[uuid.UUID]) -> list[AgentTask]:
    open_ = [AgentTaskStatus.queued, AgentTaskStatus.running]
    return list(
        session.scalars(select(AgentTask).where(AgentTask.project_id.in_(project_ids), AgentTask.status.in_(open_)))
    )


def projects_of_tenant(session: Session, tenant_id: uuid.UUID) -> list[Project]:
    """Every project of the workspace, those being deleted too."""
    return list(session.scalars(select(Project).where(Project.tenant_id == tenant_id)))


def document_keys(session: Session, project_ids: list[uuid.UUID]) -> list[tuple[int, uuid.UUID, uuid.UUID]]:
    """(shard, project id, document id) of the projects' documents registered as Dagster partitions."""
    rows = session.execute(
        select(Project.shard, Document.project_id, Document.id)
        .join(Project, Project.id == Document.project_id)
        .where(Document.project_id.in_(project_ids), Document.registered_at.is_not(None))
    ).all()
    return [(shard, project_id, document_id) for shard, project_id, document_id in rows]


def export_files_of_runs(session: Session, run_ids: list[uuid.UUID]) -> list[str]:
    rows = session.execute(select(Export.csv_path, Export.xlsx_path).where(Export.run_id.in_(run_ids))).all()
    return [path for row in rows for path in row if path]


def delete_exports_of_runs(session: Session, run_ids: list[uuid.UUID]) -> None:
    session.execute(delete(Export).where(Export.run_id.in_(run_ids)))


def delete_document(session: Session, document_id: uuid.UUID) -> None:
    """The document and what hangs on it: chunks, answers, values (and their verdicts) and run rows go by the
    foreign keys' cascades; the entity verdicts, which keep the document's id without one, here."""
    session.execute(delete(EntityFeedback).where(EntityFeedback.document_id == document_id))
    session.execute(delete(Document).where(Document.id == document_id))


def delete_project(session: Session, project_id: uuid.UUID) -> None:
    """The project and every row of it, by the foreign keys' cascades."""
    session.execute(delete(Project).where(Project.id == project_id))


def delete_tenant(session: Session, tenant_id: uuid.UUID) -> None:
    """The workspace and every row of it, by the foreign keys' cascades."""
    session.execute(delete(Tenant).where(Tenant.id == tenant_id))
