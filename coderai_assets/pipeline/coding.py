"""Codes the documents of one Dagster run: each partition key goes parse -> extract -> validate, one transaction
per stage, and every stage that ends well is reported at once, so the asset can record it for that partition alone.

A run launched for an application run (tagged with its id) covers a key range of its shard, which may hold other
projects' documents: only the run's own documents are coded, the rest are skipped and never recorded. A run
started from the Dagster UI (untagged) codes every key it was given, in an application run made for it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import AbstractContextManager, contextmanager
from contextvars import copy_context
from dataclasses import dataclass, field
from functools import cached_property
from queue import Empty, Queue
from threading import Event, Thread

from opentelemetry.context import Context
from sqlalchemy import text
from sqlalchemy.orm import Session

from coderai_assets.domain.dataset import write_export
from coderai_assets.domain.runs import run_for_materialisation
from coderai_assets.domain.specs import version_spec
from coderai_assets.engine import budget
from coderai_assets.engine.codebook import ProjectSpec
from coderai_assets.engine.llm import Extractor
from coderai_assets.engine.metrics import Metrics, flush_all, metrics_for
from coderai_assets.engine.model_limits import ModelLimits, resolve_limits
from coderai_assets.engine.spending import Prices
from coderai_assets.errors import LLMError, StopsWork
from coderai_assets.ingest import codes
from coderai_assets.ingest.detect import ZipLimits
from coderai_assets.ingest.sandbox import ParseLimits, ParsePool
from coderai_assets.pipeline.bookkeeping import (
    document_done_in_run,
    fail_document,
    price,
    record_beat,
    reset_run_document,
)
from coderai_assets.pipeline.extract import call_chunk, finish_extraction, plan_extraction, store_chunk
from coderai_assets.pipeline.parse import parse_document
from coderai_assets.pipeline.spending import SpendingGate
from coderai_assets.pipeline.validate import validate_document
from coderai_assets.settings import Settings
from coderai_assets.storage.files import FileStorage
from coderai_assets.storage.models import Document, Project, PromptVersion, Run, RunStatus, utcnow
from coderai_assets.storage.partition_keys import RUN_TAG, WORKSPACE_TAG, parse_document_key
from coderai_assets.storage.repositories import runs
from coderai_assets.tracing import tracer

log = logging.getLogger(__name__)

PARSED, EXTRACTED, VALIDATED = "parsed_document", "extractions", "validated_rows"
# DatabaseResource.session: one transaction as the given tenant.
SessionScope = Callable[[uuid.UUID | None], AbstractContextManager[Session]]


@dataclass(frozen=True)
class StageDone:
    """One stage of one document ended well: record the asset `stage` for partition `key`."""

    stage: str
    key: str
    run_id: uuid.UUID
    project_id: uuid.UUID
    metadata: dict[str, str | int]


@dataclass(frozen=True)
class ExportDone:
    project_id: uuid.UUID
    run_id: uuid.UUID
    export_id: uuid.UUID
    rows: int


def parse_limits(settings: Settings) -> ParseLimits:
    return ParseLimits(
        timeout_seconds=settings.parse_timeout_seconds,
        cpu_seconds=settings.parse_cpu_seconds,
        memory_bytes=settings.parse_memory_bytes,
        zip=ZipLimits(settings.max_zip_uncompressed_bytes, settings.max_zip_entries, settings.max_zip_ratio),
        max_text_chars=settings.max_text_chars,
    )


def project_tenant(session: Session, project_id: uuid.UUID) -> uuid.UUID | None:
    # Across tenants, through the one function that answers only this (docs/decisions.md: tenancy).
    return session.scalar(text("select coderai_project_tenant(:p)"), {"p": project_id})


@dataclass
class _Project:
    """What every document of a project in this run shares: read once, not once per document."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    run_id: uuid.UUID
    spec: ProjectSpec
    chunk_chars: int
    extractor: Extractor
    # Read once and kept detached (only read from): its prompt, schema and snapshot are large JSON, and every
    # document's extract and validate transactions would otherwise load them again.
    version: PromptVersion
    variable_ids: dict[str, uuid.UUID]
    members: set[uuid.UUID] | None  # the run's documents; None: every key given


