"""The per-document steps the assets call: parse, extract, validate. Each step is one transaction per document,
and idempotent: it deletes what an earlier attempt wrote for the same (run, document) before writing."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from coderai_assets import budget
from coderai_assets.codebook import (
    Codebook,
    ProjectSpec,
    VariableSpec,
    compile_codebook,
    compile_entity_coder,
    compile_entity_finder,
    entity_text_for,
    spec_from_json,
    spec_to_json,
    variable_hashes,
)
from coderai_assets.coercion import Coerced, apply_dependencies, apply_uncertainty, coerce_value
from coderai_assets.errors import LLMError
from coderai_assets.grounding import EXACT, FUZZY, NOT_FOUND, Aligner, Alignment
from coderai_assets.ingest import codes
from coderai_assets.ingest.chunk import chunk_text
from coderai_assets.ingest.sandbox import ParseWorker
from coderai_assets.llm import Answer, Extractor
from coderai_assets.models import (
    Document,
    DocumentChunk,
    DocumentStatus,
    Extraction,
    LlmAnswer,
    Project,
    PromptVersion,
    Run,
    RunDocument,
    RunDocumentStatus,
    RunStatus,
    Variable,
    utcnow,
)
from coderai_assets.storage import FileStorage

LLM_FAILED = "llm_failed"
LLM_UNPARSEABLE = "llm_unparseable"
PROMPT_TOO_LARGE = "prompt_too_large"


# ---- the codebook of a project -------------------------------------------------------------------------------


def project_variables(session: Session, project: Project) -> list[Variable]:
    """The live variables, in the codebook's order."""
    return list(
        session.scalars(
            select(Variable).where(Variable.project_id == project.id).order_by(Variable.position, Variable.created_at)
        )
    )


def project_spec(session: Session, project: Project) -> ProjectSpec:
    """The live specification: what the next prompt version is compiled from. A run reads its version's."""
    variables = project_variables(session, project)
    return ProjectSpec(
        name=project.name,
        domain_description=project.domain_description,
        extraction_unit=project.extraction_unit.value,
        entity_description=project.entity_description,
        variables=tuple(variable_spec(v) for v in variables),
    )


def variable_spec(v: Variable) -> VariableSpec:
    return VariableSpec(
        name=v.name,
        type=v.type.value,
        display_name=v.display_name,
        description=v.description,
        allowed_values=list(v.allowed_values) if v.allowed_values else None,
        if_uncertain=v.if_uncertain.value,
        uncertain_code=v.uncertain_code,
        if_multiple_values=v.if_multiple_values.value,
        max_values=v.max_values,
        default_value=v.default_value,
        depends_on=v.depends_on,
        depends_on_value=v.depends_on_value,
        validation=v.validation,
    )


def ensure_prompt_version(session: Session, project: Project, with_quotes: bool = True) -> PromptVersion:
    """The prompt version for the project's current codebook: the latest one if unchanged, else a new one, which
    keeps the whole specification (and the variables' ids) for every stage and export of its runs."""
    spec = project_spec(session, project)
    codebook = compile_codebook(spec, with_quotes)
    latest = session.scalars(
        select(PromptVersion).where(PromptVersion.project_id == project.id).order_by(PromptVersion.version.desc())
    ).first()
    ids = {v.name: str(v.id) for v in project_variables(session, project)}
    if latest is not None and latest.variables_hash == codebook.variables_hash:
        if latest.spec is None:  # a version from before snapshots: it gets one now, as it is unchanged
            latest.spec = spec_to_json(spec, ids)
        return latest
    version = PromptVersion(
        tenant_id=project.tenant_id,
        project_id=project.id,
        version=(latest.version + 1) if latest else 1,
        system_prompt=codebook.system_prompt,
        user_template=codebook.user_template,
        json_schema=codebook.json_schema,
        variables_hash=codebook.variables_hash,
        spec=spec_to_json(spec, ids),
    )
    session.add(version)
    session.flush()
    return version


