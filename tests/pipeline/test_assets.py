"""The asset chain of a project, materialised through Dagster for one partition, then the export."""

from __future__ import annotations

import uuid

import pandas as pd
from dagster import materialize
from sqlalchemy import select

from coderai_api.projects.schemas import VariableUpdate
from coderai_api.projects.service import update_variable
from coderai_assets.defs.partitions import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    RUN_TAG,
    WORKSPACE_TAG,
)
from coderai_assets.defs.resources import LLMResource
from coderai_assets.domain.runs import create_run
from coderai_assets.engine.llm import Extractor
from coderai_assets.storage.db import tenant_session
from coderai_assets.storage.models import (
    Document,
    Export,
    Extraction,
    Project,
    Run,
    RunKind,
    RunStatus,
    Variable,
)
from tests.fakes import PROTEST_ANSWERS, ToolCallingFakeModel
from tests.support.dagster import SHARD, _assets, _materialise, _project, _register, _resources


def test_asset_chain_for_one_partition_then_export(session_factory, tenant, settings, instance, demo_files):
    project_id, doc_ids = _project(session_factory, tenant, settings, demo_files)
    keys = _register(instance, project_id, doc_ids)
    html_doc = doc_ids[1]  # porto_dockers.html
    with tenant_session(session_factory, tenant) as session:
        project = session.get(Project, project_id)
        run, _ = create_run(session, project, RunKind.sample, 1, seed=0, with_quotes=True)
        # Pin the sample to the HTML report for a predictable check.
        from coderai_assets.storage.models import RunDocument

        session.query(RunDocument).filter(RunDocument.run_id == run.id).delete()
        session.add(RunDocument(run_id=run.id, document_id=html_doc, tenant_id=tenant))
        run_id = run.id

    result = _materialise(
        project_id,
        tenant,
        settings,
        instance,
        run_id,
        keys[1],
        "documents",
    )
    assert result.success
    materialised = {
        (e.asset_key.path[-1], e.partition) for e in result.get_asset_materialization_events() if e.partition
    }
    stages = {(stage, keys[1]) for stage in ("parsed_document", "extractions", "validated_rows")}
    assert materialised == stages | {("export", project_id.hex)}  # the run's last document: exported in the run
    with tenant_session(session_factory, tenant) as session:
        run = session.get(Run, run_id)
        assert (run.status, run.documents_done, run.llm_calls) == (RunStatus.succeeded, 1, 1)
        values = {
            name: e
            for e, name in session.execute(
                select(Extraction, Variable.name)
                .join(Variable, Variable.id == Extraction.variable_id)
                .where(Extraction.run_id == run_id)
            ).all()
        }
        document = session.get(Document, html_doc)
        assert document.format == "html"
        assert values["participants"].value == 450 and values["participants"].status.value == "coerced"
        assert values["protest_type"].value == "strike" and values["protest_type"].status.value == "coerced"
        assert values["event_date"].value == "2023-06-03" and values["event_date"].status.value == "ok"
        violence = values["violence"]
        assert violence.quote == "two workers were injured"
        assert document.text[violence.char_start : violence.char_end] == "two workers were injured"
        assert violence.alignment == "exact" and violence.confidence == 0.8  # as the model reported, exact quote
        assert values["participants"].confidence == 0.76  # 0.95 reported x 0.8 coerced x 1.0 grounded
        city = values["city"]  # no quote from the model: grounded on the value itself
        assert document.text[city.char_start : city.char_end] == "Porto"
        assert all(v.model == "fake/protest" and v.prompt_version_id == run.prompt_version_id for v in values.values())

    # Re-materialising the same partition is idempotent: same values, no duplicates.
    assert _materialise(
        project_id,
        tenant,
        settings,
        instance,
        run_id,
        keys[1],
        "documents",
    ).success
    with tenant_session(session_factory, tenant) as session:
        assert len(session.scalars(select(Extraction).where(Extraction.run_id == run_id)).all()) == 5

    assert _materialise(project_id, tenant, settings, instance, run_id, None, "export").success
    with tenant_session(session_factory, tenant) as session:
        export = session.scalars(
            select(Export).where(Export.run_id == run_id).order_by(Export.created_at.desc())
        ).first()
        assert session.get(Run, run_id).status == RunStatus.succeeded
    frame = pd.read_csv(settings.storage_dir / export.csv_path)
    assert len(frame) == 1 and frame.loc[0, "file_name"] == "porto_dockers.html"
    assert frame.loc[0, "participants"] == 450 and frame.loc[0, "violence__quote"] == "two workers were injured"
    sheets = pd.ExcelFile(settings.storage_dir / export.xlsx_path).sheet_names
    assert sheets == ["data", "codebook", "about", "agreement", "feedback"]


