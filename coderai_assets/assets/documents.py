"""The three document-partitioned assets of a project. Their values live in the application database;
each asset loops over the run's partition keys (one key, or a range) with one transaction per document,
so one bad document never fails the others (DESIGN.md 2)."""

import uuid

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, asset
from sqlalchemy import select

from coderai_assets import budget
from coderai_assets.ingest.detect import ZipLimits
from coderai_assets.ingest.sandbox import ParseLimits, ParseWorker
from coderai_assets.models import Document, Project, PromptVersion, Run, Variable
from coderai_assets.partitions import RUN_TAG, documents_partitions
from coderai_assets.pipeline import (
    extract_document,
    parse_document,
    price,
    project_spec,
    reset_run_document,
    validate_document,
)
from coderai_assets.resources import DatabaseResource, LLMResource, StorageResource
from coderai_assets.runs import run_for_materialisation
from coderai_assets.settings import get_settings


def parse_limits() -> ParseLimits:
    s = get_settings()
    return ParseLimits(
        timeout_seconds=s.parse_timeout_seconds,
        cpu_seconds=s.parse_cpu_seconds,
        memory_bytes=s.parse_memory_bytes,
        zip=ZipLimits(s.max_zip_uncompressed_bytes, s.max_zip_entries, s.max_zip_ratio),
    )


def chunk_size(session, project: Project, settings) -> int:
    """Explicit, or as much text as fits the model's context beside this project's prompt and answer."""
    if settings.chunk_chars > 0:
        return settings.chunk_chars
    return budget.chunk_chars_for(
        project_spec(session, project),
        with_quotes=settings.request_quotes,
        context_tokens=settings.llm_context_tokens,
        max_output_tokens=settings.llm_max_output_tokens,
    )


def _load(session, project_id: uuid.UUID, key: str) -> Document | None:
    document = session.get(Document, uuid.UUID(hex=key))
    return document if document is not None and document.project_id == project_id else None


def _run(session, context: AssetExecutionContext, project: Project) -> Run:
    return run_for_materialisation(session, project, context.run.tags.get(RUN_TAG), context.run_id)


def _prompt_version(session, run: Run) -> PromptVersion:
    version = session.get(PromptVersion, run.prompt_version_id) if run.prompt_version_id else None
    if version is None:
        raise ValueError(f"run {run.id} has no prompt version")
    return version


def build_document_assets(project_id: uuid.UUID, tenant_id: uuid.UUID, project_key: str) -> list:
    partitions = documents_partitions(project_id)
    group = project_key

    @asset(
        key=AssetKey([project_key, "parsed_document"]),
        partitions_def=partitions,
        group_name=group,
        description="The document's text, checked by content and parsed in a sandboxed child process, in chunks.",
    )
    def parsed_document(
        context: AssetExecutionContext, db: DatabaseResource, files: StorageResource
    ) -> MaterializeResult:
        settings = get_settings()
        parsed = failed = 0
        with db.session(tenant_id) as session:
            project = session.get(Project, project_id)
            if project is None:
                raise ValueError(f"project {project_id} no longer exists")
            size = chunk_size(session, project, settings)
        context.log.info(f"chunks of {size} characters")
        with ParseWorker(parse_limits()) as worker:
            for key in context.partition_keys:
                with db.session(tenant_id) as session:
                    project = session.get(Project, project_id)
                    document = _load(session, project_id, key)
                    if project is None or document is None:
                        context.log.warning(f"document {key} not found in project {project_id}")
                        failed += 1
                        continue
                    run = _run(session, context, project)
                    reset_run_document(session, run, document)
                    ok = parse_document(
                        session,
                        files.storage(),
                        worker,
                        run,
                        document,
                        chunk_chars=size,
                        overlap=settings.chunk_overlap_chars,
                    )
                    parsed += ok
                    failed += not ok
                    if not ok:
                        context.log.warning(f"{document.file_name}: {document.error_code}: {document.error_message}")
        return MaterializeResult(metadata={"parsed": parsed, "failed": failed})

    @asset(
        key=AssetKey([project_key, "extractions"]),
        partitions_def=partitions,
        deps=[parsed_document],
        group_name=group,
        description="The model's answers: one structured-output call per chunk with all variables.",
    )
    def extractions(context: AssetExecutionContext, db: DatabaseResource, llm: LLMResource) -> MaterializeResult:
        settings = get_settings()
        with db.session(tenant_id) as session:
            project = session.get(Project, project_id)
            n_variables = len(project_spec(session, project).variables) if project else 0
        extractor = llm.extractor(budget.answer_tokens(n_variables, settings.llm_max_output_tokens))
        extracted = failed = 0
        for key in context.partition_keys:
            with db.session(tenant_id) as session:
                project = session.get(Project, project_id)
                document = _load(session, project_id, key)
                if project is None or document is None:
                    continue
                run = _run(session, context, project)
                version = _prompt_version(session, run)
                ok = extract_document(
                    session,
                    extractor,
                    run,
                    document,
                    version,
                    use_cache=settings.llm_cache,
                    context_tokens=settings.llm_context_tokens,
                    spec=project_spec(session, project),
                    with_quotes=settings.request_quotes,
                    max_output_tokens=settings.llm_max_output_tokens,
                )
                extracted += ok
                failed += not ok
                price(run, settings.llm_input_price_per_mtok, settings.llm_output_price_per_mtok)
                run.model = extractor.model_name
        return MaterializeResult(metadata={"extracted": extracted, "failed": failed, "model": extractor.model_name})

    @asset(
        key=AssetKey([project_key, "validated_rows"]),
        partitions_def=partitions,
        deps=[extractions],
        group_name=group,
        description="Typed, validated values with status, confidence and source quote offsets.",
    )
    def validated_rows(context: AssetExecutionContext, db: DatabaseResource) -> MaterializeResult:
        rows = 0
        for key in context.partition_keys:
            with db.session(tenant_id) as session:
                project = session.get(Project, project_id)
                document = _load(session, project_id, key)
                if project is None or document is None:
                    continue
                run = _run(session, context, project)
                version = _prompt_version(session, run)
                spec = project_spec(session, project)
                variable_ids = dict(
                    session.execute(select(Variable.name, Variable.id).where(Variable.project_id == project_id)).all()
                )
                rows += validate_document(
                    session,
                    run,
                    document,
                    spec,
                    version,
                    variable_ids,
                    uncertainty_threshold=get_settings().uncertainty_threshold,
                )
        return MaterializeResult(metadata={"rows": rows})

    return [parsed_document, extractions, validated_rows]
