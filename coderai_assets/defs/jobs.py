"""The two jobs of a shard (code documents, a key or a key range per run; export a project's dataset) and the
hourly housekeeping job."""

from __future__ import annotations

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    ScheduleDefinition,
    define_asset_job,
    in_process_executor,
    job,
    op,
)

from coderai_assets.defs.partitions import Shard, projects_partitions
from coderai_assets.defs.resources import DatabaseResource, StorageResource
from coderai_assets.pipeline.housekeeping import sweep
from coderai_assets.settings import Settings


def build_shard_jobs(shard: Shard, document_assets, export_asset) -> list:
    documents = define_asset_job(
        name=shard.documents_job,
        selection=AssetSelection.assets(document_assets),
        partitions_def=shard.partitions,
        # The multiprocess executor doubled the time of a small run (docs/decisions.md: asset graph).
        executor_def=in_process_executor,
    )
    export = define_asset_job(
        name=shard.export_job,
        selection=AssetSelection.assets(export_asset),
        partitions_def=projects_partitions,
        executor_def=in_process_executor,
    )
    return [documents, export]


def build_housekeeping(settings: Settings):
    """An hourly job that removes what would otherwise grow forever or outlive its row
    (`pipeline/housekeeping.py`)."""

    @op(name="sweep")
    def sweep_op(context, db: DatabaseResource, files: StorageResource) -> None:
        swept = sweep(db.factory(), settings, files.storage().path("."))
        context.log.info(f"housekeeping: {swept}")

    @job(name="housekeeping", executor_def=in_process_executor)
    def housekeeping():
        sweep_op()

    # Running from the start, as the sensors are: Dagster's schedules are stopped by default.
    hourly = ScheduleDefinition(
        name="housekeeping_hourly",
        job=housekeeping,
        cron_schedule="17 * * * *",
        default_status=DefaultScheduleStatus.RUNNING,
    )
    return housekeeping, hourly
