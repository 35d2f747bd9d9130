"""Uploads: store the original and record the document; the intake sensor makes it a Dagster partition."""

from __future__ import annotations

import hashlib
import re
import uuid

from sqlalchemy.orm import Session

from coderai_api.pagination import PageRequest
from coderai_assets.errors import Conflict, InvalidInput, NotFound
from coderai_assets.ingest import codes
from coderai_assets.storage import repositories
from coderai_assets.storage.files import FileStorage
from coderai_assets.storage.models import Document, DocumentStatus, Project
from coderai_assets.storage.repositories import documents

# Control characters: PostgreSQL cannot store NUL, and none belongs in a name a user reads.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def stored_file_name(name: str) -> str:
    """The name as the user gave it, so that their joins on file names find every row: only control characters
    are replaced and the length capped. It is a label, never a path (files are stored under the document's id)."""
    return _CONTROL.sub("_", name)[:500] or "document"


def add_document(
    session: Session, storage: FileStorage, project: Project, file_name: str, data: bytes, max_bytes: int
) -> tuple[Document, bool]:
    """(document, duplicate): the same bytes uploaded twice to a project are one document."""
    if not data:
        raise InvalidInput(f"{file_name}: the file is empty.", code=codes.EMPTY_FILE)
    if len(data) > max_bytes:
        raise InvalidInput(f"{file_name}: {len(data)} bytes is over the limit of {max_bytes}.", code=codes.TOO_LARGE)
    digest = hashlib.sha256(data).hexdigest()
    existing = documents.by_content(session, project, digest)
    if existing is not None and existing.deleted_at is not None:
        raise Conflict(
            f"{file_name}: a document with these bytes is being deleted; upload it again in a few seconds.",
            code="document_being_deleted",
        )
    if existing is not None:
        return existing, True
    document_id = uuid.uuid4()
    key = f"{project.tenant_id}/{project.id}/documents/{document_id}/original"
    storage.write(key, data)
    document = Document(
        id=document_id,
        tenant_id=project.tenant_id,
        project_id=project.id,
        file_name=stored_file_name(file_name),
        size_bytes=len(data),
        sha256=digest,
        storage_path=key,
    )
    session.add(document)
    session.flush()
    return document, False


def list_documents(
    session: Session, project: Project, page: PageRequest, status: DocumentStatus | None, name: str | None
) -> dict:
    query = documents.of_project_query(project, status=status, name=name)
    return page.answer(repositories.keyset_page(session, query, name="documents", scalars=True, **page.args))


def get_document(session: Session, project: Project, document_id: uuid.UUID) -> tuple[Document, int | None]:
    """The document (its text left unloaded) and the length of its parsed text."""
    found = documents.with_text_length(session, project, document_id)
    if found is None:
        raise NotFound("No such document in the project.", code="document_not_found")
    return found


def document_text(
    session: Session, project: Project, document_id: uuid.UUID, offset: int, limit: int
) -> tuple[str, int]:
    """Characters offset..offset+limit of the parsed text (a text may be 5 million characters)."""
    row = documents.text_slice(session, project, document_id, offset, limit)
    if row is None:
        raise NotFound("No such document in the project.", code="document_not_found")
    if row[1] is None:
        raise NotFound("The document has not been parsed yet.", code="text_not_available")
    return row[0] or "", row[1]