def version_spec(session: Session, version: PromptVersion) -> tuple[ProjectSpec, dict[str, uuid.UUID]]:
    """The specification a prompt version was compiled from, and the variables' ids then. Versions older than the
    snapshot (migration 0005) fall back to the live project."""
    if version.spec is not None:
        spec, ids = spec_from_json(version.spec)
        return spec, {name: uuid.UUID(i) for name, i in ids.items()}
    project = session.get(Project, version.project_id)
    assert project is not None
    return project_spec(session, project), {v.name: v.id for v in project_variables(session, project)}


def codebook_of(version: PromptVersion) -> Codebook:
    return Codebook(version.system_prompt, version.user_template, version.json_schema, version.variables_hash)


# ---- run bookkeeping -------------------------------------------------------------------------------------------


def run_document(session: Session, run: Run, document: Document) -> RunDocument:
    row = session.get(RunDocument, (run.id, document.id))
    if row is None:
        row = RunDocument(run_id=run.id, document_id=document.id, tenant_id=run.tenant_id)
        session.add(row)
        session.flush()
    return row


def mark_running(session: Session, run: Run) -> None:
    if run.status == RunStatus.queued:
        run.status = RunStatus.running
        run.started_at = utcnow()


def fail_document(session: Session, run: Run, document: Document, code: str, message: str) -> None:
    document.status = DocumentStatus.failed
    document.error_code = code
    document.error_message = message
    row = run_document(session, run, document)
    row.status = RunDocumentStatus.failed
    row.error_code = code
    refresh_run_counts(session, run)


def refresh_run_counts(session: Session, run: Run) -> None:
    """Counters recomputed from run_documents, never incremented, so retries cannot double count; under the run
    row's lock, so documents finishing at once (concurrent threads, or runs) each count what the others committed
    and the last one moves the run to exporting. The lock is taken at the end of the document's transaction and
    held only until its commit. FOR NO KEY UPDATE, not FOR UPDATE: the rows this transaction inserted that point
    at the run hold a key-share lock on it, which FOR UPDATE would wait for in the other transactions (a
    deadlock between two documents finishing at once, seen with four threads)."""
    session.flush()
    session.execute(select(Run.id).where(Run.id == run.id).with_for_update(key_share=True))
    counts = dict(
        session.execute(
            select(RunDocument.status, func.count()).where(RunDocument.run_id == run.id).group_by(RunDocument.status)
        ).all()
    )
    tokens = session.execute(
        select(
            func.coalesce(func.sum(RunDocument.llm_calls), 0),
            func.coalesce(func.sum(RunDocument.input_tokens), 0),
            func.coalesce(func.sum(RunDocument.output_tokens), 0),
            func.coalesce(func.sum(RunDocument.cached_calls), 0),
        ).where(RunDocument.run_id == run.id)
    ).one()
    run.documents_total = sum(counts.values())
    run.documents_done = counts.get(RunDocumentStatus.done, 0)
    run.documents_failed = counts.get(RunDocumentStatus.failed, 0)
    run.llm_calls, run.input_tokens, run.output_tokens, run.cached_calls = (int(t) for t in tokens)
    if run.status in (RunStatus.queued, RunStatus.running) and counts.get(RunDocumentStatus.pending, 0) == 0:
        run.status = RunStatus.exporting


def price(run: Run, input_per_mtok: float, output_per_mtok: float) -> None:
    run.cost_usd = round(run.input_tokens * input_per_mtok / 1e6 + run.output_tokens * output_per_mtok / 1e6, 6)


# ---- parse -----------------------------------------------------------------------------------------------------


