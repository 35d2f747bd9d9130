"""Creating runs and finding the run a Dagster materialisation belongs to. Shared by the facade, the sensors and the
assets. A run is only recorded here; the intake sensor launches it."""

from __future__ import annotations

import random
import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from coderai_assets.domain.specs import ensure_prompt_version, lock_project
from coderai_assets.errors import Conflict, InvalidInput
from coderai_assets.storage.models import (
    ACTIVE,
    Document,
    Project,
    Run,
    RunDocument,
    RunDocumentStatus,
    RunKind,
    RunStatus,
    utcnow,
)
from coderai_assets.storage.repositories import documents as document_rows
from coderai_assets.storage.repositories import runs

# Dagster run statuses after which nothing of the run is left running (as the lifecycle sensor records them).
_DAGSTER_ENDED = frozenset({"SUCCESS", "FAILURE", "CANCELED"})


def _one_full_run() -> Conflict:
    return Conflict(
        "The project has a full run under way; wait for it, or cancel it (POST /runs/{id}/cancel).",
        code="run_already_active",
    )


def active_full_run(session: Session, project: Project) -> Run | None:
    return runs.active_full(session, project)


def choose_documents(
    session: Session, project: Project, kind: RunKind, sample_size: int | None, seed: int | None
) -> list[Document]:
    """The documents a run covers: all the project's, or a random sample (the same for the same seed)."""
    documents = document_rows.in_upload_order(session, project)
    if not documents:
        raise InvalidInput("The project has no documents to run on.", code="no_documents")
    if kind == RunKind.sample:
        if not sample_size or sample_size < 1:
            raise InvalidInput("A sample run needs sample_size >= 1.", code="invalid_sample_size")
        # Drawn in file-name order (then content), as the refiner splits: one seed picks the same files in two
        # projects that hold the same files, whatever their ids or upload order.
        pool = sorted(documents, key=lambda d: (d.file_name, d.sha256))
        chosen = random.Random(seed).sample(pool, min(sample_size, len(pool)))
        documents = sorted(chosen, key=lambda d: (d.created_at, d.id))
    return documents


def create_run(
    session: Session,
    project: Project,
    kind: RunKind,
    sample_size: int | None = None,
    *,
    with_quotes: bool,
    seed: int | None = None,
    max_cost_usd: float | None = None,
) -> tuple[Run, list[Document]]:
    """A run over all the project's documents, or over a random sample of them. Under the project row's lock
    (FOR NO KEY UPDATE: uploads, which only reference the row, go on): two requests at once would otherwise both
    write the next prompt version, or both start a full run."""
    lock_project(session, project)
    documents = choose_documents(session, project, kind, sample_size, seed)
    if kind == RunKind.full and active_full_run(session, project) is not None:
        raise _one_full_run()
    version = ensure_prompt_version(session, project, with_quotes)
    run = Run(
        tenant_id=project.tenant_id,
        project_id=project.id,
        kind=kind,
        sample_size=sample_size,
        prompt_version_id=version.id,
        documents_total=len(documents),
        status=RunStatus.queued,
        max_cost_usd=max_cost_usd,
    )
    try:
        with session.begin_nested():  # the database's word on a race the check above could not see
            session.add(run)
            session.flush()
    except IntegrityError as exc:
        raise _one_full_run() from exc
    for document in documents:
        session.add(RunDocument(run_id=run.id, document_id=document.id, tenant_id=project.tenant_id))
    session.flush()
    return run, documents


def run_for_materialisation(
    session: Session, project: Project, tagged_run_id: str | None, dagster_run_id: str, *, with_quotes: bool
) -> Run:
    """The app run a Dagster run works for: the tagged one, or (for a run started in the Dagster UI) one made for it."""
    if tagged_run_id:
        run = session.get(Run, uuid.UUID(tagged_run_id))
        if run is None or run.project_id != project.id:
            raise InvalidInput(f"run {tagged_run_id} does not belong to project {project.id}")
        if dagster_run_id not in (run.dagster_run_ids or []):
            run.dagster_run_ids = [*(run.dagster_run_ids or []), dagster_run_id]
        return run
    run = runs.by_dagster_run(session, dagster_run_id)
    if run is None:
        version = ensure_prompt_version(session, project, with_quotes)
        run = Run(
            tenant_id=project.tenant_id,
            project_id=project.id,
            kind=RunKind.full,
            status=RunStatus.running,
            prompt_version_id=version.id,
            dagster_run_ids=[dagster_run_id],
            started_at=utcnow(),
        )
        session.add(run)
        session.flush()
    return run