def test_a_bad_document_fails_alone(session_factory, tenant, settings, instance, demo_files, tmp_path):
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n" + bytes(500))
    project_id, doc_ids = _project(session_factory, tenant, settings, [broken, demo_files[0]])
    keys = _register(instance, project_id, doc_ids)
    with tenant_session(session_factory, tenant) as session:
        run, _ = create_run(session, session.get(Project, project_id), RunKind.full, with_quotes=True)
        run_id = run.id
    # One run over the key range, as the intake sensor launches a full run.
    result = _materialise(
        project_id,
        tenant,
        settings,
        instance,
        run_id,
        None,
        "documents",
        tags={RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[1]},
    )
    assert result.success
    # Only the good document is recorded as materialised (and the project's export).
    assert {e.partition for e in result.get_asset_materialization_events()} == {keys[1], project_id.hex}
    with tenant_session(session_factory, tenant) as session:
        run = session.get(Run, run_id)
        bad = session.get(Document, doc_ids[0])
        assert (run.documents_done, run.documents_failed, run.status) == (1, 1, RunStatus.succeeded)
        assert bad.status.value == "failed" and bad.error_code == "corrupt_file"
        assert session.get(Document, doc_ids[1]).status.value == "done"


def test_unchanged_work_calls_no_model(session_factory, tenant, settings, instance, demo_files):
    """A second run over the same document, prompt and model is answered from the first run's calls."""
    project_id, doc_ids = _project(session_factory, tenant, settings, demo_files[:1])
    (key,) = _register(instance, project_id, doc_ids)
    model = ToolCallingFakeModel(messages=iter([]), answers=PROTEST_ANSWERS)

    class CountingLLM(LLMResource):
        def extractor(self, max_output_tokens: int | None = None) -> Extractor:
            return Extractor(model, "fake/protest")

    runs = []
    for _ in range(2):
        with tenant_session(session_factory, tenant) as session:
            run, _ = create_run(session, session.get(Project, project_id), RunKind.full, with_quotes=True)
            runs.append(run.id)
        result = _materialise(project_id, tenant, settings, instance, run.id, key, "documents", llm=CountingLLM())
        assert result.success
    assert len(model.prompts) == 1  # the model was called once, for the first run only
    with tenant_session(session_factory, tenant) as session:
        first, second = (session.get(Run, r) for r in runs)
        assert (first.llm_calls, first.cached_calls) == (1, 0)
        assert (second.llm_calls, second.cached_calls, second.input_tokens) == (0, 1, 0)
        values = lambda run_id: sorted(  # noqa: E731
            (str(e.variable_id), str(e.value))
            for e in session.scalars(select(Extraction).where(Extraction.run_id == run_id))
        )
        assert values(runs[0]) == values(runs[1])


def test_a_codebook_that_leaves_no_room_for_text_fails_the_document_with_a_reason(
    session_factory, tenant, settings, demo_files, code_run
):
    from coderai_assets.pipeline.extract import PROMPT_TOO_LARGE

    project_id, doc_ids = _project(session_factory, tenant, settings, demo_files[:1])
    with tenant_session(session_factory, tenant) as session:
        run, _ = create_run(session, session.get(Project, project_id), RunKind.full, with_quotes=True)
        run_id = run.id
    model = ToolCallingFakeModel(messages=iter([]), answers=PROTEST_ANSWERS)
    code_run(tenant, run_id, Extractor(model, "fake"), llm_context_tokens=512, llm_max_output_tokens=100)
    assert model.prompts == []
    with tenant_session(session_factory, tenant) as session:
        document = session.get(Document, doc_ids[0])
        assert document.error_code == PROMPT_TOO_LARGE and "context" in document.error_message
        assert session.get(Run, run_id).documents_failed == 1


