"""Stage 2: one structured-output call per chunk (or per variable group, or entities first then one call per
entity), answered from the cache where the same call was made before; the answers stored as returned."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import delete, select
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
from coderai_assets.errors import LLMError
from coderai_assets.ingest import codes
from coderai_assets.pipeline.bookkeeping import document_failed_in_run, fail_document, run_document
from coderai_assets.pipeline.validate import entity_key
from coderai_assets.storage.models import (
    Document,
    DocumentChunk,
    DocumentStatus,
    LlmAnswer,
    PromptVersion,
    Run,
)
from coderai_assets.storage.specs import codebook_of

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


def earlier_chunk_answer(session: Session, key: str) -> LlmAnswer | None:
    """The latest usable answer for the same model and text, whatever the prompt version."""
    return session.scalars(
        select(LlmAnswer)
        .where(
            LlmAnswer.chunk_key == key,
            LlmAnswer.payload.is_not(None),
            LlmAnswer.error.is_(None),
            LlmAnswer.variable_hashes.is_not(None),
        )
        .order_by(LlmAnswer.created_at.desc())
        .limit(1)
    ).first()


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


def cached_answer(session: Session, key: str) -> LlmAnswer | None:
    # Row-level security keeps the cache inside the tenant.
    return session.scalars(
        select(LlmAnswer)
        .where(LlmAnswer.cache_key == key, LlmAnswer.payload.is_not(None), LlmAnswer.error.is_(None))
        .order_by(LlmAnswer.created_at.desc())
        .limit(1)
    ).first()


def _groups(spec: ProjectSpec, with_quotes: bool, context_tokens: int | None, max_output_tokens: int):
    if not context_tokens:
        return [spec.variables]
    return budget.variable_groups(
        spec, with_quotes=with_quotes, context_tokens=context_tokens, max_output_tokens=max_output_tokens
    )


def _ask(extractor: Extractor, books: list[Codebook], chunk: DocumentChunk, parts: int, file_name: str) -> Answer:
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
    extractor: Extractor, spec: ProjectSpec, with_quotes: bool, chunk: DocumentChunk, parts: int, file_name: str
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


def extract_document(
    session: Session,
    extractor: Extractor,
    run: Run,
    document: Document,
    prompt_version: PromptVersion,
    *,
    use_cache: bool = True,
    context_tokens: int | None = None,
    max_output_tokens: int = 1024,
    spec: ProjectSpec | None = None,
    with_quotes: bool = True,
) -> bool:
    """One model call per chunk, all variables at once; the answers are stored as returned. A chunk whose call
    was made before (same model, prompt and text) is answered from that call without calling the model; after an
    edit of some variables (document-level projects, `spec` given), only those are asked for and the others keep
    the values of the earlier call."""
    if document_failed_in_run(session, run, document):
        return False
    session.execute(delete(LlmAnswer).where(LlmAnswer.run_id == run.id, LlmAnswer.document_id == document.id))
    chunks = session.scalars(
        select(DocumentChunk).where(DocumentChunk.document_id == document.id).order_by(DocumentChunk.index)
    ).all()
    if not chunks:
        fail_document(session, run, document, codes.NO_TEXT, "the document has no parsed chunks")
        return False
    codebook = codebook_of(prompt_version)
    n_variables = len(codebook.json_schema.get("required", []))
    grouped = spec is not None and spec.extraction_unit == "document" and context_tokens is not None
    fits_whole = not context_tokens or budget.fits(
        codebook, n_variables, context_tokens=context_tokens, max_output_tokens=max_output_tokens
    )
    if not fits_whole and not (
        grouped and spec is not None and _groups(spec, with_quotes, context_tokens, max_output_tokens)
    ):
        # Said, not truncated: the codebook leaves no room for text in this model's context.
        fail_document(
            session,
            run,
            document,
            PROMPT_TOO_LARGE,
            f"the prompt and schema need about {budget.prompt_tokens(codebook)} tokens; the model's context "
            f"is {context_tokens}: use a model with a larger context or fewer variables",
        )
        return False
    row = run_document(session, run, document)
    row.llm_calls = row.input_tokens = row.output_tokens = row.cached_calls = 0
    hashes = variable_hashes(spec, with_quotes) if spec is not None else None
    partial_ok = use_cache and spec is not None and spec.extraction_unit == "document"
    for chunk in chunks:
        key = cache_key(extractor.model_name, prompt_version, chunk.text)
        ckey = chunk_key(extractor.model_name, chunk.text)
        earlier = cached_answer(session, key) if use_cache else None
        if earlier is not None:
            row.cached_calls += 1
            session.add(
                LlmAnswer(
                    tenant_id=document.tenant_id,
                    run_id=run.id,
                    document_id=document.id,
                    chunk_index=chunk.index,
                    prompt_version_id=prompt_version.id,
                    model=earlier.model,
                    payload=earlier.payload,
                    cache_key=key,
                    cached=True,
                    chunk_key=ckey,
                    variable_hashes=hashes,
                )
            )
            continue
        prior = earlier_chunk_answer(session, ckey) if partial_ok and hashes else None
        reused = _reusable(prior, hashes) if hashes else set()
        ask = spec
        if reused and spec is not None:
            ask = spec.model_copy(update={"variables": tuple(v for v in spec.variables if v.name not in reused)})
        if ask is None or (fits_whole and ask is spec):
            books = [codebook]
        elif grouped and context_tokens:
            books = [
                compile_codebook(ask.model_copy(update={"variables": group}), with_quotes)
                for group in _groups(ask, with_quotes, context_tokens, max_output_tokens)
            ]
        else:
            books = [compile_codebook(ask, with_quotes)]
        try:
            if spec is not None and spec.extraction_unit == "entity":
                answer, calls = _ask_entities(extractor, spec, with_quotes, chunk, len(chunks), document.file_name)
            else:
                answer, calls = _ask(extractor, books, chunk, len(chunks), document.file_name), len(books)
        except LLMError as exc:
            fail_document(session, run, document, LLM_FAILED, exc.message)
            return False
        row.llm_calls += calls
        row.input_tokens += answer.input_tokens
        row.output_tokens += answer.output_tokens
        if reused and prior is not None and answer.payload is not None:
            answer.payload = _merge_payloads(prior.payload, reused, answer.payload)
        session.add(
            LlmAnswer(
                tenant_id=document.tenant_id,
                run_id=run.id,
                document_id=document.id,
                chunk_index=chunk.index,
                prompt_version_id=prompt_version.id,
                model=extractor.model_name,
                payload=answer.payload,
                error=answer.error,
                input_tokens=answer.input_tokens,
                output_tokens=answer.output_tokens,
                cache_key=key,
                chunk_key=ckey,
                variable_hashes=hashes,
            )
        )
    document.status = DocumentStatus.extracted
    # The run's counters are recounted when the document is validated, right after: one wait for the run row's
    # lock per document instead of two.
    return True
