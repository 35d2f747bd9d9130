"""A project's exports: the files a run's dataset was written to, and the feedback each was built with."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coderai_assets.storage.models import Export, Project


def latest(session: Session, project: Project, run_id: uuid.UUID | None) -> Export | None:
    """The project's newest export (of the run, when given)."""
    query = select(Export).where(Export.project_id == project.id)
    if run_id is not None:
        query = query.where(Export.run_id == run_id)
    return session.scalars(query.order_by(Export.created_at.desc())).first()


def built_with(session: Session, like: Export, state: str, scope: uuid.UUID | None) -> Export | None:
    """The newest export of the same project and run built with this feedback (state and whose)."""
    query = select(Export).where(
        Export.project_id == like.project_id,
        Export.feedback_state == state,
        Export.feedback_scope.is_(None) if scope is None else Export.feedback_scope == scope,
    )
    query = query.where(Export.run_id.is_(None) if like.run_id is None else Export.run_id == like.run_id)
    return session.scalars(query.order_by(Export.created_at.desc()).limit(1)).first()


def lock_building(session: Session, key: str) -> None:
    """One build of an export at a time per key (an advisory lock to the end of the transaction)."""
    session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))
