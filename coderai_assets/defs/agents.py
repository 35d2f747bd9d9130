"""The agents' job and sensor: each refiner or co-pilot task the API records is done by one Dagster run of the
`agent_task` job (visible in the Dagster UI like any run), launched by the `agent_tasks` sensor, which also fails
a task whose Dagster run ended without finishing it (its worker died and Dagster's retries are spent)."""

from __future__ import annotations

import uuid

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    in_process_executor,
    job,
    op,
    sensor,
)
from sqlalchemy import text

from coderai_assets.defs.partitions import AGENT_TASK_TAG, PROJECT_TAG, WORKSPACE_TAG
from coderai_assets.defs.resources import DatabaseResource, LLMResource, StorageResource
from coderai_assets.defs.sensors.run_lifecycle import run_ended
from coderai_assets.engine.model_limits import resolve_limits
from coderai_assets.errors import DocumentRejected
from coderai_assets.ingest import codes
from coderai_assets.ingest.sandbox import ParseWorker
from coderai_assets.pipeline.agents import run_task
from coderai_assets.pipeline.coding import parse_limits
from coderai_assets.settings import Settings
from coderai_assets.storage.models import AgentTask, AgentTaskStatus, utcnow

AGENT_JOB = "agent_task"


def build_agent_job(settings: Settings):
    @op(name="do_agent_task")
    def do_agent_task(context, db: DatabaseResource, llm: LLMResource, files: StorageResource):
        task_id = uuid.UUID(context.run.tags[AGENT_TASK_TAG])
        tenant_id = uuid.UUID(context.run.tags[WORKSPACE_TAG])
        storage = files.storage()
        with ParseWorker(parse_limits(settings)) as worker:

            def parse(path: str) -> str:
                outcome = worker.parse(storage.read(path))
                if not outcome.ok or outcome.parsed is None:
                    raise DocumentRejected(outcome.error_message or "", code=outcome.error_code or codes.PARSE_FAILED)
                return outcome.parsed.text

            status = run_task(
                db.session,
                task_id,
                tenant_id,
                extractor_for=llm.extractor,
                parse=parse,
                settings=settings,
                limits=resolve_limits(settings),
                dagster_run_id=context.run_id,
            )
        context.log.info(f"agent task {task_id}: {status}")

    @job(name=AGENT_JOB, executor_def=in_process_executor, description="A refiner or co-pilot task of the API.")
    def agent_task():
        do_agent_task()

    return agent_task


def build_agent_sensor(agent_job):
    @sensor(
        name="agent_tasks",
        job=agent_job,
        minimum_interval_seconds=1,
        default_status=DefaultSensorStatus.RUNNING,
        description="Launches the refiner's and co-pilot's tasks and fails those whose Dagster run died.",
    )
    def agent_tasks(context: SensorEvaluationContext, db: DatabaseResource) -> SensorResult:
        requests: list[RunRequest] = []
        with db.session(None) as session:
            rows = session.execute(
                text("select id, tenant_id, project_id, status from coderai_open_agent_tasks()")
            ).all()
        retries = context.instance.run_retries_enabled
        for row in rows:
            records = context.instance.get_run_records(RunsFilter(tags={AGENT_TASK_TAG: str(row.id)}))
            if not records:
                requests.append(
                    RunRequest(
                        run_key=f"agent-{row.id}",
                        tags={
                            AGENT_TASK_TAG: str(row.id),
                            WORKSPACE_TAG: str(row.tenant_id),
                            PROJECT_TAG: str(row.project_id),
                        },
                    )
                )
                continue
            if not all(run_ended(r, retries) for r in records):
                continue
            with db.session(row.tenant_id) as session:
                task = session.get(AgentTask, row.id)
                if task is not None and not task.status.ended:
                    task.status, task.error_code, task.finished_at = (
                        AgentTaskStatus.failed,
                        "task_worker_failed",
                        utcnow(),
                    )
                    task.error = f"the Dagster run ended before the task: {[r.dagster_run.run_id for r in records]}"
        return SensorResult(run_requests=requests)

    return agent_tasks
