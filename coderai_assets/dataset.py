"""Assemble the dataset of a run (or the latest values of every document) as rows, and write the export files."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from coderai_assets.codebook import codebook_rows
from coderai_assets.export_writer import write_dataset
from coderai_assets.models import (
    Document,
    Export,
    Extraction,
    Project,
    PromptVersion,
    Run,
    RunDocument,
    RunDocumentStatus,
    Variable,
)
from coderai_assets.pipeline import project_spec
from coderai_assets.storage import FileStorage

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


def _pairs(session: Session, project: Project, run: Run | None) -> list[tuple[uuid.UUID, uuid.UUID | None]]:
    """(document, run) pairs to export: the run's documents, or each document's latest finished run."""
    if run is not None:
        return [
            (d, run.id) for d in session.scalars(select(RunDocument.document_id).where(RunDocument.run_id == run.id))
        ]
    latest: dict[uuid.UUID, uuid.UUID] = {}
    rows = session.execute(
        select(RunDocument.document_id, RunDocument.run_id)
        .join(Run, Run.id == RunDocument.run_id)
        .where(Run.project_id == project.id, RunDocument.status == RunDocumentStatus.done)
        .order_by(Run.created_at)
    ).all()
    for document_id, run_id in rows:
        latest[document_id] = run_id
    documents = session.scalars(select(Document.id).where(Document.project_id == project.id)).all()
    return [(d, latest.get(d)) for d in documents]


def dataset_columns(project: Project, variables: list[Variable]) -> list[str]:
    entity = project.extraction_unit.value == "entity"
    columns = META_COLUMNS + (ENTITY_COLUMNS if entity else []) + [v.name for v in variables]
    return columns + [f"{v.name}__{suffix}" for v in variables for suffix in PROVENANCE_SUFFIXES]


def _values_by_document(session: Session, run_id: uuid.UUID) -> Iterator[tuple[uuid.UUID, list[Extraction]]]:
    """The run's values, streamed in document order: one query, fetched in batches, never all held at once."""
    values = session.scalars(
        select(Extraction)
        .where(Extraction.run_id == run_id)
        .order_by(Extraction.document_id, Extraction.entity_index)
        .execution_options(yield_per=5000)
    )
    for document_id, group in groupby(values, key=lambda e: e.document_id):
        yield document_id, list(group)


def iter_rows(
    session: Session, project: Project, run: Run | None, variables: list[Variable]
) -> Iterator[dict[str, Any]]:
    """The dataset's rows: one per document (or per entity), a failed or uncoded document with its error code."""
    entity = project.extraction_unit.value == "entity"
    names = {v.id: v.name for v in variables}
    versions = {
        p.id: p.version for p in session.scalars(select(PromptVersion).where(PromptVersion.project_id == project.id))
    }
    pairs = sorted(_pairs(session, project, run), key=lambda pair: pair[0])
    # Documents without their text: the export needs names and status, not megabytes of parsed text.
    documents = {
        d.id: d
        for d in session.execute(
            select(Document.id, Document.file_name, Document.status, Document.error_code).where(
                Document.project_id == project.id
            )
        )
    }
    streams: dict[uuid.UUID, Iterator[tuple[uuid.UUID, list[Extraction]]]] = {}
    pending: dict[uuid.UUID, tuple[uuid.UUID, list[Extraction]] | None] = {}

    def values_of(document_id: uuid.UUID, run_id: uuid.UUID) -> list[Extraction]:
        # A merge over each run's stream: the pairs and the streams are both in document order.
        if run_id not in streams:
            streams[run_id] = _values_by_document(session, run_id)
            pending[run_id] = next(streams[run_id], None)
        while pending[run_id] is not None and pending[run_id][0] < document_id:  # type: ignore[index]
            pending[run_id] = next(streams[run_id], None)
        current = pending[run_id]
        return current[1] if current is not None and current[0] == document_id else []

    for document_id, run_id in pairs:
        document = documents.get(document_id)
        if document is None:
            continue
        base: dict[str, Any] = {
            "document_id": str(document.id),
            "file_name": document.file_name,
            "document_status": document.status.value,
            "error_code": document.error_code or "",
            "run_id": str(run_id) if run_id else "",
        }
        by_entity: dict[int, list[Extraction]] = {}
        for value in values_of(document_id, run_id) if run_id else []:
            by_entity.setdefault(value.entity_index, []).append(value)
        if not by_entity:
            yield base  # a failed or unprocessed document still has its row, with its error code
            continue
        for entity_index, cells in sorted(by_entity.items()):
            row = dict(base)
            if entity:
                row["entity_index"] = entity_index
                row["entity_text"] = cells[0].entity_text or ""
                row["entity_start"], row["entity_end"] = cells[0].entity_start, cells[0].entity_end
            for cell in cells:
                name = names.get(cell.variable_id)
                if name is None:
                    continue
                row["prompt_version"] = versions.get(cell.prompt_version_id, "") if cell.prompt_version_id else ""
                row["model"] = cell.model or ""
                row[name] = cell.value
                row[f"{name}__status"] = cell.status.value
                row[f"{name}__confidence"] = cell.confidence
                row[f"{name}__alignment"] = cell.alignment or ""
                row[f"{name}__quote"] = cell.quote or ""
                row[f"{name}__char_start"] = cell.char_start
                row[f"{name}__char_end"] = cell.char_end
            yield row


def project_variables(session: Session, project: Project) -> list[Variable]:
    return list(
        session.scalars(
            select(Variable).where(Variable.project_id == project.id).order_by(Variable.position, Variable.created_at)
        )
    )


def build_rows(session: Session, project: Project, run: Run | None) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and every row, in memory: for evaluation and tests; the export streams `iter_rows` instead."""
    variables = project_variables(session, project)
    return dataset_columns(project, variables), list(iter_rows(session, project, run, variables))


def write_export(
    session: Session, storage: FileStorage, project: Project, run: Run | None, dagster_run_id: str | None
) -> Export:
    variables = project_variables(session, project)
    columns = dataset_columns(project, variables)
    spec = project_spec(session, project)
    export = Export(
        tenant_id=project.tenant_id,
        project_id=project.id,
        run_id=run.id if run else None,
        csv_path="",
        xlsx_path="",
        row_count=0,
        dagster_run_id=dagster_run_id,
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
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    export.row_count = write_dataset(
        iter_rows(session, project, run, variables),
        columns,
        codebook_rows(spec),
        about,
        storage.path(export.csv_path),
        storage.path(export.xlsx_path),
    )
    return export
