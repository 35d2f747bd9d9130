"""The two jobs of a shard: code documents (a key or a key range per run) and export a project's dataset."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job, in_process_executor

from coderai_assets.defs.partitions import Shard, projects_partitions


def build_shard_jobs(shard: Shard, document_assets, export_asset) -> list:
    documents = define_asset_job(
        name=shard.documents_job,
        selection=AssetSelection.assets(document_assets),
        partitions_def=shard.partitions,
        # The multiprocess executor doubled the time of a small run (DESIGN.md 2).
        executor_def=in_process_executor,
    )
    export = define_asset_job(
        name=shard.export_job,
        selection=AssetSelection.assets(export_asset),
        partitions_def=projects_partitions,
        executor_def=in_process_executor,
    )
    return [documents, export]
