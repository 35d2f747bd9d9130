"""Stage 1: a stored upload becomes text and chunks, parsed in the sandboxed child process; one transaction,
idempotent."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from coderai_assets.ingest import codes
from coderai_assets.ingest.chunk import chunk_text
from coderai_assets.ingest.sandbox import ParseWorker
from coderai_assets.pipeline.bookkeeping import fail_document, mark_running, run_document
from coderai_assets.storage.files import FileStorage
from coderai_assets.storage.models import (
    Document,
    DocumentChunk,
    DocumentStatus,
    Run,
)


def parse_document(
    session: Session,
    storage: FileStorage,
    worker: ParseWorker,
    run: Run,
    document: Document,
    *,
    chunk_chars: int,
    overlap: int,
) -> bool:
    """Parse one document into text and chunks. False when it ended with an error code."""
    mark_running(session, run)
    row = run_document(session, run, document)
    session.execute(delete(DocumentChunk).where(DocumentChunk.document_id == document.id))
    try:
        data = storage.read(document.storage_path)
    except OSError as exc:
        fail_document(session, run, document, codes.PARSE_FAILED, f"stored file unreadable: {exc}")
        return False
    outcome = worker.parse(data)
    if not outcome.ok:
        document.format = outcome.format or document.format
        fail_document(session, run, document, outcome.error_code or codes.PARSE_FAILED, outcome.error_message or "")
        return False
    assert outcome.parsed is not None
    document.format = outcome.format
    document.text = outcome.parsed.text
    document.page_count = outcome.parsed.page_count
    document.parse_warnings = outcome.parsed.warnings or None
    document.status = DocumentStatus.parsed
    document.error_code = document.error_message = None
    row.stage = "parsed"
    for chunk in chunk_text(outcome.parsed.text, size=chunk_chars, overlap=overlap):
        session.add(
            DocumentChunk(
                tenant_id=document.tenant_id,
                document_id=document.id,
                index=chunk.index,
                char_start=chunk.char_start,
                char_end=chunk.char_end,
                text=chunk.text,
            )
        )
    return True
