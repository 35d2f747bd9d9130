"""Agent tasks: the refiner's and the co-pilot's work for a project."""

from __future__ import annotations

import uuid

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from coderai_assets.storage.models import AgentTask, AgentTaskKind, AgentTaskStatus, Project


def get(session: Session, tenant_id: uuid.UUID, task_id: uuid.UUID, *, lock: bool = False) -> AgentTask | None:
    """`lock`: held to the end of the transaction (two accepts, or an accept and a cancel, one after the other)."""
    query = select(AgentTask).where(AgentTask.id == task_id, AgentTask.tenant_id == tenant_id)
    return session.scalars(query.with_for_update() if lock else query).first()


def of_project_query(
    project: Project, *, status: AgentTaskStatus | None = None, kind: AgentTaskKind | None = None
) -> Select:
    """The project's tasks, newest first."""
    query = (
        select(AgentTask)
        .where(AgentTask.project_id == project.id)
        .order_by(AgentTask.created_at.desc(), AgentTask.id.desc())
    )
    if status is not None:
        query = query.where(AgentTask.status == status)
    return query.where(AgentTask.kind == kind) if kind is not None else query


def status(session: Session, task_id: uuid.UUID) -> AgentTaskStatus | None:
    """Read before each of the task's model calls: a cancelled task makes no further call."""
    return session.scalar(select(AgentTask.status).where(AgentTask.id == task_id))


def open_count(session: Session, tenant_id: uuid.UUID) -> int:
    """The workspace's tasks queued or under way."""
    open_ = (AgentTaskStatus.queued, AgentTaskStatus.running)
    query = (
        select(func.count()).select_from(AgentTask).where(AgentTask.tenant_id == tenant_id, AgentTask.status.in_(open_))
    )
    return session.scalar(query) or 0
