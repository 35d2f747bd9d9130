"""Run bookkeeping shared by the stages: a document's row in its run, failures with their codes, and the run's
counters, recomputed under the run row's lock."""

from __future__ import annotations

import uuid

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from coderai_assets.storage.models import (
    Document,
    DocumentStatus,
    Run,
    RunDocument,
    RunDocumentStatus,
    RunStatus,
    RunWorkerBeat,
    utcnow,
)
from coderai_assets.storage.repositories import runs


def run_document(session: Session, run: Run, document: Document) -> RunDocument:
    row = session.get(RunDocument, (run.id, document.id))
    if row is None:
        row = RunDocument(run_id=run.id, document_id=document.id, tenant_id=run.tenant_id)
        session.add(row)
        session.flush()
    return row


def mark_running(session: Session, run: Run) -> None:
    if run.status == RunStatus.queued:
        run.status = RunStatus.running
        run.started_at = utcnow()


def fail_document(session: Session, run: Run, document: Document, code: str, message: str) -> None:
    document.status = DocumentStatus.failed
    document.error_code = code
    document.error_message = message
    row = run_document(session, run, document)
    row.status = RunDocumentStatus.failed
    row.error_code = code
    refresh_run_counts(session, run)


def refresh_run_counts(session: Session, run: Run) -> None:
    """Counters recomputed from run_documents, never incremented, so retries cannot double count; under the run
    row's lock, so documents finishing at once (concurrent threads, or runs) each count what the others committed
    and the last one moves the run to exporting. The lock is taken at the end of the document's transaction and
    held only until its commit. FOR NO KEY UPDATE, not FOR UPDATE: the rows this transaction inserted that point
    at the run hold a key-share lock on it, which FOR UPDATE would wait for in the other transactions (a
    deadlock between two documents finishing at once, seen with four threads)."""
    session.flush()
    runs.lock(session, run.id)
    # The status as the transaction that held the lock before left it, not as this session first read it: a run
    # another document's thread stopped (failed, `budget_exceeded`) while this one waited must not be moved on to
    # exporting, and so to succeeded, by the last document to fail (seen once in CI).
    session.refresh(run, attribute_names=["status"])
    totals = runs.document_totals(session, run.id)
    run.documents_total, run.documents_done, run.documents_failed = totals[0], totals[1], totals[2]
    run.llm_calls, run.input_tokens, run.output_tokens, run.cached_calls = (int(t) for t in totals[4:8])
    run.values_ungrounded, run.partly_cached_calls = int(totals[8]), int(totals[9])
    if run.status in (RunStatus.queued, RunStatus.running) and totals[3] == 0:
        run.status = RunStatus.exporting


def price(run: Run, input_per_mtok: float, output_per_mtok: float) -> None:
    run.cost_usd = round(run.input_tokens * input_per_mtok / 1e6 + run.output_tokens * output_per_mtok / 1e6, 6)


def document_failed_in_run(session: Session, run: Run, document: Document) -> bool:
    row = session.get(RunDocument, (run.id, document.id))
    return row is not None and row.status == RunDocumentStatus.failed


def reset_run_document(session: Session, run: Run, document: Document) -> None:
    """A document coded again in its run (a retry after a crash or a failure) starts over, keeping the answers
    already committed for it (pipeline/extract.py)."""
    session.execute(
        update(RunDocument)
        .where(RunDocument.run_id == run.id, RunDocument.document_id == document.id)
        .values(status=RunDocumentStatus.pending, error_code=None, stage=None)
    )


def document_done_in_run(session: Session, run: Run, document: Document) -> bool:
    row = session.get(RunDocument, (run.id, document.id))
    return row is not None and row.status == RunDocumentStatus.done


def record_beat(session: Session, dagster_run_id: str, run_id: uuid.UUID, tenant_id: uuid.UUID) -> None:
    """The run worker of `dagster_run_id` is alive and coding `run_id` (defs/sensors/run_lifecycle.py reads it)."""
    statement = insert(RunWorkerBeat).values(dagster_run_id=dagster_run_id, run_id=run_id, tenant_id=tenant_id)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[RunWorkerBeat.dagster_run_id, RunWorkerBeat.run_id], set_={"beat_at": func.now()}
        )
    )