def parse_document(
    session: Session,
    storage: FileStorage,
    worker: ParseWorker,
    run: Run,
    document: Document,
    *,
    chunk_chars: int,
    overlap: int,
) -> bool:
    """Parse one document into text and chunks. False when it ended with an error code."""
    mark_running(session, run)
    run_document(session, run, document)
    session.execute(delete(DocumentChunk).where(DocumentChunk.document_id == document.id))
    try:
        data = storage.read(document.storage_path)
    except OSError as exc:
        fail_document(session, run, document, codes.PARSE_FAILED, f"stored file unreadable: {exc}")
        return False
    outcome = worker.parse(data)
    if not outcome.ok:
        document.format = outcome.format or document.format
        fail_document(session, run, document, outcome.error_code or codes.PARSE_FAILED, outcome.error_message or "")
        return False
    assert outcome.parsed is not None
    document.format = outcome.format
    document.text = outcome.parsed.text
    document.page_count = outcome.parsed.page_count
    document.parse_warnings = outcome.parsed.warnings or None
    document.status = DocumentStatus.parsed
    document.error_code = document.error_message = None
    for chunk in chunk_text(outcome.parsed.text, size=chunk_chars, overlap=overlap):
        session.add(
            DocumentChunk(
                tenant_id=document.tenant_id,
                document_id=document.id,
                index=chunk.index,
                char_start=chunk.char_start,
                char_end=chunk.char_end,
                text=chunk.text,
            )
        )
    return True


# ---- extract ---------------------------------------------------------------------------------------------------