def test_after_an_edit_only_the_changed_variable_is_asked_for(session_factory, tenant, settings, instance, demo_files):
    project_id, doc_ids = _project(session_factory, tenant, settings, demo_files[1:2])  # porto_dockers.html
    (key,) = _register(instance, project_id, doc_ids)
    model = ToolCallingFakeModel(messages=iter([]), answers=PROTEST_ANSWERS)

    class CountingLLM(LLMResource):
        def extractor(self, max_output_tokens: int | None = None) -> Extractor:
            return Extractor(model, "fake/protest")

    def run_once():
        with tenant_session(session_factory, tenant) as session:
            run, _ = create_run(session, session.get(Project, project_id), RunKind.full, with_quotes=True)
        assert _materialise(project_id, tenant, settings, instance, run.id, key, "documents", llm=CountingLLM()).success
        return run.id

    first = run_once()
    with tenant_session(session_factory, tenant) as session:
        city = session.scalars(select(Variable).where(Variable.project_id == project_id, Variable.name == "city")).one()
        edit = VariableUpdate(description="The city or town where the protest took place.")
        update_variable(session, session.get(Project, project_id), city.id, edit)
    second = run_once()
    assert len(model.prompts) == 2
    assert "- city" in model.prompts[1] and "- participants" not in model.prompts[1]
    with tenant_session(session_factory, tenant) as session:

        def values(run_id):
            rows = session.execute(
                select(Variable.name, Extraction.value)
                .join(Variable, Variable.id == Extraction.variable_id)
                .where(Extraction.run_id == run_id)
            ).all()
            return dict(rows)

        assert values(first) == values(second)
        assert values(second)["participants"] == 450
        assert session.get(Run, second).llm_calls == 1


def test_a_finished_runs_export_never_changes_when_variables_are_edited_or_deleted(
    session_factory, tenant, settings, instance, demo_files
):
    """The run reads its prompt version's snapshot of the project, at every stage and in its export."""
    project_id, doc_ids = _project(session_factory, tenant, settings, demo_files[1:2])  # porto_dockers.html
    (key,) = _register(instance, project_id, doc_ids)
    with tenant_session(session_factory, tenant) as session:
        run, _ = create_run(session, session.get(Project, project_id), RunKind.full, with_quotes=True)
        run_id = run.id
    assert _materialise(project_id, tenant, settings, instance, run_id, key, "documents").success
    assert _materialise(project_id, tenant, settings, instance, run_id, None, "export").success

    def exported() -> tuple[pd.DataFrame, pd.DataFrame]:
        with tenant_session(session_factory, tenant) as session:
            export = session.scalars(
                select(Export).where(Export.run_id == run_id).order_by(Export.created_at.desc())
            ).first()
        path = settings.storage_dir / export.xlsx_path
        return pd.read_csv(settings.storage_dir / export.csv_path), pd.read_excel(path, sheet_name="codebook")

    before_data, before_codebook = exported()
    assert before_data.loc[0, "protest_type"] == "strike" and before_data.loc[0, "violence"] == True  # noqa: E712
    with tenant_session(session_factory, tenant) as session:
        variables = {v.name: v for v in session.scalars(select(Variable).where(Variable.project_id == project_id))}
        # "strike" would now be invalid
        edit = VariableUpdate(allowed_values=["march", "rally"], description="Edited after the run.")
        update_variable(session, session.get(Project, project_id), variables["protest_type"].id, edit)
        session.delete(variables["violence"])
    # Exported again after the edit: the same rows, columns and codebook as before.
    assert _materialise(project_id, tenant, settings, instance, run_id, None, "export").success
    after_data, after_codebook = exported()
    pd.testing.assert_frame_equal(before_data, after_data)
    pd.testing.assert_frame_equal(before_codebook, after_codebook)
    with tenant_session(session_factory, tenant) as session:
        kept = session.scalars(
            select(Extraction).where(Extraction.run_id == run_id, Extraction.variable_name == "violence")
        ).one()
        assert kept.value is True


