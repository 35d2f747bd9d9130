"""What becomes of an application run, given what its Dagster runs are doing: one plain function per state.

The sensor (defs/sensors/run_lifecycle.py) reads Dagster's run records into `DagsterRunView`s and carries out the
`Step` these functions return (cancel, report a silent worker, launch the export); the functions themselves change
only the run's row, so they are tested without Dagster."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from coderai_assets.storage.models import Run, RunStatus, utcnow

# Dagster's run statuses, as their values, that this module needs to tell apart.
SUCCESS, STARTED = "SUCCESS", "STARTED"


@dataclass(frozen=True)
class DagsterRunView:
    """What the state functions need of one Dagster run of an application run."""

    run_id: str
    job_name: str
    status: str
    attempt: int
    finished: bool  # success, failure or canceled
    ended: bool  # finished and nothing of it is to come (no retry of it pending)
    started_at: float  # a timestamp: when it started, or was created when it never started


@dataclass
class Step:
    """What the sensor does for a run besides the row changes: Dagster runs to cancel, silent workers to report
    failed (id, message), and whether to launch the run's export."""

    cancel: list[str] = field(default_factory=list)
    report_failed: list[tuple[str, str]] = field(default_factory=list)
    launch_export: bool = False


def record_status(run: Run, views: list[DagsterRunView]) -> None:
    """The run's row keeps its Dagster runs' status (the API reads it there) and every id it ever had."""
    status = {v.run_id: v.status for v in views}
    if status != run.dagster_status:
        run.dagster_status = status
        run.dagster_run_ids = sorted(set(run.dagster_run_ids or []) | set(status))


def follow_canceled(views: list[DagsterRunView]) -> Step:
    """Its document threads stop by themselves; this stops the Dagster runs that are left."""
    return Step(cancel=[v.run_id for v in views if not v.finished])


def follow_exporting(run: Run, current: list[DagsterRunView], export_job: str) -> Step:
    """The documents are done. The documents' Dagster run writes the export itself when it finishes them; when the
    current attempt's runs ended without one, the export job is launched; when that failed, so did the run."""
    if not all(v.ended for v in current):
        return Step()
    exports = [v for v in current if v.job_name == export_job]
    if not exports:
        return Step(launch_export=True)
    if not any(v.status == SUCCESS for v in exports):
        _fail(run, "export_failed", "the export failed")
    return Step()


def silent_workers(
    current: list[DagsterRunView], beats: Mapping[str, datetime], timeout_seconds: float, now: float
) -> list[DagsterRunView]:
    """The started Dagster runs whose worker wrote no heartbeat (pipeline/coding.py) for `timeout_seconds`, counted
    from the run's start when it never wrote one."""
    silent = []
    for view in current:
        if view.status != STARTED:
            continue
        beat = beats.get(view.run_id)
        last = beat.timestamp() if beat else view.started_at
        if now - last > timeout_seconds:
            silent.append(view)
    return silent


def follow_coding(
    run: Run,
    current: list[DagsterRunView],
    beats: Callable[[list[str]], Mapping[str, datetime]],
    timeout_seconds: float,
) -> Step:
    """A queued or running run. A worker gone silent though its code server did not say so (it says within
    seconds, nearly always) is reported failed, so that Dagster's run retries re-execute it like any killed worker.
    When every Dagster run ended, retries spent, and documents are still pending, they will never finish: the run
    fails (a retry of the run goes on from what is committed)."""
    if run.status == RunStatus.running:
        started = [v.run_id for v in current if v.status == STARTED]
        silent = silent_workers(current, beats(started), timeout_seconds, time.time()) if started else []
        if silent:
            message = f"no heartbeat from the run worker for {timeout_seconds:.0f} s: it is gone"
            return Step(report_failed=[(v.run_id, message) for v in silent])
    if current and all(v.ended for v in current):
        failed = [v.run_id for v in current if v.status != SUCCESS]
        _fail(
            run,
            "run_worker_failed",
            f"Dagster runs ended before all documents were processed: {failed or 'none failed'}",
        )
    return Step()


def follow(
    run: Run,
    views: list[DagsterRunView],
    export_job: str,
    beats: Callable[[list[str]], Mapping[str, datetime]],
    timeout_seconds: float,
) -> Step:
    """One tick for one run: its status recorded, then the function of its state. An ended run (succeeded,
    failed) is followed only until its Dagster runs have ended too, which recording their status is."""
    record_status(run, views)
    if run.status == RunStatus.canceled:
        return follow_canceled(views)
    # The current attempt's Dagster runs (a retry's auto re-executions carry the same tags).
    current = [v for v in views if v.attempt == run.attempt]
    if run.status == RunStatus.exporting:
        return follow_exporting(run, current, export_job)
    if run.status == RunStatus.running or (run.status == RunStatus.queued and current):
        return follow_coding(run, current, beats, timeout_seconds)
    return Step()  # ended, or queued and not launched by the intake sensor yet


def _fail(run: Run, code: str, error: str) -> None:
    run.status, run.error_code, run.error, run.finished_at = RunStatus.failed, code, error, utcnow()