def document_failed_in_run(session: Session, run: Run, document: Document) -> bool:
    row = session.get(RunDocument, (run.id, document.id))
    return row is not None and row.status == RunDocumentStatus.failed


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
            ask = dataclasses.replace(spec, variables=tuple(v for v in spec.variables if v.name not in reused))
        if ask is None or (fits_whole and ask is spec):
            books = [codebook]
        elif grouped and context_tokens:
            books = [
                compile_codebook(dataclasses.replace(ask, variables=group), with_quotes)
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
    refresh_run_counts(session, run)
    return True


# ---- validate --------------------------------------------------------------------------------------------------


@dataclass
class Candidate:
    raw: Any
    quote: str
    chunk_index: int
    confidence: float | None = None  # as the model reported it


def _field(record: dict[str, Any], name: str) -> tuple[Any, str, float | None]:
    """(value, quote, the model's confidence) of one variable in one record of the answer."""
    quotes = record.get("quotes")
    quote = quotes.get(name) if isinstance(quotes, dict) else None
    confidences = record.get("confidence")
    reported = confidences.get(name) if isinstance(confidences, dict) else None
    confidence = min(1.0, max(0.0, float(reported))) if isinstance(reported, int | float) else None
    return record.get(name), str(quote or ""), confidence


def _value_needles(raw: Any) -> list[str]:
    """How a value the model gave may be written in the text, for grounding it without a quote."""
    if isinstance(raw, bool) or raw is None:
        return []
    if isinstance(raw, int | float):
        number = int(raw) if raw == int(raw) else raw
        return [f"{number:,}", str(number)]
    text = str(raw).strip()
    return [text] if len(text) >= 2 else []


def ground(aligner: Aligner, candidate: Candidate, start: int, end: int) -> tuple[str | None, Alignment]:
    """(quote, alignment): the model's quote aligned to the text (exact, fuzzy or not found), or else the value
    itself found verbatim in its chunk. A value nobody can find stays not found: flagged, never grounded."""
    if candidate.quote:
        alignment = aligner.align(candidate.quote, (start, end))
        if alignment.found and alignment.start is not None:
            return aligner.text[alignment.start : alignment.end], alignment
        return candidate.quote, alignment
    raws = candidate.raw if isinstance(candidate.raw, list) else [candidate.raw]
    for raw in raws:
        for needle in _value_needles(raw):
            alignment = aligner.align(needle, (start, end))
            if alignment.status == EXACT and alignment.start is not None and start <= alignment.start < end:
                return aligner.text[alignment.start : alignment.end], alignment
    return None, Alignment(NOT_FOUND)


@dataclass
class Record:
    """One row of the dataset: the document, or one entity of it with where it is named."""

    entity_text: str | None
    start: int | None
    end: int | None
    candidates: dict[str, list[Candidate]]


def _candidates(spec: ProjectSpec, payload: dict[str, Any], chunk_index: int) -> dict[str, list[Candidate]]:
    found: dict[str, list[Candidate]] = {}
    for v in spec.variables:
        raw, quote, confidence = _field(payload, v.name)
        found[v.name] = [Candidate(raw, quote, chunk_index, confidence)] if raw not in (None, "", []) else []
    return found


def _records(
    spec: ProjectSpec, answers: list[LlmAnswer], aligner: Aligner, chunks: dict[int, DocumentChunk]
) -> list[Record]:
    """Per record (one for a document, one per entity), the candidate answers of each variable from every chunk.

    Entities: the same entity named in two chunks (overlap, or a long document returning to it) is one record when
    its names match after normalisation or point at overlapping text; its values are pooled, so a value found in
    either chunk is kept and several values follow the variable's rule for multiple values."""
    if spec.extraction_unit != "entity":
        merged: dict[str, list[Candidate]] = {v.name: [] for v in spec.variables}
        for answer in answers:
            for name, found in _candidates(spec, answer.payload or {}, answer.chunk_index).items():
                merged[name].extend(found)
        return [Record(None, None, None, merged)]
    records: list[Record] = []
    for answer in answers:
        chunk = chunks.get(answer.chunk_index)
        hint = (chunk.char_start, chunk.char_end) if chunk else None
        for entity in (answer.payload or {}).get("entities") or []:
            if not isinstance(entity, dict):
                continue
            label = str(entity.get("entity_text") or "").strip()
            alignment = aligner.align(label, hint) if label else Alignment(NOT_FOUND)
            start, end = (alignment.start, alignment.end) if alignment.found else (None, None)
            pooled = _candidates(spec, entity, answer.chunk_index)
            same = next((r for r in records if _same_entity(r, label, start, end)), None)
            if same is None:
                records.append(Record(label, start, end, pooled))
                continue
            for name, candidates in pooled.items():
                same.candidates[name].extend(candidates)
    return records


_ARTICLES = re.compile(r"^(?:the|a|an) ")


def entity_key(label: str) -> str:
    """An entity's name for matching: lower case, punctuation dropped, without a leading article."""
    return _ARTICLES.sub("", re.sub(r"\W+", " ", label.lower()).strip())


def _same_entity(record: Record, label: str, start: int | None, end: int | None) -> bool:
    key = entity_key(label)
    if key and key == entity_key(record.entity_text or ""):
        return True
    return None not in (start, end, record.start, record.end) and start < record.end and record.start < end  # type: ignore[operator]


def _merge(v: VariableSpec, candidates: list[Candidate]) -> tuple[Any, Candidate | None]:
    """One raw value from the chunks' answers: the single answer, or the distinct answers as a list."""
    if not candidates:
        return None, None
    distinct: list[Any] = []
    for c in candidates:
        items = c.raw if isinstance(c.raw, list) else [c.raw]
        for item in items:
            if item not in distinct:
                distinct.append(item)
    if v.type == "list" or len(distinct) > 1:
        return distinct, candidates[0]
    return distinct[0], candidates[0]


_STATUS_FACTOR = {"ok": 1.0, "coerced": 0.8, "defaulted": 0.35}
_ALIGNMENT_FACTOR = {EXACT: 1.0, FUZZY: 0.8, NOT_FOUND: 0.5}
DEFAULT_MODEL_CONFIDENCE = 0.9  # for models that do not report one


def _confidence(result: Coerced, alignment: Alignment, reported: float | None) -> float | None:
    """The model's own confidence (or a default), times what post-processing had to do, times how well the value
    is grounded in the text."""
    if result.value is None:
        return None
    base = reported if reported is not None else DEFAULT_MODEL_CONFIDENCE
    return round(base * _STATUS_FACTOR.get(result.status, 0.0) * _ALIGNMENT_FACTOR[alignment.status], 2)


def validate_document(
    session: Session,
    run: Run,
    document: Document,
    spec: ProjectSpec,
    prompt_version: PromptVersion,
    variable_ids: dict[str, uuid.UUID],
    *,
    uncertainty_threshold: float = 0.5,
) -> int:
    """Turn the stored answers into typed, validated values; returns the number of records (rows)."""
    if document_failed_in_run(session, run, document):
        return 0
    session.execute(delete(Extraction).where(Extraction.run_id == run.id, Extraction.document_id == document.id))
    answers = session.scalars(
        select(LlmAnswer)
        .where(LlmAnswer.run_id == run.id, LlmAnswer.document_id == document.id)
        .order_by(LlmAnswer.chunk_index)
    ).all()
    usable = [a for a in answers if a.payload is not None]
    if answers and not usable:
        fail_document(session, run, document, LLM_UNPARSEABLE, answers[0].error or "no answer could be parsed")
        return 0
    chunks = {
        c.index: c for c in session.scalars(select(DocumentChunk).where(DocumentChunk.document_id == document.id)).all()
    }
    aligner = Aligner(document.text or "")
    text_length = len(aligner.text)
    records = _records(spec, usable, aligner, chunks)
    for entity_index, record in enumerate(records):
        entity_text, candidates = record.entity_text, record.candidates
        coerced: dict[str, Coerced] = {}
        picked: dict[str, Candidate | None] = {}
        raws: dict[str, Any] = {}
        for v in spec.variables:
            raw, candidate = _merge(v, candidates.get(v.name, []))
            raws[v.name], picked[v.name] = raw, candidate
            reported = candidate.confidence if candidate is not None else None
            coerced[v.name] = apply_uncertainty(v, coerce_value(v, raw), reported, uncertainty_threshold)
        coerced = apply_dependencies(list(spec.variables), coerced)
        for v in spec.variables:
            result, candidate = coerced[v.name], picked[v.name]
            quote, alignment = None, Alignment(NOT_FOUND)
            if candidate is not None and result.value is not None:
                chunk = chunks.get(candidate.chunk_index)
                quote, alignment = ground(
                    aligner, candidate, chunk.char_start if chunk else 0, chunk.char_end if chunk else text_length
                )
            offsets = (alignment.start, alignment.end) if alignment.found else None
            message = result.message
            if result.value is not None and offsets is None:
                message = "; ".join(filter(None, [message, "not grounded: no supporting text found in the document"]))
            session.add(
                Extraction(
                    tenant_id=document.tenant_id,
                    run_id=run.id,
                    document_id=document.id,
                    entity_index=entity_index,
                    entity_text=entity_text,
                    entity_start=record.start,
                    entity_end=record.end,
                    variable_id=variable_ids[v.name],
                    variable_name=v.name,
                    raw_value=raws[v.name],
                    value=result.value,
                    status=result.status,
                    message=message,
                    confidence=_confidence(result, alignment, candidate.confidence if candidate else None),
                    alignment=alignment.status if result.value is not None else None,
                    quote=quote,
                    char_start=offsets[0] if offsets else None,
                    char_end=offsets[1] if offsets else None,
                    chunk_index=candidate.chunk_index if candidate else None,
                    prompt_version_id=prompt_version.id,
                    model=usable[0].model if usable else None,
                )
            )
    document.status = DocumentStatus.done
    row = run_document(session, run, document)
    row.status = RunDocumentStatus.done
    row.error_code = None
    refresh_run_counts(session, run)
    return len(records)


def reset_run_document(session: Session, run: Run, document: Document) -> None:
    """A re-materialised document starts over in this run."""
    session.execute(
        update(RunDocument)
        .where(RunDocument.run_id == run.id, RunDocument.document_id == document.id)
        .values(status=RunDocumentStatus.pending, error_code=None)
    )
