"""Moves application runs along: records the status of their Dagster runs (the API reads it from there, and a
retry waits for them to end; a run that ended is followed until they have), launches
the export job for a run whose documents are done but whose Dagster runs ended without exporting it (the documents'
run exports by itself), terminates the Dagster runs of a cancelled run, and fails runs whose Dagster runs ended
without finishing their documents once Dagster's run retries are spent (a killed run worker is re-executed first,
and the re-execution goes on from what is committed)."""

from __future__ import annotations

import time
from functools import partial

from dagster import (
    AddDynamicPartitionsRequest,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRecord,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)
from sqlalchemy import text

from coderai_assets.defs.dagster_private import AUTO_RETRY_RUN_ID_TAG, WILL_RETRY_TAG
from coderai_assets.defs.partitions import (
    ATTEMPT_TAG,
    PROJECT_TAG,
    PROJECTS_PARTITIONS,
    RUN_TAG,
    SLOT_TAG,
    WORKSPACE_TAG,
    Shard,
    project_partition,
)
from coderai_assets.defs.resources import DatabaseResource
from coderai_assets.pipeline import run_states
from coderai_assets.pipeline.run_states import DagsterRunView
from coderai_assets.storage.models import Project, Run
from coderai_assets.storage.repositories import runs

_FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
# A failed Dagster run whose failure is not yet tagged with Dagster's retry decision: the tag follows the failure
# within moments; after this long without it, the run counts as ended (retries turned off, say).
_RETRY_DECISION_SECONDS = 60.0


def run_ended(record: RunRecord, retries_enabled: bool) -> bool:
    """The Dagster run ended and nothing of it is to come: not a failure that Dagster's run retries (dagster.yaml
    `run_retries`) will re-execute and has not yet. A killed run worker is failed by its code server within
    seconds, then re-executed by the daemon; the re-execution, which carries the same tags, is a run of its own."""
    run = record.dagster_run
    if run.status not in _FINISHED:
        return False
    if run.status != DagsterRunStatus.FAILURE or not retries_enabled:
        return True
    decision = run.tags.get(WILL_RETRY_TAG)
    if decision is None:
        ended_at = record.end_time or record.update_timestamp.timestamp()
        return time.time() - ended_at > _RETRY_DECISION_SECONDS
    return decision != "true" or run.tags.get(AUTO_RETRY_RUN_ID_TAG) is not None


def view_of(record: RunRecord, retries_enabled: bool) -> DagsterRunView:
    """What the state functions (pipeline/run_states.py) need of a Dagster run record."""
    run = record.dagster_run
    return DagsterRunView(
        run_id=run.run_id,
        job_name=run.job_name,
        status=run.status.value,
        attempt=int(run.tags.get(ATTEMPT_TAG, "0")),
        finished=run.status in _FINISHED,
        ended=run_ended(record, retries_enabled),
        started_at=record.start_time or record.create_timestamp.timestamp(),
    )


def build_run_lifecycle_sensor(shards: list[Shard], export_jobs: list, worker_timeout_seconds: float = 120.0):
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
        retries = context.instance.run_retries_enabled
        for row in active:
            records = {
                r.dagster_run.run_id: r
                for r in context.instance.get_run_records(RunsFilter(tags={RUN_TAG: str(row.id)}))
            }
            with db.session(row.tenant_id) as session:
                run, project = session.get(Run, row.id), session.get(Project, row.project_id)
                if run is None or project is None:
                    continue
                shard = shards[min(project.shard, len(shards) - 1)]
                was = run.status
                step = run_states.follow(
                    run,
                    [view_of(r, retries) for r in records.values()],
                    shard.export_job,
                    partial(runs.worker_beats, session, run.id),
                    worker_timeout_seconds,
                )
                for dagster_run_id in step.cancel:
                    context.instance.run_coordinator.cancel_run(dagster_run_id)
                for dagster_run_id, message in step.report_failed:
                    context.instance.report_run_failed(records[dagster_run_id].dagster_run, message)
                if step.launch_export:
                    requests.append(_export_request(run, project, shard))
                if run.status != was:
                    context.log.warning(f"run {run.id} {run.status}: {run.error_code}: {run.error}")
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


def _export_request(run: Run, project: Project, shard: Shard) -> RunRequest:
    return RunRequest(
        run_key=f"export-{run.id}" + (f"-a{run.attempt}" if run.attempt else ""),
        job_name=shard.export_job,
        partition_key=project_partition(project.id),
        tags={
            RUN_TAG: str(run.id),
            ATTEMPT_TAG: str(run.attempt),
            PROJECT_TAG: str(project.id),
            SLOT_TAG: f"{project.id}:0",
            WORKSPACE_TAG: str(project.tenant_id),
        },
    )
