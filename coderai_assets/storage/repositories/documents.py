"""A project's documents and their parsed text."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, defer

from coderai_assets.storage.like import contains
from coderai_assets.storage.models import Document, DocumentChunk, DocumentStatus, Project


def by_content(session: Session, project: Project, sha256: str) -> Document | None:
    """The project's document with these bytes: the same bytes uploaded twice are one document."""
    return session.scalars(select(Document).where(Document.project_id == project.id, Document.sha256 == sha256)).first()


def of_project_query(project: Project, *, status: DocumentStatus | None = None, name: str | None = None) -> Select:
    """The project's documents in upload order, their text left unloaded; `status`: the parse status; `name`:
    those whose file name holds it (any case)."""
    query = (
        select(Document)
        .where(Document.project_id == project.id, Document.deleted_at.is_(None))
        .options(defer(Document.text), defer(Document.parse_warnings))
        .order_by(Document.created_at, Document.id)
    )
    if status is not None:
        query = query.where(Document.status == status)
    return query.where(Document.file_name.ilike(contains(name), escape="\\")) if name else query


def with_text_length(session: Session, project: Project, document_id: uuid.UUID) -> tuple[Document, int | None] | None:
    """The document (its text left unloaded) and the length of its parsed text (None before it is parsed)."""
    row = session.execute(
        select(Document, func.length(Document.text)).where(
            Document.id == document_id, Document.project_id == project.id, Document.deleted_at.is_(None)
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
            Document.id == document_id, Document.project_id == project.id, Document.deleted_at.is_(None)
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


def chunks(session: Session, document_id: uuid.UUID) -> list[DocumentChunk]:
    """The document's parsed chunks, in order."""
    return list(
        session.scalars(
            select(DocumentChunk).where(DocumentChunk.document_id == document_id).order_by(DocumentChunk.index)
        )
    )


def chunk_counts(session: Session, document_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = session.execute(
        select(DocumentChunk.document_id, func.count())
        .where(DocumentChunk.document_id.in_(document_ids))
        .group_by(DocumentChunk.document_id)
    ).all()
    return {document_id: count for document_id, count in rows}


def with_text_lengths(session: Session, document_ids: list[uuid.UUID]) -> list[tuple[Document, int | None]]:
    rows = session.execute(select(Document, func.length(Document.text)).where(Document.id.in_(document_ids))).all()
    return [(document, length) for document, length in rows]


def file_names(session: Session, document_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = session.execute(select(Document.id, Document.file_name).where(Document.id.in_(document_ids))).all()
    return {document_id: name for document_id, name in rows}


def text_length(session: Session, document_id: uuid.UUID) -> int | None:
    return session.scalar(select(func.length(Document.text)).where(Document.id == document_id))


def find_in_text(session: Session, document_id: uuid.UUID, needle: str) -> int | None:
    """Where `needle` first stands in the text, case aside (0-based), found by PostgreSQL."""
    found = session.scalar(
        select(func.strpos(func.lower(Document.text), needle.lower())).where(Document.id == document_id)
    )
    return found - 1 if found else None


def text_window(session: Session, document_id: uuid.UUID, start: int, length: int) -> str | None:
    return session.scalar(select(func.substr(Document.text, start + 1, length)).where(Document.id == document_id))


def existing(session: Session, document_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these documents exist (in any workspace the session may see)."""
    return set(session.scalars(select(Document.id).where(Document.id.in_(document_ids))))


def first_of_project(session: Session, project: Project, among: list[uuid.UUID], limit: int) -> list[Document]:
    """The project's first `limit` documents by upload, of `among` when given."""
    query = select(Document).where(Document.project_id == project.id, Document.deleted_at.is_(None))
    if among:
        query = query.where(Document.id.in_(among))
    return list(session.scalars(query.order_by(Document.created_at).limit(limit)))


def in_upload_order(session: Session, project: Project) -> list[Document]:
    """Every document of the project not being deleted, in upload order (ties by id, so a seeded sample is
    reproducible)."""
    query = select(Document).where(Document.project_id == project.id, Document.deleted_at.is_(None))
    return list(session.scalars(query.order_by(Document.created_at, Document.id)))


def ids_of_project(session: Session, project: Project) -> list[uuid.UUID]:
    return list(session.scalars(select(Document.id).where(Document.project_id == project.id)).all())


def labels_of_project(session: Session, project: Project) -> dict[uuid.UUID, Any]:
    """The project's documents without their text (id, file name, status, error code): an export needs names and
    status, not megabytes of parsed text."""
    rows = session.execute(
        select(Document.id, Document.file_name, Document.status, Document.error_code).where(
            Document.project_id == project.id
        )
    )
    return {row.id: row for row in rows}
