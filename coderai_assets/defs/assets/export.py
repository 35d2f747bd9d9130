"""The export of a shard: a run's dataset as CSV and Excel with a codebook sheet, one partition per project."""

import uuid

from dagster import AllPartitionMapping, AssetDep, AssetExecutionContext, MaterializeResult, asset

from coderai_assets.defs.partitions import RUN_TAG, WORKSPACE_TAG, Shard, projects_partitions
from coderai_assets.defs.resources import DatabaseResource, StorageResource
from coderai_assets.domain.dataset import write_export
from coderai_assets.pipeline.coding import project_tenant
from coderai_assets.storage.models import Project, Run, RunStatus, utcnow


def build_export_asset(shard: Shard):
    @asset(
        key=shard.asset_key("export"),
        # Every document of the shard feeds some project's export; the run's rows are read from the database.
        deps=[AssetDep(shard.asset_key("validated_rows"), partition_mapping=AllPartitionMapping())],
        partitions_def=projects_partitions,
        group_name=shard.group,
        kinds={"csv", "excel"},
        description="CSV and XLSX of a run's dataset: one row per document or entity, metadata and provenance "
        "columns, and a codebook sheet.",
    )
    def export(context: AssetExecutionContext, db: DatabaseResource, files: StorageResource) -> MaterializeResult:
        project_id = uuid.UUID(hex=context.partition_key)
        tagged_run, tagged_tenant = context.run.tags.get(RUN_TAG), context.run.tags.get(WORKSPACE_TAG)
        if tagged_tenant:
            tenant_id: uuid.UUID | None = uuid.UUID(tagged_tenant)
        else:
            with db.session(None) as session:
                tenant_id = project_tenant(session, project_id)
        with db.session(tenant_id) as session:
            project = session.get(Project, project_id) if tenant_id else None
            if project is None:
                raise ValueError(f"project {project_id} does not exist")
            run = session.get(Run, uuid.UUID(tagged_run)) if tagged_run else None
            result = write_export(session, files.storage(), project, run, context.run_id)
            if run is not None:
                run.status = RunStatus.succeeded
                run.finished_at = utcnow()
            context.log.info(f"run {run.id if run else '(latest values)'}: exported {result.row_count} rows")
            return MaterializeResult(
                metadata={
                    "rows": result.row_count,
                    "run_id": str(run.id) if run else "latest values",
                    "export_id": str(result.id),
                }
            )

    return export
