"""Carries out the deletions users asked for (domain/deletion.py): for each, once none of its Dagster runs is under
way (they are cancelled first), its Dagster runs, partitions and materialisations, then its files, then its rows.

The facade only marks what is deleted; this is where Dagster's side goes, as for every other write to Dagster. A
deletion whose runs are still stopping waits for a later tick; one that failed half-way is done again from the
start, since every step is idempotent."""

from __future__ import annotations

from collections.abc import Callable

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from coderai_assets.defs.partitions import PROJECT_TAG, PROJECTS_PARTITIONS, RUN_TAG, Shard, project_partition
from coderai_assets.defs.resources import DatabaseResource, StorageResource
from coderai_assets.defs.sensors.run_lifecycle import run_ended
from coderai_assets.domain import deletion
from coderai_assets.storage.repositories import deletions

_CANCELLABLE = {
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
}
PURGES_PER_TICK = 20


def build_deletions_sensor(shards: list[Shard]):
    @sensor(
        name="deletions",
        minimum_interval_seconds=2,
        default_status=DefaultSensorStatus.RUNNING,
        description="Removes deleted workspaces, projects and documents: their Dagster runs and partitions, "
        "files and rows, once their runs have stopped.",
    )
    def deletions_sensor(context: SensorEvaluationContext, db: DatabaseResource, files: StorageResource):
        with db.session(None) as session:
            pending = deletions.pending(session)
        done, waiting = 0, 0
        for kind, target_id, tenant_id in pending[:PURGES_PER_TICK]:
            with db.session(tenant_id) as session:
                purge = deletion.plan(session, deletion.Kind(kind), target_id, tenant_id)
                if purge is None:
                    continue
                if not stopped(context.instance, purge, context.log.warning):
                    waiting += 1
                    continue
                remove_from_dagster(context.instance, shards, purge)
                deletion.remove_files_and_rows(session, files.storage(), purge)
            done += 1
            context.log.info(f"deleted {kind} {target_id}")
        return SkipReason(f"{done} deleted, {waiting} waiting for their runs to stop, {len(pending)} pending")

    return deletions_sensor


def _records(instance: DagsterInstance, purge: deletion.Purge):
    filters = [RunsFilter(tags={PROJECT_TAG: str(p)}) for p in purge.project_ids]
    filters += [RunsFilter(tags={RUN_TAG: str(r)}) for r in purge.run_ids]
    for runs_filter in filters:
        yield from instance.get_run_records(runs_filter)


def stopped(instance: DagsterInstance, purge: deletion.Purge, warn: Callable[[str], None]) -> bool:
    """Whether none of the purge's Dagster runs is under way or still to be retried; those that are get cancelled
    (a queued one never starts; a running one is terminated) and the purge waits for them."""
    under_way = [r for r in _records(instance, purge) if not run_ended(r, instance.run_retries_enabled)]
    for record in under_way:
        run = record.dagster_run
        if run.status in _CANCELLABLE:
            try:
                instance.run_coordinator.cancel_run(run.run_id)
            except Exception as exc:  # a launcher that cannot terminate: the purge waits for the run to end
                warn(f"deletion of {purge.kind} {purge.target_id}: could not cancel Dagster run {run.run_id}: {exc}")
    return not under_way


def remove_from_dagster(instance: DagsterInstance, shards: list[Shard], purge: deletion.Purge) -> None:
    """For a project or workspace, its Dagster runs with their events (the materialisations among them); then the
    purge's partitions. Dagster's event storages cannot wipe one partition's events (`wipe_asset_partitions` is not
    implemented by its SQL storages), so a deleted document's materialisations stay in the event log of runs that
    coded other documents too: they hold ids and counts, never text (docs/decisions.md: Deletion)."""
    if purge.project_ids:
        for record in list(_records(instance, purge)):
            instance.delete_run(record.dagster_run.run_id)
    for shard_index, key in purge.partitions:
        instance.delete_dynamic_partition(shards[min(shard_index, len(shards) - 1)].partitions_name, key)
    for project_id in purge.project_ids:
        instance.delete_dynamic_partition(PROJECTS_PARTITIONS, project_partition(project_id))