@dataclass
class DocumentCoder:
    session: SessionScope
    storage: FileStorage
    extractor_for: Callable[[int], Extractor]  # answer budget in tokens -> extractor
    settings: Settings
    tags: Mapping[str, str]
    dagster_run_id: str
    warn: Callable[[str], None] = print
    trace_parent: Context | None = None  # the run's span (coderai_assets/tracing.py)
    _projects: dict[uuid.UUID, _Project | None] = field(default_factory=dict)  # filled before threads start

    def _chunk_chars(self, spec: ProjectSpec) -> int:
        if self.settings.chunk_chars > 0:
            return self.settings.chunk_chars
        return budget.chunk_chars_for(
            spec,
            with_quotes=self.settings.request_quotes,
            context_tokens=self.limits.context_tokens,
            max_output_tokens=self.settings.llm_max_output_tokens,
        )

    @cached_property
    def limits(self) -> ModelLimits:
        """The model's context and prices, resolved once per Dagster run (it may ask the model's server)."""
        return resolve_limits(self.settings)

    def _tenant(self, project_id: uuid.UUID) -> uuid.UUID | None:
        tagged = self.tags.get(WORKSPACE_TAG)
        if tagged:
            return uuid.UUID(tagged)
        with self.session(None) as session:
            return project_tenant(session, project_id)

    def _project(self, project_id: uuid.UUID) -> _Project | None:
        if project_id in self._projects:
            return self._projects[project_id]
        tenant_id = self._tenant(project_id)
        found = None
        if tenant_id is not None:
            with self.session(tenant_id) as session:
                project = session.get(Project, project_id)
                if project is not None:
                    found = self._load(session, project)
        self._projects[project_id] = found
        return found

    def _load(self, session: Session, project: Project) -> _Project | None:
        tagged = self.tags.get(RUN_TAG)
        if tagged and session.get(Run, uuid.UUID(tagged)) is not None:
            run = session.get(Run, uuid.UUID(tagged))
            assert run is not None
            if run.project_id != project.id:
                return None  # another project's document inside this run's key range
            if self.dagster_run_id not in (run.dagster_run_ids or []):
                run.dagster_run_ids = [*(run.dagster_run_ids or []), self.dagster_run_id]
            members: set[uuid.UUID] | None = set(runs.document_ids(session, run.id))
        elif tagged:
            return None
        else:
            run = run_for_materialisation(
                session, project, None, self.dagster_run_id, with_quotes=self.settings.request_quotes
            )
            members = None
        if run.prompt_version_id is None:
            raise ValueError(f"run {run.id} has no prompt version")
        version = session.get(PromptVersion, run.prompt_version_id)
        assert version is not None
        # The run's own definition, never the live one: an edit during the run changes nothing in it.
        spec, variable_ids = version_spec(session, version)
        gate = SpendingGate(
            self.session,
            project.tenant_id,
            run.id,
            Prices(self.limits.input_price_per_mtok, self.limits.output_price_per_mtok),
            self.settings.workspace_monthly_budget_usd,
        )
        extractor = self.extractor_for(
            budget.answer_tokens(len(spec.variables), self.settings.llm_max_output_tokens)
        ).bound_to(str(project.tenant_id), gate)
        run.model = extractor.model_name
        run.input_price_per_mtok = self.limits.input_price_per_mtok
        run.output_price_per_mtok = self.limits.output_price_per_mtok
        return _Project(
            id=project.id,
            tenant_id=project.tenant_id,
            run_id=run.id,
            spec=spec,
            chunk_chars=self._chunk_chars(spec),
            extractor=extractor,
            version=version,
            variable_ids=variable_ids,
            members=members,
        )

    def _work(self, keys: list[str]) -> list[tuple[_Project, str, uuid.UUID]]:
        """The keys this run codes, with their project: the run's own documents, in key order."""
        work = []
        for key in keys:
            ids = parse_document_key(key)
            if ids is None:
                self.warn(f"partition key {key!r} names no document: skipped")
                continue
            project = self._project(ids[0])
            if project is not None and (project.members is None or ids[1] in project.members):
                work.append((project, key, ids[1]))
        return work

    def code(self, keys: list[str]) -> Iterator[StageDone]:
        """Every document of the run, `document_concurrency` in flight, each in a thread that borrows a parse child
        for its parse and hands its chunks to a pool of `llm_concurrency` model calls shared by all documents (and
        bounded in the end by the provider's rate limit, engine/provider.py); yields (in this thread) each stage as
        it is committed. An error that escapes a document stops the others after their current document and is
        raised here."""
        work = self._work(keys)
        s = self.settings
        threads = max(1, min(s.document_concurrency, len(work)))
        pending: Queue[tuple[_Project, str, uuid.UUID]] = Queue()
        for item in work:
            pending.put(item)
        results: Queue[StageDone | BaseException | None] = Queue()
        stop = Event()
        parsers = ParsePool(parse_limits(s), s.parse_concurrency)
        calls = ThreadPoolExecutor(max_workers=max(1, s.llm_concurrency), thread_name_prefix="llm")

        def worker() -> None:
            try:
                while not stop.is_set():
                    try:
                        project, key, document_id = pending.get_nowait()
                    except Empty:
                        break
                    try:
                        with tracer.start_as_current_span(
                            "coderai.document",
                            context=self.trace_parent,
                            attributes={"coderai.document_id": str(document_id), "coderai.run_id": str(project.run_id)},
                        ):
                            for done in self._code_one(parsers, calls, project, key, document_id):
                                results.put(done)
                    except StopsWork as exc:  # no other document would fare better: the run stops
                        self._stop_run(project, document_id, exc)
                        stop.set()
                    except Exception as exc:  # a defect this document met: it fails alone, the run goes on
                        self._fail_internal(project, document_id, exc)
            except BaseException as exc:  # handed to the consuming thread, which raises it
                stop.set()
                results.put(exc)
            finally:
                results.put(None)

        pool = [Thread(target=worker, name=f"coder-{i}", daemon=True) for i in range(threads)]
        try:
            for thread in pool:
                thread.start()
            running, failure = len(pool), None
            while running:
                result = results.get()
                if result is None:
                    running -= 1
                elif isinstance(result, BaseException):
                    failure = failure or result
                else:
                    yield result
            for thread in pool:
                thread.join()
        finally:
            stop.set()
            calls.shutdown(wait=True, cancel_futures=True)
            parsers.close()
            flush_all()
        if failure is not None:
            raise failure

    @contextmanager
    def heartbeat(self) -> Iterator[None]:
        """While the block runs, a thread writes this worker's heartbeat for each run it codes, every
        `run_worker_timeout_seconds / 6` (10 s at most), so the lifecycle sensor can tell a live worker from one
        that is gone. The beat is independent of the document threads: a slow model call does not stop it."""
        stop = Event()
        every = min(10.0, self.settings.run_worker_timeout_seconds / 6)

        def beat() -> None:
            while not stop.wait(every):
                try:
                    projects = [p for p in list(self._projects.values()) if p is not None]
                    for p in projects:
                        with self.session(p.tenant_id) as session:
                            record_beat(session, self.dagster_run_id, p.run_id, p.tenant_id)
                except Exception as exc:  # the next beat tries again; a dead database stops the run anyway
                    log.warning("run worker heartbeat: %s", exc)

        thread = Thread(target=beat, name="heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(5)

    def finish(self) -> Iterator[ExportDone]:
        """Exports the dataset of every run of this Dagster run that has no pending document left, in this run:
        a second Dagster run per application run only for the export cost a run worker's start (seconds) each.
        Under the run row's lock, so two Dagster runs finishing the same run's documents export it once."""
        for p in self._projects.values():
            if p is None:
                continue
            with self.session(p.tenant_id) as session:
                runs.lock(session, p.run_id)
                run, project = session.get(Run, p.run_id), session.get(Project, p.id)
                if run is None or project is None or run.status != RunStatus.exporting:
                    continue
                export = write_export(session, self.storage, project, run, self.dagster_run_id)
                run.status, run.finished_at = RunStatus.succeeded, utcnow()
                yield ExportDone(p.id, run.id, export.id, export.row_count)

    @cached_property
    def metrics(self) -> Metrics:
        return metrics_for(self.settings.redis_url)

    def _failed(self, document_id: uuid.UUID, code: str | None, message: str | None) -> None:
        self.warn(f"document {document_id}: {code}: {message}")
        self.metrics.add("documents", outcome="failed", code=code or codes.INTERNAL_ERROR)

    def _stop_run(self, p: _Project, document_id: uuid.UUID, exc: StopsWork) -> None:
        """The provider refused for good (key, quota, an outage longer than allowed), or a cap was reached: the
        document fails with the code, and the run stops with it; its other documents stay pending (a retry of the
        run codes them)."""
        log.error("run %s stopped: %s: %s", p.run_id, exc.code, exc.message)
        self.warn(f"run {p.run_id} stopped: {exc.code}: {exc.message}")
        with self.session(p.tenant_id) as session:
            run, document = session.get(Run, p.run_id), session.get(Document, document_id)
            if run is None or document is None:
                return
            fail_document(session, run, document, exc.code, exc.message[:1000])
            self.metrics.add("documents", outcome="failed", code=exc.code)
            if run.status in (RunStatus.queued, RunStatus.running):
                run.status, run.error_code, run.error = RunStatus.failed, exc.code, exc.message[:1000]
                run.finished_at = utcnow()

    def _fail_internal(self, p: _Project, document_id: uuid.UUID, exc: Exception) -> None:
        """Records `internal_error` for the document in a transaction of its own (the one that failed was rolled
        back), with the traceback in the log. If even that fails (the database is gone), it raises: the run stops."""
        log.error("document %s of run %s: internal error", document_id, p.run_id, exc_info=exc)
        self._failed(document_id, codes.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
        with self.session(p.tenant_id) as session:
            run, document = session.get(Run, p.run_id), session.get(Document, document_id)
            if run is not None and document is not None:
                message = f"{type(exc).__name__}: {exc}"[:1000]
                fail_document(session, run, document, codes.INTERNAL_ERROR, message)

    def _code_one(
        self, parsers: ParsePool, calls: ThreadPoolExecutor, p: _Project, key: str, document_id: uuid.UUID
    ) -> Iterator[StageDone]:
        s = self.settings
        done = {"run_id": str(p.run_id), "project_id": str(p.id)}

        def stage(name: str, **metadata: str | int) -> StageDone:
            return StageDone(name, key, p.run_id, p.id, {**done, **metadata})

        with self.session(p.tenant_id) as session:
            run, document = session.get(Run, p.run_id), session.get(Document, document_id)
            if run is None or document is None or document.project_id != p.id:
                self.warn(f"document {document_id} is not in project {p.id}: skipped")
                return
            if run.status in (RunStatus.failed, RunStatus.canceled):
                return  # stopped (by a user, or another part of the run): its remaining documents wait for a retry
            if document_done_in_run(session, run, document):
                return  # coded by an earlier attempt of this run (a Dagster run that died, retried): written once
            reset_run_document(session, run, document)
            with parsers.worker() as parser:
                ok = parse_document(
                    session,
                    self.storage,
                    parser,
                    run,
                    document,
                    chunk_chars=p.chunk_chars,
                    overlap=s.chunk_overlap_chars,
                )
            if not ok:
                self._failed(document_id, document.error_code, document.error_message)
                return
            parsed = stage(PARSED, format=document.format or "", characters=len(document.text or ""))
        yield parsed
        if not self._extract(calls, p, document_id):
            return
        yield stage(EXTRACTED, model=p.extractor.model_name)
        with self.session(p.tenant_id) as session:
            run, document = session.get(Run, p.run_id), session.get(Document, document_id)
            assert run is not None and document is not None
            finish_extraction(session, run, document, None)
            rows = validate_document(
                session,
                run,
                document,
                p.spec,
                p.version,
                p.variable_ids,
                uncertainty_threshold=s.uncertainty_threshold,
            )
            price(run, self.limits.input_price_per_mtok, self.limits.output_price_per_mtok)
            if document.status.value != "done":
                return
            validated = stage(VALIDATED, rows=rows)
        self.metrics.add("documents", outcome="done")
        yield validated

    def _extract(self, calls: ThreadPoolExecutor, p: _Project, document_id: uuid.UUID) -> bool:
        """Plans the document's calls (one transaction), makes them in the shared call pool without holding a
        connection, and commits each chunk's answer as it arrives. False when the document failed (recorded);
        a document that did not is closed in its validation's transaction."""
        s = self.settings
        with self.session(p.tenant_id) as session:
            run, document = session.get(Run, p.run_id), session.get(Document, document_id)
            assert run is not None and document is not None
            plan = plan_extraction(
                session,
                p.extractor,
                run,
                document,
                p.version,
                p.spec,
                use_cache=s.llm_cache,
                context_tokens=self.limits.context_tokens,
                with_quotes=s.request_quotes,
                max_output_tokens=s.llm_max_output_tokens,
            )
            if plan is None:
                self._failed(document_id, document.error_code, document.error_message)
                return False
        # Each call in the pool's threads under this document's span: a copy of this thread's context each.
        futures = [calls.submit(copy_context().run, call_chunk, p.extractor, plan, call) for call in plan.calls]
        failure: str | None = None
        try:
            for future in as_completed(futures):
                try:
                    result = future.result()
                except LLMError as exc:
                    failure = failure or exc.message
                    continue
                with self.session(p.tenant_id) as session:
                    store_chunk(session, plan, result)
                self.metrics.add("spend_usd", plan.prices.cost(result.answer.input_tokens, result.answer.output_tokens))
        finally:
            for future in futures:
                future.cancel()  # a fatal provider error: the chunks not yet asked are not asked
        if failure is None:
            return True  # closed in the validation's transaction: one transaction fewer per document
        with self.session(p.tenant_id) as session:
            run, document = session.get(Run, p.run_id), session.get(Document, document_id)
            assert run is not None and document is not None
            finish_extraction(session, run, document, failure)
            price(run, self.limits.input_price_per_mtok, self.limits.output_price_per_mtok)
            self._failed(document_id, document.error_code, document.error_message)
        return False