def test_documents_coded_in_parallel_threads_are_all_counted(session_factory, tenant, settings, instance, demo_files):
    """Four threads finish documents at once: every count lands, the last document moves the run to exporting,
    and no two transactions deadlock on the run row (they did with FOR UPDATE)."""
    project_id, doc_ids = _project(session_factory, tenant, settings, demo_files * 4)
    keys = _register(instance, project_id, doc_ids)
    with tenant_session(session_factory, tenant) as session:
        run, _ = create_run(session, session.get(Project, project_id), RunKind.full, with_quotes=True)
        run_id = run.id
    ordered = [k for k in instance.get_dynamic_partitions(SHARD.partitions_name) if k in set(keys)]
    result = _materialise(
        project_id,
        tenant,
        settings,
        instance,
        run_id,
        None,
        "documents",
        tags={RANGE_START_TAG: ordered[0], RANGE_END_TAG: ordered[-1]},
    )
    assert result.success
    with tenant_session(session_factory, tenant) as session:
        run = session.get(Run, run_id)
        assert (run.documents_done, run.documents_failed, run.status) == (16, 0, RunStatus.succeeded)
        assert run.llm_calls + run.cached_calls == 16  # the same four texts: later copies may come from the cache


def test_two_documents_finishing_at_once_both_count(session_factory, tenant, settings, demo_files):
    """The second transaction to recount waits for the first to commit, so it counts both documents; without the
    lock it counted only its own and, committing last, left the run at 1 of 2 and never exporting."""
    import threading

    from coderai_assets.pipeline.bookkeeping import refresh_run_counts
    from coderai_assets.storage.models import RunDocument, RunDocumentStatus

    project_id, doc_ids = _project(session_factory, tenant, settings, demo_files[:2])
    with tenant_session(session_factory, tenant) as session:
        run, _ = create_run(session, session.get(Project, project_id), RunKind.full, with_quotes=True)
        run_id = run.id

    def finish(session, document_id) -> None:
        row = session.get(RunDocument, (run_id, document_id))
        row.status = RunDocumentStatus.done
        refresh_run_counts(session, session.get(Run, run_id))

    first = session_factory()
    first.info["tenant_id"] = tenant
    finish(first, doc_ids[0])  # counted, holding the lock, not committed
    second = threading.Thread(target=lambda: _in_session(session_factory, tenant, finish, doc_ids[1]))
    second.start()
    second.join(timeout=1.0)
    assert second.is_alive()  # waiting for the first to commit
    first.commit()
    first.close()
    second.join(timeout=10)
    with tenant_session(session_factory, tenant) as session:
        run = session.get(Run, run_id)
        assert (run.documents_done, run.status) == (2, RunStatus.exporting)


def _in_session(session_factory, tenant, work, *args) -> None:
    with tenant_session(session_factory, tenant) as session:
        work(session, *args)


