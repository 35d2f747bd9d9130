"""Assemble the dataset of a run (or the latest values of every document) as rows, and write the export files."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from itertools import groupby
from queue import Queue
from threading import Thread
from typing import Any

from sqlalchemy import Uuid, text
from sqlalchemy.orm import Session

from coderai_assets.domain.reviews import (
    EVERYONE,
    corrections,
    feedback_as_of,
    feedback_sheet,
    feedback_state,
    latest_reviewed_run,
    run_agreement,
    team_scope,
)
from coderai_assets.domain.specs import project_spec, version_spec
from coderai_assets.engine.codebook import ProjectSpec, codebook_rows
from coderai_assets.storage.export_writer import write_dataset
from coderai_assets.storage.files import FileStorage
from coderai_assets.storage.models import (
    Export,
    Project,
    PromptVersion,
    Run,
)
from coderai_assets.storage.repositories import documents, projects, runs, verdicts

META_COLUMNS = [
    "document_id",
    "file_name",
    "document_status",
    "error_code",
    "run_id",
    "prompt_version",
    "model",
]
ENTITY_COLUMNS = ["entity_index", "entity_text", "entity_start", "entity_end"]
PROVENANCE_SUFFIXES = ("status", "confidence", "alignment", "quote", "char_start", "char_end")
FINAL_SUFFIXES = ("final", "final_source")
AGREEMENT_COLUMNS = [
    "reviewed_run_id",
    "comparison",
    "variable",
    "reviewers",
    "level",
    "n",
    "accuracy",
    "accuracy_ci",
    "kappa",
    "kappa_ci",
    "alpha",
    "alpha_ci",
    "threshold",
    "passes",
]
FEEDBACK_COLUMNS = [
    "document_id",
    "entity_index",
    "variable",
    "model_value",
    "verdict",
    "corrected_value",
    "note",
    "reviewer",
    "at",
    "carried_from_run",
]


def _pairs(session: Session, project: Project, run: Run | None) -> list[tuple[uuid.UUID, uuid.UUID | None]]:
    """(document, run) pairs to export: the run's documents, or each document's latest finished run."""
    if run is not None:
        return [(d, run.id) for d in runs.document_ids(session, run.id)]
    latest = runs.latest_done_run_per_document(session, project)
    return [(d, latest.get(d)) for d in documents.ids_of_project(session, project)]


def dataset_columns(spec: ProjectSpec) -> list[str]:
    """Metadata, then each variable's value (the model's), its final value with where that comes from (a
    reviewer's correction wins: `reviewer`; struck by a reviewer: `rejected`; else `model`), and its provenance
    (status, confidence, quote, ...)."""
    entity = spec.per_entity
    columns = META_COLUMNS + (ENTITY_COLUMNS if entity else [])
    for v in spec.variables:
        columns += [v.name, *(f"{v.name}__{suffix}" for suffix in (*FINAL_SUFFIXES, *PROVENANCE_SUFFIXES))]
    return columns


# One row per record (a document, or an entity of it), assembled by PostgreSQL from the extractions table alone:
# the record's cells as one JSON object {variable name: [value, status, confidence, alignment, quote, char_start,
# char_end]}. One json.loads per record instead of an ORM object, three UUIDs and a JSON decode per value; and no
# join, so the rows come out of the cell key's index already grouped. At 10,000 x 50 values the export went from
# 47 s to the figure in docs/benchmarks.md.
_RECORDS = text(
    """
    SELECT e.document_id, e.entity_index,
           min(e.entity_text) AS entity_text, min(e.entity_start) AS entity_start, min(e.entity_end) AS entity_end,
           max(e.prompt_version_id::text) AS prompt_version_id, max(e.model) AS model,
           json_object_agg(
               e.variable_name,
               json_build_array(
                   e.value, e.status, e.confidence, coalesce(e.alignment, ''), coalesce(e.quote, ''),
                   e.char_start, e.char_end
               )
           )::text AS cells
    FROM extractions e
    WHERE e.tenant_id = :tenant_id AND e.run_id = :run_id
    GROUP BY e.document_id, e.entity_index
    ORDER BY e.document_id, e.entity_index
    """
).columns(document_id=Uuid())


def _prefetched(batches: Iterator[Sequence[Any]], depth: int = 4) -> Iterator[Any]:
    """Rows of `batches`, fetched by a thread of their own: PostgreSQL assembles the next batch (the driver waits
    without the GIL) while this thread writes the last one, which keeps both cores busy. The connection is used by
    that thread alone until the batches are done."""
    queue: Queue[Sequence[Any] | BaseException | None] = Queue(maxsize=depth)

    def fetch() -> None:
        try:
            for batch in batches:
                queue.put(batch)
            queue.put(None)
        except BaseException as exc:  # handed to the consumer, which raises it
            queue.put(exc)

    worker = Thread(target=fetch, name="export-fetch", daemon=True)
    worker.start()
    while (item := queue.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield from item
    worker.join()


def _records_by_document(
    session: Session, tenant_id: uuid.UUID, run_id: uuid.UUID, *, prefetch: bool
) -> Iterator[tuple[uuid.UUID, list[Any]]]:
    """The run's records, streamed in document order, fetched in batches, never all held at once. With the tenant
    in the filter, the cell key's index (tenant, run, document, entity) yields the rows already in order, so
    PostgreSQL aggregates as it is read instead of sorting first."""
    result = session.execute(_RECORDS.execution_options(yield_per=2000), {"tenant_id": tenant_id, "run_id": run_id})
    records = _prefetched(result.partitions()) if prefetch else result
    for document_id, group in groupby(records, key=lambda r: r.document_id):
        yield document_id, list(group)


def iter_rows(
    session: Session, project: Project, run: Run | None, spec: ProjectSpec, scope: uuid.UUID | None = EVERYONE
) -> Iterator[list[Any]]:
    """The dataset's rows as lists in `dataset_columns(spec)` order: one per document (or per entity); a failed
    or uncoded document still has its row, with its error code. The final values hold the corrections `scope`
    sees (domain/reviews.py)."""
    entity = spec.per_entity
    names = [v.name for v in spec.variables]
    versions = projects.version_numbers(session, project)
    empty_cell = [None] * (1 + len(FINAL_SUFFIXES) + len(PROVENANCE_SUFFIXES))
    pairs = sorted(_pairs(session, project, run), key=lambda pair: pair[0])
    # Reviewers' corrections of these runs (usually none or few: one small query).
    fixes = corrections(session, sorted({r for _, r in pairs if r is not None}), scope)
    labels = documents.labels_of_project(session, project)
    streams: dict[uuid.UUID, Iterator[tuple[uuid.UUID, list[Any]]]] = {}
    pending: dict[uuid.UUID, tuple[uuid.UUID, list[Any]] | None] = {}

    def records_of(document_id: uuid.UUID, run_id: uuid.UUID) -> list[Any]:
        # A merge over each run's stream: the pairs and the streams are both in document order.
        if run_id not in streams:
            # One run's export reads one stream, which may run ahead in a thread; the latest values of each
            # document read several runs' streams from one connection, so those stay in this thread.
            streams[run_id] = _records_by_document(session, project.tenant_id, run_id, prefetch=run is not None)
            pending[run_id] = next(streams[run_id], None)
        while pending[run_id] is not None and pending[run_id][0] < document_id:  # type: ignore[index]
            pending[run_id] = next(streams[run_id], None)
        current = pending[run_id]
        return current[1] if current is not None and current[0] == document_id else []

    for document_id, run_id in pairs:
        document = labels.get(document_id)
        if document is None:
            continue
        # document_id, file_name, document_status, error_code, run_id (META_COLUMNS without the last two)
        base = [str(document.id), document.file_name, document.status.value, document.error_code or ""]
        base.append(str(run_id) if run_id else "")
        records = records_of(document_id, run_id) if run_id else []
        if not records:
            row = [*base, "", ""]
            if entity:
                row += [None, "", None, None]
            for _ in names:
                row += empty_cell
            yield row
            continue
        for record in records:
            row = [*base, versions.get(record.prompt_version_id, ""), record.model or ""]
            if entity:
                row += [record.entity_index, record.entity_text or "", record.entity_start, record.entity_end]
            cells = json.loads(record.cells)
            for name in names:
                # [value, status, confidence, alignment, quote, char_start, char_end], the final value after value
                cell = cells.get(name)
                if cell is None:
                    row += empty_cell
                    continue
                fix = fixes.get((str(run_id), str(document_id), record.entity_index, name)) if fixes else None
                final, source = fix if fix is not None else (cell[0], "model" if cell[0] is not None else "")
                row += [cell[0], final, source, *cell[1:]]
            yield row


def dataset_spec(session: Session, project: Project, run: Run | None) -> ProjectSpec:
    """A run's dataset follows the specification its prompt version was compiled from, so an edit or a deleted
    variable never changes a finished run's export; the latest values per document follow the live one."""
    version = session.get(PromptVersion, run.prompt_version_id) if run and run.prompt_version_id else None
    return version_spec(session, version)[0] if version is not None else project_spec(session, project)


def build_rows(session: Session, project: Project, run: Run | None) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and every row as a dict, in memory: for evaluation and tests; the export streams `iter_rows`."""
    spec = dataset_spec(session, project, run)
    columns = dataset_columns(spec)
    return columns, [dict(zip(columns, row, strict=True)) for row in iter_rows(session, project, run, spec)]


def reviewed_run_of(session: Session, project: Project, run: Run) -> Run | None:
    """The run whose figures a run's export reports: its own when it has feedback, else the reviewed run before
    it (the sample the reliability gate read)."""
    if verdicts.has_any(session, run):
        return run
    return latest_reviewed_run(session, project, before=run)


def export_runs(session: Session, project: Project, run: Run | None) -> list[uuid.UUID]:
    """The runs whose feedback an export holds: the run and the reviewed run it reports; for the latest values
    per document, every run of the project."""
    if run is None:
        return runs.ids_of_project(session, project)
    reviewed = reviewed_run_of(session, project, run)
    return sorted({run.id, *([reviewed.id] if reviewed else [])}, key=str)


def write_export(
    session: Session,
    storage: FileStorage,
    project: Project,
    run: Run | None,
    dagster_run_id: str | None,
    *,
    reader: uuid.UUID | None = None,
) -> Export:
    """The export files, with the feedback as it stands: everybody's once every review of the runs is complete,
    else only what `reader` gave (None: the platform, at the end of a run: no blind verdict)."""
    spec = dataset_spec(session, project, run)
    columns = dataset_columns(spec)
    feedback_runs = export_runs(session, project, run)
    scope = team_scope(session, feedback_runs, reader)
    export = Export(
        tenant_id=project.tenant_id,
        project_id=project.id,
        run_id=run.id if run else None,
        csv_path="",
        xlsx_path="",
        row_count=0,
        dagster_run_id=dagster_run_id,
        feedback_state=feedback_state(session, feedback_runs),
        feedback_scope=scope,
    )
    session.add(export)
    session.flush()
    folder = f"{project.tenant_id}/{project.id}/exports/{export.id}"
    export.csv_path, export.xlsx_path = f"{folder}/dataset.csv", f"{folder}/dataset.xlsx"
    about = {
        "project": project.name,
        "project_id": str(project.id),
        "run_id": str(run.id) if run else "latest values per document",
        "run_kind": run.kind.value if run else "",
        "model": run.model if run else "",
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "feedback_as_of": feedback_as_of(session, feedback_runs) or "no feedback yet",
        "feedback_shown": (
            "every reviewer's (every review is complete)"
            if scope is EVERYONE
            else "only the downloader's own, and verdicts carried from finished reviews: a review is not complete"
        ),
    }
    if run is not None and run.reliability_override:
        # Started although variables were under the reliability threshold: the dataset says so, and why.
        override = run.reliability_override
        about["reliability_override"] = override.get("reason", "")
        about["reliability_override_by"] = f"{override.get('by', '')} at {override.get('at', '')}"
        if override.get("review_incomplete"):
            about["reliability_review_incomplete"] = f"run {override.get('reviewed_run_id')} was not fully reviewed"
        about["reliability_below_threshold"] = ", ".join(
            f"{name}: alpha {figures.get('alpha')} < {figures.get('threshold')}"
            for name, figures in (override.get("variables") or {}).items()
        )
    sheets: dict[str, tuple[list[str], list[dict[str, Any]]]] = {}
    if run is not None:
        sheets["agreement"] = (AGREEMENT_COLUMNS, agreement_sheet(session, run, project, scope))
        sheets["feedback"] = (FEEDBACK_COLUMNS, feedback_sheet(session, run, scope))
    export.row_count = write_dataset(
        iter_rows(session, project, run, spec, scope),
        columns,
        codebook_rows(spec),
        about,
        storage.path(export.csv_path),
        storage.path(export.xlsx_path),
        sheets,
    )
    return export


def agreement_sheet(
    session: Session, run: Run, project: Project, scope: uuid.UUID | None = EVERYONE
) -> list[dict[str, Any]]:
    """The agreement figures of the run (domain/reviews.py) as rows, from the feedback `scope` sees: the model
    against the reviewers, then each pair of reviewers (only once every review is complete). A run nobody
    reviewed (a full run, usually) reports those of the reviewed run before it, the sample the reliability gate
    read; `reviewed_run_id` says which."""
    reviewed = reviewed_run_of(session, project, run)
    if reviewed is None:
        return []
    figures = run_agreement(session, reviewed, project, scope=scope)
    rows = []
    for kind, items in (
        ("model vs reviewers", figures["model_vs_reviewers"]),
        ("between reviewers", figures["between_reviewers"]),
    ):
        for item in items:
            rows.append(
                {
                    "reviewed_run_id": str(reviewed.id),
                    "comparison": kind,
                    "variable": item["variable"],
                    "reviewers": " / ".join(str(r) for r in item.get("reviewers", [])),
                    "level": item["level"],
                    "n": item["n"],
                    "accuracy": item["accuracy"],
                    "accuracy_ci": _interval(item["accuracy_ci"]),
                    "kappa": item["kappa"],
                    "kappa_ci": _interval(item["kappa_ci"]),
                    "alpha": item["alpha"],
                    "alpha_ci": _interval(item["alpha_ci"]),
                    "threshold": item.get("threshold"),
                    "passes": item.get("passes"),
                }
            )
    return rows


def _interval(bounds: list[float] | None) -> str:
    return f"{bounds[0]} to {bounds[1]}" if bounds else ""
