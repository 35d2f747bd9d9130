"""The intake sensor: the only place that writes to Dagster for the application. Each tick it

1. registers new uploads as partitions of their project's shard (one batched request per shard),
2. for projects with auto-processing on and an accepted full run, records a run over the new documents,
3. launches the oldest queued run of each project that has no other run under way: one Dagster run over the span
   of its keys in the shard, whatever the number of documents (a sample of N random documents is one Dagster run,
   not N); a run of many documents is split into `run_parallelism` Dagster runs over disjoint spans, one process
   each, so it computes on several cores.

The facade only records uploads and runs, so a request never waits on Dagster. Partition adds are idempotent and
every launch has a run key, so a tick that is retried after a crash does no harm.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from dagster import (
    AddDynamicPartitionsRequest,
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)
from sqlalchemy import text, update

from coderai_assets.defs.partitions import (
    ATTEMPT_TAG,
    PROJECT_NAME_TAG,
    PROJECT_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    RUN_TAG,
    SLOT_TAG,
    WORKSPACE_NAME_TAG,
    WORKSPACE_TAG,
    Shard,
    document_key,
)
from coderai_assets.defs.resources import DatabaseResource
from coderai_assets.domain.runs import create_auto_run
from coderai_assets.storage.models import (
    Document,
    Project,
    Run,
    RunDocumentStatus,
    RunStatus,
    Tenant,
    utcnow,
)
from coderai_assets.storage.repositories import runs
from coderai_assets.tracing import TRACEPARENT_TAG

INTAKE_BATCH = 10_000  # uploads registered per tick; the rest wait for the next one
# Documents a Dagster run must have at least before a run is split: a run worker's start costs seconds of CPU.
MIN_PART = 50


@dataclass
class ShardKeys:
    """A shard's partition keys in Dagster's order, plus what this tick adds at the end."""

    existing: list[str]
    added: list[str] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._index = {k: i for i, k in enumerate(self.existing)}

    def add(self, keys: list[str]) -> None:
        for key in keys:
            if key not in self._index:
                self._index[key] = len(self._index)
                self.added.append(key)

    def spans(self, keys: list[str], parts: int) -> list[tuple[str, str]]:
        """`keys` in the shard's order, cut into at most `parts` contiguous groups of at least MIN_PART: the first
        and last key of each. Range runs over them cover every key, and no two cover the same one."""
        self.add(keys)
        ordered = sorted(keys, key=self._index.__getitem__)
        parts = max(1, min(parts, len(ordered) // MIN_PART))
        size = -(-len(ordered) // parts)
        return [(ordered[i], ordered[min(i + size, len(ordered)) - 1]) for i in range(0, len(ordered), size)]


@dataclass
class IntakePlan:
    registered: int = 0
    auto_runs: list[uuid.UUID] = field(default_factory=list)
    run_requests: list[RunRequest] = field(default_factory=list)
    keys: dict[int, ShardKeys] = field(default_factory=dict)

    def partition_requests(self, shards: list[Shard]) -> list[AddDynamicPartitionsRequest]:
        return [
            AddDynamicPartitionsRequest(partitions_def_name=shards[i].partitions_name, partition_keys=k.added)
            for i, k in sorted(self.keys.items())
            if k.added
        ]


def _shard_keys(plan: IntakePlan, instance: DagsterInstance, shard: Shard) -> ShardKeys:
    if shard.index not in plan.keys:
        plan.keys[shard.index] = ShardKeys(list(instance.get_dynamic_partitions(shard.partitions_name)))
    return plan.keys[shard.index]


def register_uploads(db: DatabaseResource, instance: DagsterInstance, shards: list[Shard], plan: IntakePlan) -> None:
    with db.session(None) as session:
        rows = session.execute(
            text("select id, tenant_id, project_id, shard from coderai_unregistered_documents(:n)"),
            {"n": INTAKE_BATCH},
        ).all()
    by_project: dict[tuple[uuid.UUID, uuid.UUID, int], list[uuid.UUID]] = defaultdict(list)
    for row in rows:
        by_project[(row.tenant_id, row.project_id, min(row.shard, len(shards) - 1))].append(row.id)
    for (tenant_id, project_id, shard_index), document_ids in by_project.items():
        # A project's uploads go in together, in upload order, so its full run is one contiguous range.
        _shard_keys(plan, instance, shards[shard_index]).add([document_key(project_id, d) for d in document_ids])
        with db.session(tenant_id) as session:
            session.execute(
                update(Document)
                .where(Document.id.in_(document_ids), Document.registered_at.is_(None))
                .values(registered_at=utcnow())
            )
            project = session.get(Project, project_id)
            if project is not None and project.auto_process:
                run = create_auto_run(session, project, document_ids)
                if run is not None:
                    plan.auto_runs.append(run.id)
        plan.registered += len(document_ids)


def launch_queued_runs(
    db: DatabaseResource, instance: DagsterInstance, shards: list[Shard], plan: IntakePlan, parallelism: int = 1
) -> None:
    with db.session(None) as session:
        active = session.execute(
            text("select id, tenant_id, project_id, status from coderai_active_runs()")  # oldest first
        ).all()
    busy: set[uuid.UUID] = set()  # projects with a run under way: their runs share the documents' chunks
    for row in active:
        if row.project_id in busy:
            continue
        busy.add(row.project_id)
        if row.status != RunStatus.queued:
            continue  # under way
        with db.session(row.tenant_id) as session:
            project, run = session.get(Project, row.project_id), session.get(Run, row.id)
            if project is None or run is None or run.status != RunStatus.queued:
                continue
            attempt = {RUN_TAG: str(run.id), ATTEMPT_TAG: str(run.attempt)}
            if instance.get_run_ids(RunsFilter(tags=attempt), limit=1):
                continue  # launched already, waiting in Dagster's queue
            # Only what is left to do: a retry (a new attempt) leaves the done documents out.
            documents = runs.document_ids(session, run.id, RunDocumentStatus.pending)
            if not documents:
                run.status, run.error, run.finished_at = RunStatus.failed, "the run has no documents", utcnow()
                continue
            shard = shards[min(project.shard, len(shards) - 1)]
            # Keys a crashed tick marked as registered but never added are added again here.
            spans = _shard_keys(plan, instance, shard).spans(
                [document_key(project.id, d) for d in documents], parallelism
            )
            workspace = session.get(Tenant, project.tenant_id)
            suffix = f"-a{run.attempt}" if run.attempt else ""
            parent = (run.trace_context or {}).get("traceparent")
            traceparent = {TRACEPARENT_TAG: parent} if parent else {}
            for part, (start, end) in enumerate(spans):
                plan.run_requests.append(
                    RunRequest(
                        run_key=f"run-{run.id}{suffix}" + (f"-{part}" if part else ""),
                        job_name=shard.documents_job,
                        tags={
                            **attempt,
                            PROJECT_TAG: str(project.id),
                            SLOT_TAG: f"{project.id}:{part}",
                            WORKSPACE_TAG: str(project.tenant_id),
                            PROJECT_NAME_TAG: project.name[:200],
                            WORKSPACE_NAME_TAG: (workspace.name if workspace else "")[:200],
                            "coderai/run_kind": run.kind.value,
                            RANGE_START_TAG: start,
                            RANGE_END_TAG: end,
                            **traceparent,
                        },
                    )
                )


def plan_intake(
    db: DatabaseResource, instance: DagsterInstance, shards: list[Shard], parallelism: int = 1
) -> IntakePlan:
    plan = IntakePlan()
    register_uploads(db, instance, shards, plan)
    launch_queued_runs(db, instance, shards, plan, parallelism)
    return plan


def build_intake_sensor(shards: list[Shard], documents_jobs: list, parallelism: int = 1):
    @sensor(
        name="intake",
        jobs=documents_jobs,
        minimum_interval_seconds=1,
        default_status=DefaultSensorStatus.RUNNING,
        description="Registers uploads as partitions, records auto-processing runs and launches queued runs.",
    )
    def intake(context: SensorEvaluationContext, db: DatabaseResource) -> SensorResult:
        plan = plan_intake(db, context.instance, shards, parallelism)
        if plan.registered or plan.run_requests:
            context.log.info(
                f"registered {plan.registered} documents, {len(plan.auto_runs)} auto runs, "
                f"launching {len(plan.run_requests)} runs"
            )
        return SensorResult(
            run_requests=plan.run_requests,
            dynamic_partitions_requests=plan.partition_requests(shards),
        )

    return intake
