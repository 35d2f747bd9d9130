"""Stage 2: one structured-output call per chunk (or per variable group, or entities first then one call per
entity), answered from the cache where the same call was made before; the answers stored as returned.

In three steps, so that no database connection is held while the model thinks: `plan_extraction` (one transaction)
decides which chunks still need a call; `call_chunk` makes a chunk's calls without the database, and many run at
once (pipeline/coding.py); `store_chunk` commits each chunk's answer as it arrives, so a crash loses at most the
calls in flight; `finish_extraction` closes the document. A document that is planned again in the same run (a
retry after a crash) keeps the answers already committed for it and asks only for the chunks that have none.
How each chunk is asked (whole codebook, variable groups, or entities first) is engine/budget.py's `call_plan`, the
same for a run, the refiner's trial and the estimate."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from coderai_assets.engine import budget
from coderai_assets.engine.codebook import (
    Codebook,
    ProjectSpec,
    compile_codebook,
    compile_entity_coder,
    compile_entity_finder,
    entity_text_for,
    variable_hashes,
)
from coderai_assets.engine.llm import Answer, Extractor
from coderai_assets.engine.normalise import entity_key
from coderai_assets.engine.spending import Prices
from coderai_assets.errors import LLMError
from coderai_assets.ingest import codes
from coderai_assets.pipeline.bookkeeping import document_failed_in_run, fail_document, run_document
from coderai_assets.pipeline.spending import record_spend
from coderai_assets.storage.models import (
    Document,
    DocumentChunk,
    DocumentStatus,
    LlmAnswer,
    PromptVersion,
    Run,
    RunDocument,
)
from coderai_assets.storage.repositories import answers, documents

LLM_FAILED = "llm_failed"
PROMPT_TOO_LARGE = "prompt_too_large"


def cache_key(model_name: str, prompt_version: PromptVersion, chunk_text: str) -> str:
    """The identity of a call: the same model, prompt (system, template, schema) and text give the same answer
    at temperature 0, so an earlier answer stands for it."""
    digest = hashlib.sha256()
    for part in (
        model_name,
        prompt_version.variables_hash,
        prompt_version.system_prompt,
        prompt_version.user_template,
        chunk_text,
    ):
        digest.update(part.encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def chunk_key(model_name: str, chunk_text: str) -> str:
    return hashlib.sha256(f"{model_name}\x00{chunk_text}".encode()).hexdigest()


def _reusable(earlier: LlmAnswer | None, hashes: dict[str, str]) -> set[str]:
    if earlier is None or not isinstance(earlier.payload, dict):
        return set()
    return {
        name for name, h in hashes.items() if (earlier.variable_hashes or {}).get(name) == h and name in earlier.payload
    }


def _merge_payloads(earlier: dict[str, Any], reused: set[str], fresh: dict[str, Any]) -> dict[str, Any]:
    merged = {name: earlier[name] for name in reused}
    merged.update({k: v for k, v in fresh.items() if k != "quotes"})
    quotes = {k: v for k, v in (earlier.get("quotes") or {}).items() if k in reused}
    quotes.update(fresh.get("quotes") or {})
    if quotes or "quotes" in fresh or "quotes" in earlier:
        merged["quotes"] = quotes
    return merged


def _ask(extractor: Extractor, books: list[Codebook], chunk: ChunkText, parts: int, file_name: str) -> Answer:
    """One call per codebook (one, or one per variable group when the whole codebook does not fit the context);
    the answers merged into one."""
    merged = Answer(payload={})
    for book in books:
        answer = extractor.extract(
            book,
            file_name=file_name,
            text=chunk.text,
            part=chunk.index + 1,
            parts=parts,
            char_start=chunk.char_start,
            char_end=chunk.char_end,
        )
        merged.input_tokens += answer.input_tokens
        merged.output_tokens += answer.output_tokens
        if answer.payload is None or merged.payload is None:
            merged.payload, merged.error = None, answer.error or merged.error
            continue
        quotes = {**(merged.payload.get("quotes") or {}), **(answer.payload.get("quotes") or {})}
        confidence = {**(merged.payload.get("confidence") or {}), **(answer.payload.get("confidence") or {})}
        merged.payload.update(answer.payload)
        if quotes:
            merged.payload["quotes"] = quotes
        if confidence:
            merged.payload["confidence"] = confidence
    return merged


def _ask_entities(
    extractor: Extractor, spec: ProjectSpec, with_quotes: bool, chunk: ChunkText, parts: int, file_name: str
) -> tuple[Answer, int]:
    """Entities first, then their variables: one call lists the chunk's entities, one call per entity codes it.
    Returns the answer in the shape of the single-call schema ({"entities": [...]}) and the number of calls."""
    where: dict[str, Any] = {
        "file_name": file_name,
        "part": chunk.index + 1,
        "parts": parts,
        "char_start": chunk.char_start,
        "char_end": chunk.char_end,
    }
    found = extractor.extract(compile_entity_finder(spec), text=chunk.text, **where)
    total = Answer(payload={"entities": []}, input_tokens=found.input_tokens, output_tokens=found.output_tokens)
    if found.payload is None:
        return Answer(
            payload=None, error=found.error, input_tokens=found.input_tokens, output_tokens=found.output_tokens
        ), 1
    coder = compile_entity_coder(spec, with_quotes)
    seen: set[str] = set()
    calls = 1
    for item in found.payload.get("entities") or []:
        name = str(item.get("entity_text") or "").strip() if isinstance(item, dict) else ""
        if not name or entity_key(name) in seen:
            continue
        seen.add(entity_key(name))
        coded = extractor.extract(coder, text=entity_text_for(spec, chunk.text, name), **where)
        calls += 1
        total.input_tokens += coded.input_tokens
        total.output_tokens += coded.output_tokens
        if coded.payload is not None:
            total.payload["entities"].append({"entity_text": name, **coded.payload})  # type: ignore[index]
    return total, calls


def ask_chunk(
    extractor: Extractor,
    spec: ProjectSpec,
    chunk: ChunkText,
    parts: int,
    file_name: str,
    *,
    with_quotes: bool,
    context_tokens: int | None = None,
    max_output_tokens: int = 1024,
) -> tuple[Answer, int]:
    """A chunk's calls for a specification that is no prompt version (the refiner's trial of a proposal), as a run
    would make them, uncached: (the answer, the number of calls)."""
    calls = budget.call_plan(
        spec, with_quotes=with_quotes, context_tokens=context_tokens, max_output_tokens=max_output_tokens
    )
    if calls is None:
        raise LLMError(_too_large(spec, with_quotes, context_tokens))
    if calls.entities:
        return _ask_entities(extractor, spec, with_quotes, chunk, parts, file_name)
    return _ask(extractor, list(calls.books), chunk, parts, file_name), len(calls.books)


def _too_large(spec: ProjectSpec, with_quotes: bool, context_tokens: int | None) -> str:
    tokens = budget.prompt_tokens(compile_codebook(spec, with_quotes))
    return (
        f"the prompt and schema need about {tokens} tokens; the model's context is {context_tokens}: use a model "
        "with a larger context or fewer variables"
    )


@dataclass(frozen=True)
class ChunkText:
    """What a call needs of a chunk, detached from the session that read it."""

    index: int
    text: str
    char_start: int
    char_end: int


@dataclass
class ChunkCall:
    """One chunk that still needs the model: its text, the codebooks to ask (None: entities first, then each
    entity) and, after an edit, the earlier answer whose unchanged values it keeps."""

    chunk: ChunkText
    cache_key: str
    chunk_key: str
    books: list[Codebook] | None
    prior: dict[str, Any] | None = None
    reused: set[str] = field(default_factory=set)


@dataclass
class ChunkResult:
    call: ChunkCall
    answer: Answer
    calls: int


@dataclass
class ExtractionPlan:
    run_id: Any
    document_id: Any
    tenant_id: Any
    prompt_version_id: Any
    file_name: str
    parts: int
    model_name: str
    hashes: dict[str, str]
    spec: ProjectSpec
    with_quotes: bool
    calls: list[ChunkCall]
    prices: Prices = field(default_factory=Prices)


@dataclass(frozen=True)
class _Asking:
    """How this document's chunks are asked: the project's call plan, with the options a subset is planned by."""

    plan: budget.CallPlan
    with_quotes: bool
    context_tokens: int | None
    max_output_tokens: int
    partial: bool  # a chunk may keep an earlier answer's unchanged values and ask only the rest


def plan_extraction(
    session: Session,
    extractor: Extractor,
    run: Run,
    document: Document,
    prompt_version: PromptVersion,
    spec: ProjectSpec,
    *,
    use_cache: bool = True,
    context_tokens: int | None = None,
    max_output_tokens: int = 1024,
    with_quotes: bool = True,
) -> ExtractionPlan | None:
    """The chunks of the document that still need a call; chunks answered from the cache get their answer here.
    `spec` is the prompt version's (domain/specs.py `version_spec`): the calls are compiled from it. None when
    the document failed (recorded with its code)."""
    if document_failed_in_run(session, run, document):
        return None
    chunks = documents.chunks(session, document.id)
    if not chunks:
        fail_document(session, run, document, codes.NO_TEXT, "the document has no parsed chunks")
        return None
    calls = budget.call_plan(
        spec, with_quotes=with_quotes, context_tokens=context_tokens, max_output_tokens=max_output_tokens
    )
    if calls is None:  # said, not truncated: the codebook leaves no room for text in this model's context
        fail_document(session, run, document, PROMPT_TOO_LARGE, _too_large(spec, with_quotes, context_tokens))
        return None
    run_document(session, run, document)
    asking = _Asking(calls, with_quotes, context_tokens, max_output_tokens, use_cache and not calls.entities)
    plan = ExtractionPlan(
        run_id=run.id,
        document_id=document.id,
        tenant_id=document.tenant_id,
        prompt_version_id=prompt_version.id,
        file_name=document.file_name,
        parts=len(chunks),
        model_name=extractor.model_name,
        hashes=variable_hashes(spec, with_quotes),
        spec=spec,
        with_quotes=with_quotes,
        calls=[],
        prices=Prices(run.input_price_per_mtok or 0.0, run.output_price_per_mtok or 0.0),
    )
    keys = {c.index: cache_key(extractor.model_name, prompt_version, c.text) for c in chunks}
    committed = _committed_answers(session, run, document, keys)
    for chunk in chunks:
        key, ckey = keys[chunk.index], chunk_key(extractor.model_name, chunk.text)
        if chunk.index in committed:
            continue
        earlier = answers.cached(session, key) if use_cache else None
        if earlier is not None:
            session.add(_cached_copy(plan, chunk.index, earlier, key, ckey))
            continue
        plan.calls.append(_chunk_call(session, plan, asking, chunk, key, ckey))
    session.flush()
    _count_answers(session, run, document)
    return plan


def _committed_answers(session: Session, run: Run, document: Document, keys: dict[int, str]) -> set[int]:
    """The chunks whose answer this run committed before a crash and that answer the same call: they stand. Any
    other answer of this run for the document is dropped."""
    committed = {a.chunk_index: a for a in answers.of_document(session, run.id, document.id)}
    stale = [a.id for i, a in committed.items() if keys.get(i) != a.cache_key]
    if stale:
        answers.drop(session, stale)
    return {i for i, a in committed.items() if keys.get(i) == a.cache_key}


def _cached_copy(plan: ExtractionPlan, chunk_index: int, earlier: LlmAnswer, key: str, ckey: str) -> LlmAnswer:
    """The same call answered before: its answer, as this run's, at no call."""
    return LlmAnswer(
        tenant_id=plan.tenant_id,
        run_id=plan.run_id,
        document_id=plan.document_id,
        chunk_index=chunk_index,
        prompt_version_id=plan.prompt_version_id,
        model=earlier.model,
        payload=earlier.payload,
        cache_key=key,
        cached=True,
        calls=0,
        chunk_key=ckey,
        variable_hashes=plan.hashes,
    )