def accepted_full_run(session: Session, project: Project) -> Run | None:
    """The latest full run that has not failed: its prompt version is the one new uploads are coded with."""
    return runs.latest_unfailed_full(session, project)


def create_auto_run(session: Session, project: Project, document_ids: list[uuid.UUID]) -> Run | None:
    """A run over newly uploaded documents of an auto-processing project, with the accepted full run's prompt
    version; None when the project has no accepted full run or every document is already in a full or auto run."""
    accepted = accepted_full_run(session, project)
    if accepted is None or not document_ids:
        return None
    covered = runs.coded_by_full_or_auto(session, project, document_ids)
    fresh = [d for d in document_ids if d not in covered]
    if not fresh:
        return None
    run = Run(
        tenant_id=project.tenant_id,
        project_id=project.id,
        kind=RunKind.auto,
        prompt_version_id=accepted.prompt_version_id,
        documents_total=len(fresh),
        status=RunStatus.queued,
    )
    session.add(run)
    session.flush()
    session.add_all(RunDocument(run_id=run.id, document_id=d, tenant_id=project.tenant_id) for d in fresh)
    session.flush()
    return run


def lock_run(session: Session, run: Run) -> None:
    """The run row's lock, as the stages take it (pipeline/bookkeeping.py): a cancel or retry and a document
    finishing at the same time see each other's commits."""
    runs.lock(session, run.id)
    session.refresh(run)


def cancel_run(session: Session, run: Run) -> Run:
    """Stops a queued or running run: its document threads take no new document, the lifecycle sensor terminates its
    Dagster runs, and what is committed stays (a retry goes on from there)."""
    lock_run(session, run)
    if run.status not in ACTIVE:
        raise Conflict(f"The run has ended ({run.status.value}); there is nothing to cancel.", code="run_not_active")
    run.status, run.error_code, run.finished_at = RunStatus.canceled, "canceled", utcnow()
    run.error = "canceled by a user"
    return run


def retry_run(session: Session, run: Run) -> Run:
    """Codes again the documents of an ended run that failed or were never coded (stopped, cancelled), as a new
    attempt; the others stay as they are. Answers already committed and the cache spare the calls already paid."""
    lock_run(session, run)
    if run.status in ACTIVE:
        raise Conflict("The run is under way; cancel it first to retry it.", code="run_active")
    if any(status not in _DAGSTER_ENDED for status in (run.dagster_status or {}).values()):
        # A cancelled run whose Dagster runs are still being stopped: a retry now would code documents twice.
        raise Conflict("The run is still stopping; retry it in a few seconds.", code="run_stopping")
    redo = runs.unfinished_documents(session, run)
    if not redo:
        raise Conflict("Every document of the run is done: nothing to retry.", code="nothing_to_retry")
    for row in redo:
        row.status, row.error_code, row.stage = RunDocumentStatus.pending, None, None
    run.status, run.error, run.error_code, run.finished_at = RunStatus.queued, None, None, None
    run.attempt += 1
    run.documents_failed = 0 if run.documents_failed <= len(redo) else run.documents_failed - len(redo)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise _one_full_run() from exc
    return run


def run_progress(session: Session, run: Run) -> dict[str, int | float | None]:
    """Where the run is, from its documents' rows as each chunk and stage is committed (one aggregate query)."""
    total, parsed, extracted, validated, failed_n, calls, cached, tokens_in, tokens_out = runs.progress_counts(
        session, run
    )
    cost = (tokens_in * (run.input_price_per_mtok or 0) + tokens_out * (run.output_price_per_mtok or 0)) / 1e6
    eta = None
    finished = validated + failed_n
    if run.status in ACTIVE and run.started_at is not None and 0 < finished < total:
        elapsed = (utcnow() - run.started_at).total_seconds()
        eta = round(elapsed / finished * (total - finished), 1)
    return {
        "documents_total": total,
        "documents_parsed": parsed,
        "documents_extracted": extracted,
        "documents_validated": validated,
        "documents_failed": failed_n,
        "llm_calls": calls,
        "cached_calls": cached,
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "cost_usd": round(cost, 6),
        "eta_seconds": eta,
    }
