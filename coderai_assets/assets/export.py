"""The project's export: CSV and Excel files of a run's dataset, with a codebook sheet."""

import uuid

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, asset

from coderai_assets.dataset import write_export
from coderai_assets.models import Project, Run, RunStatus, utcnow
from coderai_assets.partitions import RUN_TAG
from coderai_assets.resources import DatabaseResource, StorageResource


def build_export_asset(project_id: uuid.UUID, tenant_id: uuid.UUID, project_key: str, upstream):
    @asset(
        key=AssetKey([project_key, "export"]),
        deps=[upstream],
        group_name=project_key,
        description="CSV and XLSX of the dataset: one row per document or entity, metadata and provenance "
        "columns, and a codebook sheet.",
    )
    def export(context: AssetExecutionContext, db: DatabaseResource, files: StorageResource) -> MaterializeResult:
        tagged = context.run.tags.get(RUN_TAG)
        with db.session(tenant_id) as session:
            project = session.get(Project, project_id)
            if project is None:
                raise ValueError(f"project {project_id} no longer exists")
            run = session.get(Run, uuid.UUID(tagged)) if tagged else None
            result = write_export(session, files.storage(), project, run, context.run_id)
            if run is not None:
                run.status = RunStatus.succeeded
                run.finished_at = utcnow()
            return MaterializeResult(
                metadata={
                    "rows": result.row_count,
                    "csv": result.csv_path,
                    "xlsx": result.xlsx_path,
                    "export_id": str(result.id),
                }
            )

    return export
