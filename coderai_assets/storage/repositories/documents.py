"""A project's documents and their parsed text."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coderai_assets.storage.models import Document, Project


def by_content(session: Session, project: Project, sha256: str) -> Document | None:
    """The project's document with these bytes: the same bytes uploaded twice are one document."""
    return session.scalars(select(Document).where(Document.project_id == project.id, Document.sha256 == sha256)).first()


def of_project(session: Session, project: Project) -> list[Document]:
    return list(
        session.scalars(select(Document).where(Document.project_id == project.id).order_by(Document.created_at))
    )


def with_text_length(session: Session, project: Project, document_id: uuid.UUID) -> tuple[Document, int | None] | None:
    """The document (its text left unloaded) and the length of its parsed text (None before it is parsed)."""
    row = session.execute(
        select(Document, func.length(Document.text)).where(
            Document.id == document_id, Document.project_id == project.id
        )
    ).first()
    return (row[0], row[1]) if row is not None else None


def text_slice(
    session: Session, project: Project, document_id: uuid.UUID, offset: int, limit: int
) -> tuple[str | None, int | None] | None:
    """Characters offset..offset+limit of the parsed text, cut by PostgreSQL (a text may be 5 million characters),
    and the text's whole length."""
    row = session.execute(
        select(func.substr(Document.text, offset + 1, limit), func.length(Document.text)).where(
            Document.id == document_id, Document.project_id == project.id
        )
    ).first()
    return (row[0], row[1]) if row is not None else None


def count(session: Session, project: Project, among: list[uuid.UUID] | None = None) -> int:
    """The project's documents, or how many of `among` are the project's."""
    query = select(func.count()).where(Document.project_id == project.id)
    if among is not None:
        query = query.where(Document.id.in_(among))
    return session.scalar(query) or 0


def count_of_tenant(session: Session, tenant_id: uuid.UUID) -> int:
    return session.scalar(select(func.count()).select_from(Document).where(Document.tenant_id == tenant_id)) or 0
