"""Deleting what users own: a project, a document, a workspace (an account's deletion asks for its workspaces').

In two steps, so that nothing is removed under a run in flight:

1. **Asked** (the API, one transaction): the thing is marked `deleted_at`, which hides it from every read at once,
   and the runs that touch it are cancelled (its open agent tasks too).
2. **Carried out** (the deletions sensor, defs/sensors/deletions.py), once none of its Dagster runs is under way: its
   Dagster partitions and runs, then its stored files, then its rows, in that order. Each step is idempotent, so a
   purge that stops half-way is simply done again on the next tick; rows go last, so until then the purge can
   still find everything it has to remove.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy.orm import Session

from coderai_assets.domain.runs import cancel_run
from coderai_assets.domain.specs import lock_project
from coderai_assets.storage.files import FileStorage
from coderai_assets.storage.models import AgentTaskStatus, Document, Project, Tenant, utcnow
from coderai_assets.storage.partition_keys import document_key
from coderai_assets.storage.repositories import deletions


class Kind(StrEnum):
    project = "project"
    document = "document"
    workspace = "workspace"


def ask_project_deletion(session: Session, project: Project) -> None:
    """Hides the project and stops its work; the deletions sensor removes it once its Dagster runs have ended."""
    lock_project(session, project)  # a run being created at the same time is seen, and cancelled, here
    project.deleted_at, project.auto_process = utcnow(), False
    _stop(session, [project.id])


def ask_document_deletion(session: Session, document: Document) -> None:
    """Hides the document and cancels the active runs that include it (the documents they coded stay coded)."""
    document.deleted_at = utcnow()
    for run in deletions.active_runs_with_document(session, document.id):
        cancel_run(session, run)


def ask_workspace_deletion(session: Session, tenant: Tenant) -> None:
    """Hides the workspace (nobody can act in it any more) and stops the work of all its projects."""
    tenant.deleted_at = utcnow()
    projects = deletions.projects_of_tenant(session, tenant.id)
    for project in projects:
        project.deleted_at, project.auto_process = project.deleted_at or utcnow(), False
    _stop(session, [p.id for p in projects])


def _stop(session: Session, project_ids: list[uuid.UUID]) -> None:
    for run in deletions.active_runs_of_projects(session, project_ids):
        cancel_run(session, run)
    for task in deletions.open_tasks_of_projects(session, project_ids):
        task.status, task.error_code, task.finished_at = AgentTaskStatus.canceled, "deleted", utcnow()


@dataclass(frozen=True)
class Purge:
    """Everything a deletion removes outside its rows, found while the rows are still there."""

    kind: Kind
    target_id: uuid.UUID
    tenant_id: uuid.UUID
    # Dagster: every run of these projects goes (their events with them); for a document, these runs must have
    # ended first and only the document's partitions go.
    project_ids: list[uuid.UUID] = field(default_factory=list)
    run_ids: list[uuid.UUID] = field(default_factory=list)
    # (shard, partition key) of the documents' Dagster partitions.
    partitions: list[tuple[int, str]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)


def plan(session: Session, kind: Kind, target_id: uuid.UUID, tenant_id: uuid.UUID) -> Purge | None:
    """What deleting `target_id` removes; None when there is nothing left of it."""
    if kind == Kind.document:
        document = session.get(Document, target_id)
        if document is None:
            return None
        shard = session.get(Project, document.project_id)
        run_ids = deletions.runs_with_document(session, document.id)
        return Purge(
            kind,
            target_id,
            tenant_id,
            run_ids=run_ids,
            partitions=(
                [(shard.shard if shard else 0, document_key(document.project_id, document.id))]
                if document.registered_at
                else []
            ),
            files=[document.storage_path, *deletions.export_files_of_runs(session, run_ids)],
            folders=[f"{tenant_id}/{document.project_id}/documents/{document.id}"],
        )
    if kind == Kind.project:
        project_ids = [target_id] if session.get(Project, target_id) is not None else []
        folders = [f"{tenant_id}/{target_id}"]
    else:
        if session.get(Tenant, target_id) is None:
            return None
        project_ids = [p.id for p in deletions.projects_of_tenant(session, target_id)]
        folders = [str(target_id)]
    if kind == Kind.project and not project_ids:
        return None
    keys = [(shard, document_key(p, d)) for shard, p, d in deletions.document_keys(session, project_ids)]
    return Purge(kind, target_id, tenant_id, project_ids=project_ids, partitions=keys, folders=folders)


def remove_files_and_rows(session: Session, storage: FileStorage, purge: Purge) -> None:
    """The purge's last two steps, once Dagster holds nothing of it: files first, then rows (the caller commits)."""
    for key in purge.files:
        storage.delete(key)
    for folder in purge.folders:
        storage.delete_tree(folder)
    if purge.kind == Kind.document:
        deletions.delete_exports_of_runs(session, purge.run_ids)
        deletions.delete_document(session, purge.target_id)
    elif purge.kind == Kind.project:
        deletions.delete_project(session, purge.target_id)
    else:
        deletions.delete_tenant(session, purge.target_id)
