"""Moves application runs along: requests the export once every document of a run is done, and fails runs whose
Dagster runs ended without finishing their documents (a crash, a cancel)."""

import uuid

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)
from sqlalchemy import select

from coderai_assets.models import Run, RunStatus, utcnow
from coderai_assets.partitions import PROJECT_TAG, RUN_TAG, export_job_name
from coderai_assets.resources import DatabaseResource

_FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def build_run_lifecycle_sensor(projects: list[tuple[uuid.UUID, uuid.UUID]], export_jobs: list):
    tenants = dict(projects)

    @sensor(
        name="run_lifecycle",
        jobs=export_jobs,
        minimum_interval_seconds=3,
        default_status=DefaultSensorStatus.RUNNING,
        description="Starts the export of finished runs and fails runs whose Dagster runs died.",
    )
    def run_lifecycle(context: SensorEvaluationContext, db: DatabaseResource) -> SensorResult:
        requests: list[RunRequest] = []
        for project_id, tenant_id in tenants.items():
            with db.session(tenant_id) as session:
                active = session.scalars(
                    select(Run).where(
                        Run.project_id == project_id,
                        Run.status.in_([RunStatus.queued, RunStatus.running, RunStatus.exporting]),
                    )
                ).all()
                for run in active:
                    dagster_runs = context.instance.get_runs(RunsFilter(tags={RUN_TAG: str(run.id)}))
                    if run.status == RunStatus.exporting:
                        exports = [r for r in dagster_runs if r.job_name == export_job_name(project_id)]
                        if (
                            exports
                            and all(r.status in _FINISHED for r in exports)
                            and not any(r.status == DagsterRunStatus.SUCCESS for r in exports)
                        ):
                            run.status, run.error, run.finished_at = (
                                RunStatus.failed,
                                "the export failed",
                                utcnow(),
                            )
                            continue
                        requests.append(
                            RunRequest(
                                run_key=f"export-{run.id}",
                                job_name=export_job_name(project_id),
                                tags={RUN_TAG: str(run.id), PROJECT_TAG: str(project_id)},
                            )
                        )
                    elif dagster_runs and all(r.status in _FINISHED for r in dagster_runs):
                        # Every Dagster run ended, yet documents are still pending: they will never finish.
                        failed = [r.run_id for r in dagster_runs if r.status != DagsterRunStatus.SUCCESS]
                        run.status = RunStatus.failed
                        run.error = f"Dagster runs ended before all documents were processed: {failed or 'none failed'}"
                        run.finished_at = utcnow()
        return SensorResult(run_requests=requests)

    return run_lifecycle
