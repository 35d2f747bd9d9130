"""A run's documents and chunks in flight at once, each chunk's answer committed as it arrives, and a run that goes
on from what it committed: after a failed chunk (retry), and never coding a done document twice."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from coderai_assets.defs.partitions import RUN_TAG
from coderai_assets.domain.runs import cancel_run, create_run, retry_run, run_progress
from coderai_assets.storage.db import tenant_session
from coderai_assets.storage.models import (
    Extraction,
    LlmAnswer,
    Project,
    Run,
    RunDocument,
    RunDocumentStatus,
    RunKind,
    RunStatus,
)
from tests.support.dagster import SHARD, _assets, _project, _register, _resources  # noqa: F401
from tests.support.runs import ANSWER, SlowModel, _code, _run


def test_chunks_and_documents_are_asked_in_parallel_within_the_call_limit(
    session_factory,
    tenant,
    settings,
    instance,
    long_files,
):
    settings = settings.model_copy(update={"chunk_chars": 1000, "llm_concurrency": 6, "document_concurrency": 2})
    model = SlowModel(messages=iter([]), answers={"*": ANSWER}, delay=0.3)
    _, doc_ids, keys, run_id = _run(session_factory, tenant, settings, instance, long_files)
    assert _code(settings, instance, tenant, run_id, keys, model).success
    # Two documents in flight, their chunks shared by six call slots: more than two calls at once, never seven.
    assert 2 < model.most_in_flight <= 6
    with tenant_session(session_factory, tenant) as session:
        run = session.get(Run, run_id)
        assert (run.status, run.documents_done) == (RunStatus.succeeded, 4)
        answers = session.scalar(select(func.count()).select_from(LlmAnswer).where(LlmAnswer.run_id == run_id))
        assert answers == run.llm_calls == len(model.prompts) and answers >= 4 * 3


def test_a_retry_asks_only_the_chunks_without_an_answer_and_codes_each_document_once(
    session_factory,
    tenant,
    settings,
    instance,
    long_files,
):
    settings = settings.model_copy(update={"chunk_chars": 1000})
    # One chunk of one document fails: that document fails, its other chunks' answers are committed all the same.
    model = SlowModel(messages=iter([]), answers={"*": ANSWER}, failing=["marcher-2-5 "])
    _, doc_ids, keys, run_id = _run(session_factory, tenant, settings, instance, long_files)
    assert _code(settings, instance, tenant, run_id, keys, model).success
    first_calls = len(model.prompts)
    with tenant_session(session_factory, tenant) as session:
        run = session.get(Run, run_id)
        # It ended (and exported) with one failed document, which a retry may code again.
        assert (run.status, run.documents_done, run.documents_failed) == (RunStatus.succeeded, 3, 1)
        failed = session.scalars(
            select(RunDocument).where(RunDocument.run_id == run_id, RunDocument.status == RunDocumentStatus.failed)
        ).one()
        assert failed.error_code == "llm_failed"
        kept = session.scalar(
            select(func.count()).where(LlmAnswer.run_id == run_id, LlmAnswer.document_id == failed.document_id)
        )
        assert kept >= 2  # the failed chunk's neighbours, paid for and kept
        done_before = {e.id for e in session.scalars(select(Extraction).where(Extraction.run_id == run_id)).all()}
    with tenant_session(session_factory, tenant) as session:
        run = retry_run(session, session.get(Run, run_id))
        assert (run.status, run.attempt) == (RunStatus.queued, 1)
    model.failing = []
    model.prompts.clear()
    assert _code(settings, instance, tenant, run_id, keys, model).success
    # Only the chunk that had no answer was asked again; the three done documents were not touched.
    assert len(model.prompts) == 1 and "marcher-2-5 " in model.prompts[0]
    with tenant_session(session_factory, tenant) as session:
        run = session.get(Run, run_id)
        assert (run.status, run.documents_done, run.documents_failed) == (RunStatus.succeeded, 4, 0)
        assert run.llm_calls == first_calls + 1  # every call paid, counted once
        after = {e.id for e in session.scalars(select(Extraction).where(Extraction.run_id == run_id)).all()}
        assert done_before < after  # the earlier rows kept (not rewritten), the retried document's added
        progress = run_progress(session, run)
        assert progress["documents_validated"] == 4 and progress["llm_calls"] == run.llm_calls


def test_a_cancelled_run_takes_no_new_document(session_factory, tenant, settings, instance, long_files):
    model = SlowModel(messages=iter([]), answers={"*": ANSWER})
    _, doc_ids, keys, run_id = _run(session_factory, tenant, settings, instance, long_files)
    with tenant_session(session_factory, tenant) as session:
        cancel_run(session, session.get(Run, run_id))
    assert _code(settings, instance, tenant, run_id, keys, model).success
    assert model.prompts == []
    with tenant_session(session_factory, tenant) as session:
        run = session.get(Run, run_id)
        assert (run.status, run.error_code, run.documents_done) == (RunStatus.canceled, "canceled", 0)
        # and it can go on later, as a retry
        assert retry_run(session, run).status == RunStatus.queued


def test_two_full_runs_requested_at_once_one_is_refused(session_factory, tenant, settings, instance, long_files):
    """Two requests racing for a project's full run: the database's unique index lets exactly one through."""
    from coderai_assets.errors import Conflict

    project_id, _ = _project(session_factory, tenant, settings, long_files)
    barrier, outcomes = threading.Barrier(2), []

    def request() -> None:
        try:
            with tenant_session(session_factory, tenant) as session:
                project = session.get(Project, project_id)
                barrier.wait()
                create_run(session, project, RunKind.full, with_quotes=True)
            outcomes.append("created")
        except Conflict as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created", "run_already_active"]
    with tenant_session(session_factory, tenant) as session:  # a sample may run beside it
        create_run(session, session.get(Project, project_id), RunKind.sample, 1, with_quotes=True)


PRICED = {"llm_input_price_per_mtok": 2.0, "llm_output_price_per_mtok": 8.0, "chunk_chars": 1000}


def test_a_run_stops_at_its_cap_and_a_retry_goes_on_without_asking_twice(
    session_factory,
    tenant,
    settings,
    instance,
    long_files,
):
    """A cap of about a third of the run: calls stop before the run spends past it, the run stops with
    `budget_exceeded`, and a retry with the cap lifted asks only the chunks that had no answer."""
    settings = settings.model_copy(update={**PRICED, "document_concurrency": 1, "llm_concurrency": 1})
    model = SlowModel(messages=iter([]), answers={"*": ANSWER})
    project_id, doc_ids, keys, run_id = _run(session_factory, tenant, settings, instance, long_files)
    from coderai_assets.engine.model_limits import resolve_limits
    from coderai_assets.pipeline.estimate import estimate_run

    with tenant_session(session_factory, tenant) as session:
        estimate = estimate_run(
            session,
            session.get(Project, project_id),
            doc_ids,
            limits=resolve_limits(settings),
            model_name="fake/slow",
            with_quotes=True,
            chunk_chars=1000,
            overlap=settings.chunk_overlap_chars,
            max_output_tokens=settings.llm_max_output_tokens,
        )
        assert estimate["documents"] == 4 and estimate["calls"] == estimate["chunks"] >= 12
        assert estimate["cost_usd"] > 0 and estimate["cached_chunks"] == 0 and estimate["output_basis"] == "typical"
        assert estimate["cost_usd_max"] > estimate["cost_usd"]
        cap = estimate["cost_usd"] / 3
        session.get(Run, run_id).max_cost_usd = cap
    assert _code(settings, instance, tenant, run_id, keys, model).success
    with tenant_session(session_factory, tenant) as session:
        run = session.get(Run, run_id)
        assert (run.status, run.error_code) == (RunStatus.failed, "budget_exceeded")
        assert 0 < run.spent_usd <= cap  # one call in flight at most, and none started past the cap
        assert 0 < len(model.prompts) < estimate["calls"]
        assert run.documents_done < 4
        run.max_cost_usd = None
        retry_run(session, run)
    asked_before = list(model.prompts)
    assert _code(settings, instance, tenant, run_id, keys, model).success
    with tenant_session(session_factory, tenant) as session:
        run = session.get(Run, run_id)
        assert (run.status, run.documents_done) == (RunStatus.succeeded, 4)
        chunks = session.scalar(select(func.count()).where(LlmAnswer.run_id == run_id))
        # Every chunk asked once over both attempts, and the spend is that of every answer.
        assert len(model.prompts) == chunks and len(set(model.prompts)) == chunks > len(asked_before)
        assert run.spent_usd == pytest.approx(run.cost_usd)
        again = estimate_run(
            session,
            session.get(Project, project_id),
            doc_ids,
            limits=resolve_limits(settings),
            model_name="fake/slow",
            with_quotes=True,
            chunk_chars=1000,
            overlap=settings.chunk_overlap_chars,
            max_output_tokens=settings.llm_max_output_tokens,
        )
        # Now the cache answers it all: a new run would cost nothing.
        assert (again["calls"], again["cost_usd"], again["cached_chunks"]) == (0, 0.0, chunks)
        assert again["output_basis"] == "observed"  # the answers of this run now set the expected length


def test_a_workspace_over_its_monthly_budget_makes_no_call(
    session_factory,
    tenant,
    settings,
    instance,
    long_files,
):
    from coderai_assets.storage.models import Tenant

    settings = settings.model_copy(update=PRICED)
    model = SlowModel(messages=iter([]), answers={"*": ANSWER})
    _, _, keys, run_id = _run(session_factory, tenant, settings, instance, long_files)
    with tenant_session(session_factory, tenant) as session:
        session.get(Tenant, tenant).monthly_budget_usd = 0.0
    try:
        assert _code(settings, instance, tenant, run_id, keys, model).success
        with tenant_session(session_factory, tenant) as session:
            run = session.get(Run, run_id)
            assert (run.status, run.error_code, run.spent_usd) == (RunStatus.failed, "budget_exceeded", 0.0)
            assert "monthly budget" in run.error and model.prompts == []
    finally:
        with tenant_session(session_factory, tenant) as session:
            session.get(Tenant, tenant).monthly_budget_usd = None


def test_a_cancelled_run_is_retried_only_once_its_dagster_runs_have_ended(
    session_factory,
    tenant,
    settings,
    instance,
    long_files,
):
    from coderai_assets.errors import Conflict

    _, _, _, run_id = _run(session_factory, tenant, settings, instance, long_files)
    with tenant_session(session_factory, tenant) as session:
        run = cancel_run(session, session.get(Run, run_id))
        run.dagster_status = {"d1": "CANCELING"}  # as the lifecycle sensor records a run being terminated
    with tenant_session(session_factory, tenant) as session, pytest.raises(Conflict) as refused:
        retry_run(session, session.get(Run, run_id))
    assert refused.value.code == "run_stopping"
    with tenant_session(session_factory, tenant) as session:
        session.get(Run, run_id).dagster_status = {"d1": "CANCELED"}
    with tenant_session(session_factory, tenant) as session:
        assert retry_run(session, session.get(Run, run_id)).status == RunStatus.queued


def test_a_run_stopped_while_its_last_document_waits_for_the_lock_stays_stopped(
    session_factory,
    tenant,
    settings,
    instance,
    long_files,
):
    """Two document threads fail at once (the provider refused both, say): one stops the run; the other, which read
    the run before that and then waited for the run row's lock, fails the last pending document. The run stays
    failed: it is not moved on to exporting (and then to succeeded) from the status that thread read first."""
    from coderai_assets.pipeline.bookkeeping import fail_document
    from coderai_assets.storage.models import Document

    _, doc_ids, _, run_id = _run(session_factory, tenant, settings, instance, long_files[:2])
    with tenant_session(session_factory, tenant) as session:
        session.get(Run, run_id).status = RunStatus.running
    with tenant_session(session_factory, tenant) as last:
        stale, document = last.get(Run, run_id), last.get(Document, doc_ids[1])
        assert stale.status == RunStatus.running  # read before the other thread stops the run
        with tenant_session(session_factory, tenant) as first:
            run = first.get(Run, run_id)
            fail_document(first, run, first.get(Document, doc_ids[0]), "budget_exceeded", "over the budget")
            run.status, run.error_code = RunStatus.failed, "budget_exceeded"
        fail_document(last, stale, document, "budget_exceeded", "over the budget")
    with tenant_session(session_factory, tenant) as session:
        run = session.get(Run, run_id)
        assert (run.status, run.error_code, run.documents_failed) == (RunStatus.failed, "budget_exceeded", 2)


def test_a_started_dagster_run_whose_worker_went_silent_is_failed_for_a_retry(
    session_factory,
    tenant,
    settings,
    instance,
    long_files,
):
    """The code server says within seconds when a run worker dies; when it does not, the worker's heartbeat does:
    the lifecycle sensor fails a started Dagster run whose worker has been silent too long (Dagster's run retries
    then re-execute it), and leaves one that beats alone."""
    import datetime

    from dagster import DagsterRunStatus, build_sensor_context, job, op

    from coderai_assets.defs.partitions import ATTEMPT_TAG
    from coderai_assets.defs.resources import DatabaseResource
    from coderai_assets.pipeline.bookkeeping import record_beat
    from coderai_assets.storage.models import RunWorkerBeat
    from tests.support.dagster import _sensor

    @op
    def work() -> None: ...

    @job
    def documents() -> None:
        work()

    _, _, _, run_id = _run(session_factory, tenant, settings, instance, long_files[:1])
    tags = {RUN_TAG: str(run_id), ATTEMPT_TAG: "0"}
    gone = instance.create_run_for_job(job_def=documents, status=DagsterRunStatus.STARTED, tags=tags)
    alive = instance.create_run_for_job(job_def=documents, status=DagsterRunStatus.STARTED, tags=tags)
    with tenant_session(session_factory, tenant) as session:
        session.get(Run, run_id).status = RunStatus.running
        record_beat(session, gone.run_id, run_id, tenant)
        record_beat(session, alive.run_id, run_id, tenant)
        session.flush()
        stale = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=10)
        session.get(RunWorkerBeat, (gone.run_id, run_id)).beat_at = stale
    sensor = _sensor(settings, "run_lifecycle")
    context = build_sensor_context(instance=instance, resources={"db": DatabaseResource(url=settings.database_url)})
    sensor(context)
    assert instance.get_run_by_id(gone.run_id).status == DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(alive.run_id).status == DagsterRunStatus.STARTED
    with tenant_session(session_factory, tenant) as session:
        assert session.get(Run, run_id).status == RunStatus.running  # its documents wait for the re-execution


def test_an_ended_runs_dagster_status_reaches_its_final_value_and_a_retry_goes_on(
    session_factory,
    tenant,
    settings,
    instance,
    long_files,
):
    """A run that failed (over its budget, say) while its Dagster run was still finishing: the status recorded then
    was STARTED. The lifecycle sensor follows the ended run until its Dagster run has ended too, so the retry the
    documentation promises once the cap allows is not refused as `run_stopping` forever."""
    from dagster import DagsterRunStatus, build_sensor_context, job, op

    from coderai_assets.defs.partitions import ATTEMPT_TAG
    from coderai_assets.defs.resources import DatabaseResource
    from tests.support.dagster import _sensor

    @op
    def work() -> None: ...

    @job
    def documents() -> None:
        work()

    _, _, _, run_id = _run(session_factory, tenant, settings, instance, long_files[:1])
    tags = {RUN_TAG: str(run_id), ATTEMPT_TAG: "0"}
    finished = instance.create_run_for_job(job_def=documents, status=DagsterRunStatus.SUCCESS, tags=tags)
    with tenant_session(session_factory, tenant) as session:
        run = session.get(Run, run_id)
        run.status, run.error_code = RunStatus.failed, "budget_exceeded"
        run.dagster_status = {finished.run_id: "STARTED"}  # as last seen while the run was under way
    sensor = _sensor(settings, "run_lifecycle")
    sensor(build_sensor_context(instance=instance, resources={"db": DatabaseResource(url=settings.database_url)}))
    with tenant_session(session_factory, tenant) as session:
        run = session.get(Run, run_id)
        assert run.dagster_status == {finished.run_id: "SUCCESS"} and run.status == RunStatus.failed
        assert retry_run(session, run).status == RunStatus.queued


def test_a_projects_runs_never_overlap_and_documents_finishing_together_count_once(
    settings, session_factory, tenant, demo_files
):
    """Two active runs of a project failed on `uq_chunks_document_index` (chunks are per document), and the last
    documents of a sample finishing together left it `running`. The intake sensor now launches one run of a
    project at a time, and counters are recomputed under the run row's lock."""
    from dagster import DagsterInstance

    from coderai_assets.domain.runs import create_run
    from coderai_assets.storage.models import Project, Run, RunKind, RunStatus
    from tests.support.dagster import _code, _for, _project, _tick

    settings = settings.model_copy(update={"document_concurrency": 6})
    project_id, doc_ids = _project(session_factory, tenant, settings, demo_files * 3)  # 12 documents
    with DagsterInstance.ephemeral() as instance:
        _tick(settings, instance)
        with tenant_session(session_factory, tenant) as session:
            first = create_run(session, session.get(Project, project_id), RunKind.full, with_quotes=True)[0].id
        with tenant_session(session_factory, tenant) as session:
            # A sample: a project has one full run at a time (the database refuses a second), not one run.
            second = create_run(session, session.get(Project, project_id), RunKind.sample, 12, with_quotes=True)[0].id
        requests = _tick(settings, instance).run_requests
        assert len(_for(requests, first)) == 1 and _for(requests, second) == []
        # Six documents at a time finish in any order; every one is counted, and the run ends.
        assert _code(settings, instance, _for(requests, first)[0]).success
        with tenant_session(session_factory, tenant) as session:
            run = session.get(Run, first)
            assert (run.status, run.documents_done, run.documents_failed) == (RunStatus.succeeded, len(doc_ids), 0)
        (request,) = _for(_tick(settings, instance).run_requests, second)
        assert _code(settings, instance, request).success
        with tenant_session(session_factory, tenant) as session:
            assert session.get(Run, second).status == RunStatus.succeeded
