"""The Dagster code location (served by `python -m coderai_assets.defs.code_server -m coderai_assets.definitions`).

The graph is fixed: its size depends on the number of shards (a setting), never on the projects, so the code
location loads without touching the database and nothing ever reloads it (docs/decisions.md: asset graph)."""

from __future__ import annotations

import warnings

from dagster import BetaWarning, Definitions

from coderai_assets.defs.agents import build_agent_job, build_agent_sensor
from coderai_assets.defs.assets.documents import build_document_assets
from coderai_assets.defs.assets.export import build_export_asset
from coderai_assets.defs.jobs import build_housekeeping, build_shard_jobs
from coderai_assets.defs.partitions import shards as make_shards
from coderai_assets.defs.resources import default_resources
from coderai_assets.defs.sensors.deletions import build_deletions_sensor
from coderai_assets.defs.sensors.intake import build_intake_sensor
from coderai_assets.defs.sensors.run_lifecycle import build_run_lifecycle_sensor
from coderai_assets.settings import Settings, get_settings

# Dagster's sensor decorator passes its own beta parameter and warns about it, in every process that loads this.
warnings.filterwarnings("ignore", message="Parameter `owners`", category=BetaWarning)


def build_definitions(settings: Settings, resources: dict[str, object]) -> Definitions:
    shards = make_shards(settings.dagster_shards)
    assets: list = []
    documents_jobs: list = []
    export_jobs: list = []
    for shard in shards:
        documents = build_document_assets(shard, settings)
        export = build_export_asset(shard)
        documents_job, export_job = build_shard_jobs(shard, documents, export)
        assets += [documents, export]
        documents_jobs.append(documents_job)
        export_jobs.append(export_job)
    housekeeping, hourly = build_housekeeping(settings)
    agent_job = build_agent_job(settings)
    return Definitions(
        assets=assets,
        jobs=[*documents_jobs, *export_jobs, housekeeping, agent_job],
        schedules=[hourly],
        sensors=[
            build_intake_sensor(shards, documents_jobs, settings.run_parallelism),
            build_run_lifecycle_sensor(shards, export_jobs, settings.run_worker_timeout_seconds),
            build_agent_sensor(agent_job),
            build_deletions_sensor(shards),
        ],
        resources=resources,
    )


defs = build_definitions(get_settings(), default_resources(get_settings()))