def _chunk_call(
    session: Session, plan: ExtractionPlan, asking: _Asking, chunk: DocumentChunk, key: str, ckey: str
) -> ChunkCall:
    """The calls a chunk needs: the plan's, or, when an earlier answer for the same text holds some variables
    whose definition is unchanged, the calls for the other variables only."""
    prior = answers.latest_for_text(session, ckey) if asking.partial else None
    reused = _reusable(prior, plan.hashes)
    books: list[Codebook] | None = None if asking.plan.entities else list(asking.plan.books)
    if reused:
        rest = plan.spec.model_copy(update={"variables": tuple(v for v in plan.spec.variables if v.name not in reused)})
        subset = budget.call_plan(
            rest,
            with_quotes=asking.with_quotes,
            context_tokens=asking.context_tokens,
            max_output_tokens=asking.max_output_tokens,
        )
        books = list(subset.books) if subset is not None else books
    return ChunkCall(
        chunk=ChunkText(chunk.index, chunk.text, chunk.char_start, chunk.char_end),
        cache_key=key,
        chunk_key=ckey,
        books=books,
        prior=prior.payload if reused and prior is not None else None,
        reused=reused,
    )


def call_chunk(extractor: Extractor, plan: ExtractionPlan, call: ChunkCall) -> ChunkResult:
    """The model's calls for one chunk; no database. Raises LLMError (the document fails) or StopsWork (the run
    stops)."""
    if call.books is None:
        answer, calls = _ask_entities(extractor, plan.spec, plan.with_quotes, call.chunk, plan.parts, plan.file_name)
    else:
        answer, calls = _ask(extractor, call.books, call.chunk, plan.parts, plan.file_name), len(call.books)
    if call.reused and call.prior is not None and answer.payload is not None:
        answer.payload = _merge_payloads(call.prior, call.reused, answer.payload)
    return ChunkResult(call, answer, calls)


