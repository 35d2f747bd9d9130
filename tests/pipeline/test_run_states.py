"""The run state machine without Dagster: each state's function, given what the Dagster runs are doing."""

from datetime import UTC, datetime, timedelta

from coderai_assets.pipeline.run_states import DagsterRunView, Step, follow
from coderai_assets.storage.models import Run, RunStatus

EXPORT_JOB = "export_job_0"


def _run(status: RunStatus, attempt: int = 0) -> Run:
    return Run(status=status, attempt=attempt, dagster_status={}, dagster_run_ids=[])


def _view(
    run_id: str,
    status: str,
    *,
    job: str = "documents_job_0",
    attempt: int = 0,
    ended: bool | None = None,
    started_at: float = 0.0,
) -> DagsterRunView:
    finished = status in ("SUCCESS", "FAILURE", "CANCELED")
    return DagsterRunView(run_id, job, status, attempt, finished, finished if ended is None else ended, started_at)


def _no_beats(ids):
    return {}


def test_each_state_does_what_its_dagster_runs_call_for():
    # Queued and not launched yet: nothing, though the status is recorded.
    queued = _run(RunStatus.queued)
    assert follow(queued, [], EXPORT_JOB, _no_beats, 120) == Step()
    assert queued.status == RunStatus.queued

    # Canceled: the unfinished Dagster runs are cancelled, the finished left alone.
    canceled = _run(RunStatus.canceled)
    step = follow(canceled, [_view("a", "STARTED"), _view("b", "SUCCESS")], EXPORT_JOB, _no_beats, 120)
    assert step.cancel == ["a"] and canceled.dagster_status == {"a": "STARTED", "b": "SUCCESS"}

    # Exporting, the documents' run still going: wait; ended without an export: launch it; its export failed: fail.
    exporting = _run(RunStatus.exporting)
    assert not follow(exporting, [_view("a", "STARTED")], EXPORT_JOB, _no_beats, 120).launch_export
    assert follow(exporting, [_view("a", "SUCCESS")], EXPORT_JOB, _no_beats, 120).launch_export
    follow(exporting, [_view("a", "SUCCESS"), _view("e", "FAILURE", job=EXPORT_JOB)], EXPORT_JOB, _no_beats, 120)
    assert exporting.status == RunStatus.failed and exporting.error_code == "export_failed"

    # Running, every Dagster run ended with documents pending: failed, naming the runs that failed.
    running = _run(RunStatus.running)
    follow(running, [_view("a", "FAILURE")], EXPORT_JOB, _no_beats, 120)
    assert running.status == RunStatus.failed and running.error_code == "run_worker_failed" and "'a'" in running.error

    # A failure Dagster will still retry has not ended: the run waits for the re-execution.
    waiting = _run(RunStatus.running)
    follow(waiting, [_view("a", "FAILURE", ended=False)], EXPORT_JOB, _no_beats, 120)
    assert waiting.status == RunStatus.running


def test_only_the_current_attempts_dagster_runs_decide():
    retried = _run(RunStatus.running, attempt=1)
    follow(
        retried,
        [_view("old", "FAILURE", attempt=0), _view("new", "STARTED", attempt=1, started_at=9e18)],
        EXPORT_JOB,
        _no_beats,
        120,
    )
    assert retried.status == RunStatus.running  # the earlier attempt's failure is history
    assert retried.dagster_run_ids == ["new", "old"]


def test_a_silent_worker_is_reported_failed_and_a_beating_one_is_not():
    long_ago = (datetime.now(UTC) - timedelta(seconds=600)).timestamp()
    views = [_view("silent", "STARTED", started_at=long_ago), _view("beating", "STARTED", started_at=long_ago)]
    asked = []

    def beats(ids):
        asked.append(sorted(ids))
        return {"beating": datetime.now(UTC)}

    run = _run(RunStatus.running)
    step = follow(run, views, EXPORT_JOB, beats, 120)
    assert [run_id for run_id, _ in step.report_failed] == ["silent"]
    assert "no heartbeat" in step.report_failed[0][1]
    assert asked == [["beating", "silent"]] and run.status == RunStatus.running
    # A worker that started a moment ago has until the timeout to beat.
    fresh = _run(RunStatus.running)
    assert not follow(
        fresh, [_view("new", "STARTED", started_at=datetime.now(UTC).timestamp())], EXPORT_JOB, _no_beats, 120
    ).report_failed
