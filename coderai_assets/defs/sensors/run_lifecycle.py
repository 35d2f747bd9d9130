"""Moves application runs along: records the status of their Dagster runs (the API reads it from there, and a
retry waits for them to end; a run that ended is followed until they have), launches
the export job for a run whose documents are done but whose Dagster runs ended without exporting it (the documents'
run exports by itself), terminates the Dagster runs of a cancelled run, and fails runs whose Dagster runs ended
without finishing their documents once Dagster's run retries are spent (a killed run worker is re-executed first,
and the re-execution goes on from what is committed)."""

from __future__ import annotations

import time

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
from sqlalchemy import select, text

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
from coderai_assets.storage.models import Project, Run, RunStatus, RunWorkerBeat, utcnow

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


def silent_workers(session, run_id, records: list[RunRecord], timeout_seconds: float) -> list[RunRecord]:
    """The started Dagster runs of a run whose worker wrote no heartbeat (pipeline/coding.py) for
    `timeout_seconds`, counted from the run's start when it never wrote one."""
    started = [r for r in records if r.dagster_run.status == DagsterRunStatus.STARTED]
    if not started:
        return []
    beats = dict(
        session.execute(
            select(RunWorkerBeat.dagster_run_id, RunWorkerBeat.beat_at).where(
                RunWorkerBeat.run_id == run_id,
                RunWorkerBeat.dagster_run_id.in_([r.dagster_run.run_id for r in started]),
            )
        ).all()
    )
    now = time.time()
    silent = []
    for record in started:
        beat = beats.get(record.dagster_run.run_id)
        last = beat.timestamp() if beat else (record.start_time or record.create_timestamp.timestamp())
        if now - last > timeout_seconds:
            silent.append(record)
    return silent


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
            records = context.instance.get_run_records(RunsFilter(tags={RUN_TAG: str(row.id)}))
            with db.session(row.tenant_id) as session:
                run, project = session.get(Run, row.id), session.get(Project, row.project_id)
                if run is None or project is None:
                    continue
                status = {r.dagster_run.run_id: r.dagster_run.status.value for r in records}
                if status != run.dagster_status:
                    run.dagster_status = status
                    run.dagster_run_ids = sorted(set(run.dagster_run_ids or []) | set(status))
                if run.status == RunStatus.canceled:
                    for r in records:  # its document threads stop by themselves; this stops what is left
                        if r.dagster_run.status not in _FINISHED:
                            context.instance.run_coordinator.cancel_run(r.dagster_run.run_id)
                    continue
                if run.status not in (RunStatus.queued, RunStatus.running, RunStatus.exporting):
                    continue  # ended (succeeded, failed): followed only until its Dagster runs have ended too
                # The current attempt's Dagster runs (a retry's auto re-executions carry the same tags).
                current = [r for r in records if r.dagster_run.tags.get(ATTEMPT_TAG, "0") == str(run.attempt)]
                if run.status == RunStatus.queued and not current:
                    continue  # the intake sensor has not launched it yet
                dagster_runs = [r.dagster_run for r in current]
                shard = shards[min(project.shard, len(shards) - 1)]
                if run.status == RunStatus.exporting:
                    if not all(run_ended(r, retries) for r in current):
                        continue  # the documents' run writes the export itself when it finishes them
                    exports = [r for r in dagster_runs if r.job_name == shard.export_job]
                    if exports:
                        if not any(r.status == DagsterRunStatus.SUCCESS for r in exports):
                            run.status, run.error, run.finished_at = RunStatus.failed, "the export failed", utcnow()
                            run.error_code = "export_failed"
                        continue
                    requests.append(
                        RunRequest(
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
                    )
                elif run.status == RunStatus.running and (
                    silent := silent_workers(session, run.id, current, worker_timeout_seconds)
                ):
                    # Its worker is gone though the code server did not say so (it says within seconds, nearly
                    # always): failed here, so that Dagster's run retries re-execute it like any killed worker.
                    for record in silent:
                        context.instance.report_run_failed(
                            record.dagster_run,
                            f"no heartbeat from the run worker for {worker_timeout_seconds:.0f} s: it is gone",
                        )
                elif current and all(run_ended(r, retries) for r in current):
                    # Every Dagster run ended, retries spent, yet documents are still pending: they will never
                    # finish. A retry of the run (POST /runs/{id}/retry) goes on from what is committed.
                    failed = [r.run_id for r in dagster_runs if r.status != DagsterRunStatus.SUCCESS]
                    run.status, run.error_code = RunStatus.failed, "run_worker_failed"
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
