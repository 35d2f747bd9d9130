"""The document chain of a shard: parsed_document -> extractions -> validated_rows, one partition per document.

One op materialises the three assets, document by document (parse, extract, validate, each committed), and records
each asset for a partition as soon as that document's stage is committed: the run's progress is visible while it
runs, a document that fails never fails the others (its error code is in the application database), and a key of
the range that is not the run's is never recorded (pipeline/coding.py). When the run has no document left, the op writes
its export too and records the project's `export` partition; the export job is the fallback the lifecycle sensor
launches when a Dagster run ended before it could."""

from dagster import AssetExecutionContext, AssetMaterialization, AssetSpec, multi_asset
from opentelemetry.trace import set_span_in_context

from coderai_assets.defs.partitions import PROJECTS_PARTITIONS, RUN_TAG, Shard, project_partition
from coderai_assets.defs.resources import DatabaseResource, LLMResource, StorageResource
from coderai_assets.pipeline.coding import EXTRACTED, PARSED, VALIDATED, DocumentCoder
from coderai_assets.settings import Settings
from coderai_assets.tracing import TRACEPARENT_TAG, configure_tracing, context_from, flush, tracer

DESCRIPTIONS = {
    PARSED: "The document's text, checked by content and parsed in a sandboxed child process, in chunks.",
    EXTRACTED: "The model's answers: one structured-output call per chunk with all variables, stored as returned.",
    VALIDATED: "Typed, validated values with status, confidence and the source quote's offsets.",
}


def build_document_assets(shard: Shard, settings: Settings):
    keys = {stage: shard.asset_key(stage) for stage in (PARSED, EXTRACTED, VALIDATED)}
    specs = [
        AssetSpec(
            keys[PARSED],
            description=DESCRIPTIONS[PARSED],
            group_name=shard.group,
            partitions_def=shard.partitions,
            skippable=True,
            kinds={"python"},
        ),
        AssetSpec(
            keys[EXTRACTED],
            deps=[keys[PARSED]],
            description=DESCRIPTIONS[EXTRACTED],
            group_name=shard.group,
            partitions_def=shard.partitions,
            skippable=True,
            kinds={"openai"},
        ),
        AssetSpec(
            keys[VALIDATED],
            deps=[keys[EXTRACTED]],
            description=DESCRIPTIONS[VALIDATED],
            group_name=shard.group,
            partitions_def=shard.partitions,
            skippable=True,
            kinds={"postgres"},
        ),
    ]

    @multi_asset(
        name=f"document_chain{shard.suffix}",
        specs=specs,
        partitions_def=shard.partitions,
        can_subset=False,
        description="Parse, extract and validate each document of the run's partition keys.",
    )
    def code_documents(context: AssetExecutionContext, db: DatabaseResource, llm: LLMResource, files: StorageResource):
        # A generator without a return annotation (Dagster would read one as the outputs' types): it yields one
        # materialisation per document and stage as each is committed, and never the outputs, which are skippable.
        # dagster-postgres opens a new connection for every event it stores (NullPool): three per document, and
        # connecting cost more than the rest of a document's bookkeeping (measured: 1,316 connects, 4.5 s, for
        # 200 documents). A run records many events, so it holds one pooled connection instead, as Dagster's
        # webserver does; the storage's own method, a no-op for other storages.
        context.instance.event_log_storage.optimize_for_webserver(
            statement_timeout=0, pool_recycle=3600, max_overflow=2
        )
        # The trace of the request that started the run, when tracing is on (coderai_assets/tracing.py). Not the
        # current span: this is a generator, resumed between yields by Dagster; the coder's threads take it as parent.
        configure_tracing("coderai-run-worker")
        parent = context_from({"traceparent": context.run.tags.get(TRACEPARENT_TAG, "")})
        span = tracer.start_span(
            "coderai.run",
            context=parent,
            attributes={"coderai.run_id": context.run.tags.get(RUN_TAG, ""), "dagster.run_id": context.run_id},
        )
        coder = DocumentCoder(
            session=db.session,
            storage=files.storage(),
            extractor_for=llm.extractor,
            settings=settings,
            tags=context.run.tags,
            dagster_run_id=context.run_id,
            warn=context.log.warning,
            trace_parent=set_span_in_context(span),
        )
        counts = dict.fromkeys(keys, 0)
        run_id = context.run.tags.get(RUN_TAG, "(an asset materialisation)")
        context.log.info(f"run {run_id}: started, {len(context.partition_keys)} partition keys")
        try:
            with coder.heartbeat():  # through the export too: the lifecycle sensor fails a silent worker's run
                for done in coder.code(list(context.partition_keys)):
                    counts[done.stage] += 1
                    yield AssetMaterialization(asset_key=keys[done.stage], partition=done.key, metadata=done.metadata)
                shown = ", ".join(f"{stage} {n}" for stage, n in counts.items())
                context.log.info(f"run {run_id}: documents coded: {shown}")
                for export in coder.finish():
                    context.log.info(f"run {export.run_id}: exported {export.rows} rows")
                    partition = project_partition(export.project_id)
                    context.instance.add_dynamic_partitions(PROJECTS_PARTITIONS, [partition])
                    yield AssetMaterialization(
                        asset_key=shard.asset_key("export"),
                        partition=partition,
                        metadata={
                            "run_id": str(export.run_id),
                            "export_id": str(export.export_id),
                            "rows": export.rows,
                        },
                    )
        finally:
            span.end()
            flush()

    return code_documents
