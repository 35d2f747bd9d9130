"""Moves application runs along: records the status of their Dagster runs (the API reads it from there), launches
the export job for a run whose documents are done but whose Dagster runs ended without exporting it (the documents'
run exports by itself), and fails runs whose Dagster runs ended without finishing their documents (a crash, a
cancel)."""

from __future__ import annotations

from dagster import (
    AddDynamicPartitionsRequest,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)
from sqlalchemy import text

from coderai_assets.defs.partitions import (
    PROJECT_TAG,
    PROJECTS_PARTITIONS,
    RUN_TAG,
    SLOT_TAG,
    WORKSPACE_TAG,
    Shard,
    project_partition,
)
from coderai_assets.defs.resources import DatabaseResource
from coderai_assets.storage.models import Project, Run, RunStatus, utcnow

_FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def build_run_lifecycle_sensor(shards: list[Shard], export_jobs: list):
    @sensor(
        name="run_lifecycle",
        jobs=export_jobs,
        minimum_interval_seconds=1,
        default_status=DefaultSensorStatus.RUNNING,
        description="Records Dagster run status, starts the export of finished runs and fails runs whose "
        "Dagster runs died.",
    )
    def run_lifecycle(context: SensorEvaluationContext, db: DatabaseResource) -> SensorResult:
        requests: list[RunRequest] = []
        with db.session(None) as session:
            active = session.execute(text("select id, tenant_id, project_id, status from coderai_active_runs()")).all()
        for row in active:
            dagster_runs = context.instance.get_runs(RunsFilter(tags={RUN_TAG: str(row.id)}))
            if row.status == RunStatus.queued and not dagster_runs:
                continue  # the intake sensor has not launched it yet
            with db.session(row.tenant_id) as session:
                run, project = session.get(Run, row.id), session.get(Project, row.project_id)
                if run is None or project is None:
                    continue
                status = {r.run_id: r.status.value for r in dagster_runs}
                if status != run.dagster_status:
                    run.dagster_status = status
                    run.dagster_run_ids = sorted(set(run.dagster_run_ids or []) | set(status))
                shard = shards[min(project.shard, len(shards) - 1)]
                if run.status == RunStatus.exporting:
                    if not all(r.status in _FINISHED for r in dagster_runs):
                        continue  # the documents' run writes the export itself when it finishes them
                    exports = [r for r in dagster_runs if r.job_name == shard.export_job]
                    if exports:
                        if not any(r.status == DagsterRunStatus.SUCCESS for r in exports):
                            run.status, run.error, run.finished_at = RunStatus.failed, "the export failed", utcnow()
                        continue
                    requests.append(
                        RunRequest(
                            run_key=f"export-{run.id}",
                            job_name=shard.export_job,
                            partition_key=project_partition(project.id),
                            tags={
                                RUN_TAG: str(run.id),
                                PROJECT_TAG: str(project.id),
                                SLOT_TAG: f"{project.id}:0",
                                WORKSPACE_TAG: str(project.tenant_id),
                            },
                        )
                    )
                elif dagster_runs and all(r.status in _FINISHED for r in dagster_runs):
                    # Every Dagster run ended, yet documents are still pending: they will never finish.
                    failed = [r.run_id for r in dagster_runs if r.status != DagsterRunStatus.SUCCESS]
                    run.status = RunStatus.failed
                    run.error = f"Dagster runs ended before all documents were processed: {failed or 'none failed'}"
                    run.finished_at = utcnow()
        partitions = sorted({r.partition_key for r in requests if r.partition_key})
        return SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=(
                [AddDynamicPartitionsRequest(partitions_def_name=PROJECTS_PARTITIONS, partition_keys=partitions)]
                if partitions
                else []
            ),
        )

    return run_lifecycle