def store_chunk(session: Session, plan: ExtractionPlan, result: ChunkResult) -> None:
    """Commits one chunk's answer with the document's counters in its run and what it cost (the caller's
    transaction)."""
    call, answer = result.call, result.answer
    answers.drop_chunk(session, plan.run_id, plan.document_id, call.chunk.index)
    session.add(
        LlmAnswer(
            tenant_id=plan.tenant_id,
            run_id=plan.run_id,
            document_id=plan.document_id,
            chunk_index=call.chunk.index,
            prompt_version_id=plan.prompt_version_id,
            model=plan.model_name,
            payload=answer.payload,
            error=answer.error,
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
            calls=result.calls,
            reused_variables=len(call.reused) if answer.payload is not None else 0,
            cache_key=call.cache_key,
            chunk_key=call.chunk_key,
            variable_hashes=plan.hashes,
        )
    )
    session.flush()
    record_spend(session, plan.tenant_id, plan.run_id, plan.prices.cost(answer.input_tokens, answer.output_tokens))
    row = session.get(RunDocument, (plan.run_id, plan.document_id))
    if row is not None:
        _count_answers(session, None, None, row)


def _count_answers(session: Session, run: Run | None, document: Document | None, row: RunDocument | None = None):
    """The document's calls and tokens in its run, recounted from its answers: never incremented, so a chunk
    stored twice (a retry) cannot count twice, and progress moves with every chunk."""
    if row is None:
        assert run is not None and document is not None
        row = run_document(session, run, document)
    calls, cached, partly, input_tokens, output_tokens = answers.totals_of_document(
        session, row.run_id, row.document_id
    )
    row.llm_calls, row.cached_calls, row.partly_cached_calls = int(calls), int(cached), int(partly)
    row.input_tokens, row.output_tokens = int(input_tokens), int(output_tokens)


def finish_extraction(session: Session, run: Run, document: Document, failure: str | None) -> bool:
    """The document's answers are all in (`failure`: the first chunk whose calls failed, which fails it)."""
    if failure is not None:
        fail_document(session, run, document, LLM_FAILED, failure)
        return False
    run_document(session, run, document).stage = "extracted"
    document.status = DocumentStatus.extracted
    # The run's counters are recounted when the document is validated, right after: one wait for the run row's
    # lock per document instead of two.
    return True
