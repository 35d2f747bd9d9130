"""The two jobs of a project: its documents (a key or a key range per run) and its export."""

from __future__ import annotations

import uuid

from dagster import AssetSelection, define_asset_job, in_process_executor

from coderai_assets.partitions import documents_job_name, documents_partitions, export_job_name


def build_project_jobs(project_id: uuid.UUID, document_assets: list, export_asset) -> list:
    documents = define_asset_job(
        name=documents_job_name(project_id),
        selection=AssetSelection.assets(*document_assets),
        partitions_def=documents_partitions(project_id),
        # The multiprocess executor doubled the time of a small run (DESIGN.md 2).
        executor_def=in_process_executor,
        tags={"coderai/project_id": str(project_id)},
    )
    export = define_asset_job(
        name=export_job_name(project_id),
        selection=AssetSelection.assets(export_asset),
        executor_def=in_process_executor,
        tags={"coderai/project_id": str(project_id)},
    )
    return [documents, export]
