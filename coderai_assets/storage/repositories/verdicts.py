"""Verdicts: the reviewers' feedback on values and on entities, and reviews (who reviews a run, and who is done).
Which of them a reader may see is domain/reviews.py's `visible`, applied by the caller."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from coderai_assets.storage.models import EntityFeedback, Extraction, Feedback, Project, Review, Run


def review_of(session: Session, run_id: uuid.UUID, user_id: uuid.UUID, *, lock: bool = False) -> Review | None:
    query = select(Review).where(Review.run_id == run_id, Review.user_id == user_id)
    return session.scalars(query.with_for_update() if lock else query).first()


def reviews_of(session: Session, run_id: uuid.UUID) -> list[Review]:
    """The run's reviews (one per reviewer), oldest first."""
    return list(session.scalars(select(Review).where(Review.run_id == run_id).order_by(Review.created_at)))


def current_verdict(session: Session, value: Extraction, user_id: uuid.UUID) -> Feedback | None:
    """The reviewer's verdict on the value that no later one has replaced."""
    return session.scalars(
        select(Feedback).where(
            Feedback.extraction_id == value.id, Feedback.user_id == user_id, Feedback.superseded_at.is_(None)
        )
    ).first()


def history_of(session: Session, value: Extraction) -> list[Feedback]:
    """Every verdict on the value, replaced ones too, oldest first."""
    return list(
        session.scalars(select(Feedback).where(Feedback.extraction_id == value.id).order_by(Feedback.created_at))
    )


def current_of_run(run: Run, *, document_id: uuid.UUID | None = None, variable: str | None = None) -> Select:
    """The run's current verdicts, as a query the caller narrows to what the reader may see."""
    query = select(Feedback).where(Feedback.run_id == run.id, Feedback.superseded_at.is_(None))
    if document_id is not None:
        query = query.where(Feedback.document_id == document_id)
    return query.where(Feedback.variable_name == variable) if variable is not None else query


def reviewed_documents_of_run(run: Run) -> Select:
    """How many of the run's documents have a current verdict, as a query the caller narrows to a reader."""
    return select(func.count(func.distinct(Feedback.document_id))).where(
        Feedback.run_id == run.id, Feedback.superseded_at.is_(None)
    )


def entity_verdicts_of_run(run: Run) -> Select:
    return select(EntityFeedback).where(EntityFeedback.run_id == run.id)


def verdicts_per_reviewer(session: Session, run: Run) -> dict[uuid.UUID | None, int]:
    rows = session.execute(
        select(Feedback.user_id, func.count())
        .where(Feedback.run_id == run.id, Feedback.superseded_at.is_(None))
        .group_by(Feedback.user_id)
    ).all()
    return {user_id: count for user_id, count in rows}


def lock_reviews(session: Session, run: Run) -> None:
    """The run's reviews, changed one transaction at a time (an advisory lock to the end of the transaction)."""
    session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"review:{run.id}", 0))))


def state_counts(session: Session, run_ids: list[uuid.UUID]) -> tuple[int, int, int, int, int]:
    """Of the runs: verdicts, replaced verdicts, entity verdicts, reviews, finished reviews."""
    verdicts = session.scalar(select(func.count()).select_from(Feedback).where(Feedback.run_id.in_(run_ids)))
    superseded = session.scalar(
        select(func.count())
        .select_from(Feedback)
        .where(Feedback.run_id.in_(run_ids), Feedback.superseded_at.is_not(None))
    )
    entities = session.scalar(
        select(func.count()).select_from(EntityFeedback).where(EntityFeedback.run_id.in_(run_ids))
    )
    reviews, done = session.execute(
        select(func.count(), func.count(Review.done_at)).where(Review.run_id.in_(run_ids))
    ).one()
    return verdicts or 0, superseded or 0, entities or 0, reviews, done


def latest_given(session: Session, run_ids: list[uuid.UUID]) -> datetime | None:
    return session.scalar(select(func.max(Feedback.created_at)).where(Feedback.run_id.in_(run_ids)))


def latest_run_with_verdicts(session: Session, project: Project, before: Run | None = None) -> Run | None:
    """The project's newest run with current verdicts (created before `before`, if given)."""
    query = (
        select(Run)
        .join(Feedback, Feedback.run_id == Run.id)
        .where(Run.project_id == project.id, Feedback.superseded_at.is_(None))
    )
    if before is not None:
        query = query.where(Run.created_at <= before.created_at, Run.id != before.id)
    return session.scalars(query.order_by(Run.created_at.desc()).limit(1)).first()


def current_with_values(run_ids: list[uuid.UUID]) -> Select:
    """The runs' current verdicts with the values they judge, oldest first, as a query the caller narrows."""
    return (
        select(Feedback, Extraction)
        .join(Extraction, Extraction.id == Feedback.extraction_id)
        .where(Feedback.run_id.in_(run_ids), Feedback.superseded_at.is_(None))
        .order_by(Feedback.created_at)
    )


def earlier_reviewers_verdicts(session: Session, run: Run, document_ids: list[uuid.UUID] | None) -> list[Any]:
    """Current verdicts of reviewers (not carried ones) on the project's runs before `run`, with the values they
    judge and their run's creation (of `document_ids`, when given; by document, indexed)."""
    query = (
        select(Feedback, Extraction, Run.created_at)
        .join(Extraction, Extraction.id == Feedback.extraction_id)
        .join(Run, Run.id == Feedback.run_id)
        .where(
            Run.project_id == run.project_id,
            Run.id != run.id,
            Run.created_at <= run.created_at,
            Feedback.superseded_at.is_(None),
            Feedback.carried_from_id.is_(None),
            Feedback.user_id.is_not(None),
        )
    )
    if document_ids is not None:
        query = query.where(Feedback.document_id.in_(document_ids))
    return list(session.execute(query).all())


def current_of_run_rows(session: Session, run: Run) -> list[Feedback]:
    return list(session.scalars(current_of_run(run)))


def reviewed_document_ids(session: Session, run: Run) -> list[uuid.UUID | None]:
    return list(
        session.scalars(
            select(Feedback.document_id).where(Feedback.run_id == run.id, Feedback.superseded_at.is_(None)).distinct()
        ).all()
    )


def has_any(session: Session, run: Run) -> bool:
    return session.scalar(select(Feedback.id).where(Feedback.run_id == run.id).limit(1)) is not None
