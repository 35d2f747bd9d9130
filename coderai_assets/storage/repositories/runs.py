"""Runs, their documents and the counts the quotas and views need."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from coderai_assets.storage.models import (
    ACTIVE,
    Document,
    Project,
    Run,
    RunDocument,
    RunDocumentStatus,
    RunKind,
    RunStatus,
    RunWorkerBeat,
    Tenant,
)


def get(session: Session, tenant_id: uuid.UUID, run_id: uuid.UUID) -> Run | None:
    return session.scalars(select(Run).where(Run.id == run_id, Run.tenant_id == tenant_id)).first()


def of_project_query(project: Project, *, status: RunStatus | None = None, kind: RunKind | None = None) -> Select:
    """The project's runs, newest first."""
    query = select(Run).where(Run.project_id == project.id).order_by(Run.created_at.desc(), Run.id.desc())
    if status is not None:
        query = query.where(Run.status == status)
    return query.where(Run.kind == kind) if kind is not None else query


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


def lock(session: Session, run_id: uuid.UUID) -> None:
    """The run row's lock to the end of the transaction, in key-share mode: the stages' rows
    that point at the run hold a key-share lock on it, which FOR UPDATE would wait for (a deadlock between two
    documents finishing at once, seen with four threads). A cancel or retry and a document finishing at the same
    time see each other's commits."""
    session.execute(select(Run.id).where(Run.id == run_id).with_for_update(key_share=True))


def document_ids(session: Session, run_id: uuid.UUID, status: RunDocumentStatus | None = None) -> list[uuid.UUID]:
    """The run's documents (with this status, when given)."""
    query = select(RunDocument.document_id).where(RunDocument.run_id == run_id)
    if status is not None:
        query = query.where(RunDocument.status == status)
    return list(session.scalars(query).all())


def document_totals(session: Session, run_id: uuid.UUID) -> Any:
    """The run's documents: all, done, failed, pending; their calls, input and output tokens, cached calls,
    ungrounded values and partly cached calls. One query: every document of the run waits for it under the lock."""
    return session.execute(
        select(
            func.count(),
            func.count().filter(RunDocument.status == RunDocumentStatus.done),
            func.count().filter(RunDocument.status == RunDocumentStatus.failed),
            func.count().filter(RunDocument.status == RunDocumentStatus.pending),
            func.coalesce(func.sum(RunDocument.llm_calls), 0),
            func.coalesce(func.sum(RunDocument.input_tokens), 0),
            func.coalesce(func.sum(RunDocument.output_tokens), 0),
            func.coalesce(func.sum(RunDocument.cached_calls), 0),
            func.coalesce(func.sum(RunDocument.values_ungrounded), 0),
            func.coalesce(func.sum(RunDocument.partly_cached_calls), 0),
        ).where(RunDocument.run_id == run_id)
    ).one()


def spend(session: Session, run_id: uuid.UUID) -> tuple[float | None, float | None]:
    """What the run spent, and its cap."""
    spent, cap = session.execute(select(Run.spent_usd, Run.max_cost_usd).where(Run.id == run_id)).one()
    return spent, cap


def caps(session: Session, run_id: uuid.UUID) -> tuple[float | None, float | None]:
    """The run's cap and its workspace's monthly budget."""
    run_cap, month_cap = session.execute(
        select(Run.max_cost_usd, Tenant.monthly_budget_usd)
        .join(Tenant, Tenant.id == Run.tenant_id)
        .where(Run.id == run_id)
    ).one()
    return run_cap, month_cap


def worker_beats(session: Session, run_id: uuid.UUID, dagster_run_ids: list[str]) -> dict[str, datetime]:
    """The last heartbeat of each of these Dagster runs' workers (pipeline/coding.py writes them)."""
    rows = session.execute(
        select(RunWorkerBeat.dagster_run_id, RunWorkerBeat.beat_at).where(
            RunWorkerBeat.run_id == run_id, RunWorkerBeat.dagster_run_id.in_(dagster_run_ids)
        )
    )
    return {dagster_run_id: beat_at for dagster_run_id, beat_at in rows.all()}


def active_full(session: Session, project: Project) -> Run | None:
    """The project's full run queued or under way, if any (there is at most one)."""
    return session.scalars(
        select(Run).where(Run.project_id == project.id, Run.kind == RunKind.full, Run.status.in_(ACTIVE)).limit(1)
    ).first()


def latest_unfailed_full(session: Session, project: Project) -> Run | None:
    return session.scalars(
        select(Run)
        .where(Run.project_id == project.id, Run.kind == RunKind.full, Run.status != RunStatus.failed)
        .order_by(Run.created_at.desc())
        .limit(1)
    ).first()


def by_dagster_run(session: Session, dagster_run_id: str) -> Run | None:
    return session.scalars(select(Run).where(Run.dagster_run_ids.contains([dagster_run_id]))).first()


def coded_by_full_or_auto(session: Session, project: Project, document_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these documents a full or auto run of the project already holds."""
    return set(
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


def unfinished_documents(session: Session, run: Run) -> list[RunDocument]:
    return list(
        session.scalars(
            select(RunDocument).where(RunDocument.run_id == run.id, RunDocument.status != RunDocumentStatus.done)
        )
    )


def progress_counts(session: Session, run: Run) -> tuple[int, ...]:
    """The run's documents: all, parsed, extracted, validated, failed; calls, cached calls, input and output
    tokens (one aggregate query)."""
    done, failed = RunDocumentStatus.done, RunDocumentStatus.failed
    row = session.execute(
        select(
            func.count(),
            func.count().filter(or_(RunDocument.stage.is_not(None), RunDocument.status == done)),
            func.count().filter(or_(RunDocument.stage == "extracted", RunDocument.status == done)),
            func.count().filter(RunDocument.status == done),
            func.count().filter(RunDocument.status == failed),
            func.coalesce(func.sum(RunDocument.llm_calls), 0),
            func.coalesce(func.sum(RunDocument.cached_calls), 0),
            func.coalesce(func.sum(RunDocument.input_tokens), 0),
            func.coalesce(func.sum(RunDocument.output_tokens), 0),
        ).where(RunDocument.run_id == run.id)
    ).one()
    return tuple(int(x) for x in row)


def later_of_project(session: Session, run: Run) -> list[Run]:
    """The project's runs created since `run` (itself left out)."""
    return list(
        session.scalars(
            select(Run).where(Run.project_id == run.project_id, Run.id != run.id, Run.created_at >= run.created_at)
        ).all()
    )


def ids_of_project(session: Session, project: Project) -> list[uuid.UUID]:
    return list(session.scalars(select(Run.id).where(Run.project_id == project.id)))


def latest_done_run_per_document(session: Session, project: Project) -> dict[uuid.UUID, uuid.UUID]:
    """Each document's latest run in which it was done."""
    latest: dict[uuid.UUID, uuid.UUID] = {}
    rows = session.execute(
        select(RunDocument.document_id, RunDocument.run_id)
        .join(Run, Run.id == RunDocument.run_id)
        .where(Run.project_id == project.id, RunDocument.status == RunDocumentStatus.done)
        .order_by(Run.created_at)
    ).all()
    for document_id, run_id in rows:
        latest[document_id] = run_id
    return latest