def test_a_bad_key_stops_the_run_with_a_code(session_factory, tenant, settings, instance, demo_files):
    """A 401 is not retried and no other document would fare better: the run stops as `llm_auth_failed`."""
    import httpx
    import openai

    from coderai_assets.engine.provider import GuardConfig, ProviderGuard

    class Refusing(ToolCallingFakeModel):
        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            self.prompts.append("called")
            response = httpx.Response(401, request=httpx.Request("POST", "https://provider.test/v1"))
            raise openai.AuthenticationError("Incorrect API key provided", response=response, body=None)

    model = Refusing(messages=iter([]), answers={})
    guard = ProviderGuard(GuardConfig(provider_key=uuid.uuid4().hex[:16]))

    class RefusedLLM(LLMResource):
        def extractor(self, max_output_tokens: int | None = None) -> Extractor:
            return Extractor(model, "fake/refusing", guard=guard)

    project_id, doc_ids = _project(session_factory, tenant, settings, demo_files)
    keys = _register(instance, project_id, doc_ids)
    with tenant_session(session_factory, tenant) as session:
        run, _ = create_run(session, session.get(Project, project_id), RunKind.full, with_quotes=True)
        run_id = run.id
    ordered = [k for k in instance.get_dynamic_partitions(SHARD.partitions_name) if k in set(keys)]
    one_at_a_time = settings.model_copy(update={"document_concurrency": 1})
    result = materialize(
        _assets(one_at_a_time, "validated_rows"),
        instance=instance,
        tags={
            RUN_TAG: str(run_id),
            WORKSPACE_TAG: str(tenant),
            RANGE_START_TAG: ordered[0],
            RANGE_END_TAG: ordered[-1],
        },
        resources=_resources(settings, RefusedLLM()),
    )
    assert result.success  # the Dagster run ends; the application run says why it stopped
    with tenant_session(session_factory, tenant) as session:
        run = session.get(Run, run_id)
        assert (run.status, run.error_code) == (RunStatus.failed, "llm_auth_failed")
        assert "Incorrect API key" in run.error
        # No retry, and the documents after the first were never sent: they wait, pending, for a retry.
        assert len(model.prompts) == 1 and len(doc_ids) == 4
        assert (run.documents_done, run.documents_failed) == (0, 1)


def test_one_bad_document_fails_alone(session_factory, tenant, settings, demo_files, monkeypatch):
    """An integer answer of 10**400 raised OverflowError in coercion, and any unexpected exception escaped the
    per-document loop and failed the run. Now the answer is an invalid value, and a defect met by one document
    fails that document with `internal_error` while the others are coded and the run exports."""
    from dagster import DagsterInstance

    from coderai_assets.defs.resources import LLMResource
    from coderai_assets.domain.runs import create_run
    from coderai_assets.engine.llm import Extractor
    from coderai_assets.ingest import codes
    from coderai_assets.pipeline import coding
    from coderai_assets.storage.models import Document, Extraction, Project, Run, RunKind, RunStatus
    from tests.fakes import PROTEST_ANSWERS, ToolCallingFakeModel
    from tests.support.dagster import _materialise, _project, _register

    answers = {k: dict(v) for k, v in PROTEST_ANSWERS.items()}
    answers["LYON, 12 March 2024"]["participants"] = 10**400

    class HugeNumbers(LLMResource):
        def extractor(self, max_output_tokens=None):
            return Extractor(ToolCallingFakeModel(messages=iter([]), answers=answers), "fake/huge")

    real_validate = coding.validate_document

    def validate(session, run, document, *args, **kwargs):
        if document.file_name.startswith("porto"):
            raise RuntimeError("a defect only this document meets")
        return real_validate(session, run, document, *args, **kwargs)

    monkeypatch.setattr(coding, "validate_document", validate)
    project_id, doc_ids = _project(session_factory, tenant, settings, demo_files)
    with DagsterInstance.ephemeral() as instance:
        keys = _register(instance, project_id, doc_ids)
        with tenant_session(session_factory, tenant) as session:
            run_id = create_run(session, session.get(Project, project_id), RunKind.full, with_quotes=True)[0].id
        tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
        result = _materialise(project_id, tenant, settings, instance, run_id, None, "documents", HugeNumbers(), tags)
    assert result.success
    with tenant_session(session_factory, tenant) as session:
        run = session.get(Run, run_id)
        documents = {d.file_name: d for d in session.scalars(select(Document).where(Document.id.in_(doc_ids)))}
        porto = next(d for name, d in documents.items() if name.startswith("porto"))
        assert (porto.status.value, porto.error_code) == ("failed", codes.INTERNAL_ERROR)
        assert (run.status, run.documents_failed, run.documents_done) == (
            RunStatus.succeeded,
            1,
            len(doc_ids) - 1,
        )
        lyon = next(d for name, d in documents.items() if name.startswith("lyon"))
        value = session.scalars(
            select(Extraction).where(
                Extraction.run_id == run_id,
                Extraction.document_id == lyon.id,
                Extraction.variable_name == "participants",
            )
        ).one()
        assert (value.status.value, value.value) == ("invalid", None)
