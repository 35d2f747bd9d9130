"""Stage 3: the stored answers become typed, validated values, each grounded in the text with its offsets and a
confidence; entities pooled across chunks."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import delete
from sqlalchemy.orm import Session

from coderai_assets.domain.carry import carry_verdicts
from coderai_assets.engine.codebook import ProjectSpec
from coderai_assets.engine.coercion import Coerced, apply_dependencies, apply_uncertainty, coerce_value
from coderai_assets.engine.grounding import (
    EXACT,
    FUZZY,
    MISMATCH,
    NOT_FOUND,
    Aligner,
    Alignment,
    numbers_in,
    quote_holds_number,
)
from coderai_assets.engine.normalise import entity_key
from coderai_assets.engine.variables import VariableSpec
from coderai_assets.pipeline.bookkeeping import document_failed_in_run, fail_document, refresh_run_counts, run_document
from coderai_assets.storage.models import (
    Document,
    DocumentStatus,
    Extraction,
    PromptVersion,
    Run,
    RunDocumentStatus,
    ValueStatus,
)
from coderai_assets.storage.repositories import answers, documents

LLM_UNPARSEABLE = "llm_unparseable"


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
    if len(text) < 2:
        return []
    return [text, *_date_needles(text)]


_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def _date_needles(text: str) -> list[str]:
    """An ISO date as texts write it (the model normalised "3 June 2023" to 2023-06-03): day-month and month-day,
    with the month's name, its abbreviation or its number."""
    match = _ISO_DATE.fullmatch(text)
    if match is None:
        return []
    year, month, day = (int(g) for g in match.groups())
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        return []
    name = _MONTHS[month - 1]
    forms = [f"{day} {name} {year}", f"{name} {day}, {year}", f"{name} {day} {year}", f"{day} {name[:3]} {year}"]
    forms += [f"{name[:3]} {day}, {year}", f"{day:02d}/{month:02d}/{year}", f"{month}/{day}/{year}"]
    return [*forms, f"{day}.{month}.{year}", f"{day:02d}.{month:02d}.{year}", f"{day} {name}"]


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


@dataclass(frozen=True)
class Grounded:
    """Where a coded value rests in the text: its quote and alignment, and the status and message it ends with."""

    quote: str | None
    alignment: Alignment | None  # None: the value claims no evidence (a clause absent from the document)
    status: str
    message: str | None

    @property
    def offsets(self) -> tuple[int, int] | None:
        a = self.alignment
        return (a.start, a.end) if a is not None and a.start is not None and a.end is not None else None

    @property
    def ungrounded(self) -> bool:
        return self.status == ValueStatus.ungrounded


def _not_grounded(result: Coerced, message: str) -> str:
    return "; ".join(filter(None, [result.message, message]))


def ground_value(
    aligner: Aligner, v: VariableSpec, result: Coerced, candidate: Candidate | None, chunks: Mapping[int, ChunkSpan]
) -> Grounded:
    """The coded value's evidence, as a run stores it and the refiner scores it. Only a value that claims evidence
    and lacks it is `ungrounded`: a quote the text does not have, a value found nowhere, or a number the quote does
    not say ("3" quoted from "3,000"). A false without a quote claims nothing (the clause is not there), and a
    default is not read from the text."""
    if result.value is None:
        return Grounded(None, None, result.status, result.message)
    if candidate is None:  # a default, or the codebook's code: nothing was read from the text
        message = _not_grounded(result, "not grounded: no supporting text found in the document")
        return Grounded(None, Alignment(NOT_FOUND), result.status, message)
    if v.type == "boolean" and result.value is False and not candidate.quote:
        return Grounded(None, None, result.status, result.message)
    chunk = chunks.get(candidate.chunk_index)
    start, end = (chunk.char_start, chunk.char_end) if chunk else (0, len(aligner.text))
    quote, alignment = ground(aligner, candidate, start, end)
    flaggable = result.status in (ValueStatus.ok, ValueStatus.coerced)
    if not alignment.found:
        message = _not_grounded(result, "not grounded: no supporting text found in the document")
        return Grounded(quote, alignment, ValueStatus.ungrounded if flaggable else result.status, message)
    if (
        v.type in ("integer", "number")
        and isinstance(result.value, int | float)
        and quote is not None
        and quote_holds_number(quote, float(result.value)) is False
    ):
        said = ", ".join(f"{n:,g}" for n in numbers_in(quote))
        mismatch = Alignment(MISMATCH, alignment.start, alignment.end, alignment.score)
        message = _not_grounded(result, f"not grounded: the quote says {said}, not {result.value:,g}")
        return Grounded(quote, mismatch, ValueStatus.ungrounded if flaggable else result.status, message)
    return Grounded(quote, alignment, result.status, result.message)


@dataclass
class Record:
    """One row of the dataset: the document, or one entity of it with where it is named."""

    entity_text: str | None
    start: int | None
    end: int | None
    candidates: dict[str, list[Candidate]]
    # Every chunk of the document answered: only then can a document-level yes/no be coded false.
    all_read: bool = True


def _candidates(spec: ProjectSpec, payload: dict[str, Any], chunk_index: int) -> dict[str, list[Candidate]]:
    found: dict[str, list[Candidate]] = {}
    for v in spec.variables:
        raw, quote, confidence = _field(payload, v.name)
        found[v.name] = [Candidate(raw, quote, chunk_index, confidence)] if raw not in (None, "", []) else []
    return found


class AnsweredChunk(Protocol):
    """A chunk's answer as records are made of it: a stored `LlmAnswer`, or the refiner's trial answer."""

    @property
    def chunk_index(self) -> int: ...

    @property
    def payload(self) -> dict[str, Any] | None: ...


class ChunkSpan(Protocol):
    @property
    def char_start(self) -> int: ...

    @property
    def char_end(self) -> int: ...


def records_of(
    spec: ProjectSpec, answers: Sequence[AnsweredChunk], aligner: Aligner, chunks: Mapping[int, ChunkSpan]
) -> list[Record]:
    """Per record (one for a document, one per entity), the candidate answers of each variable from every chunk.

    Entities: the same entity named in two chunks (overlap, or a long document returning to it) is one record when
    its names match after normalisation or point at overlapping text; its values are pooled, so a value found in
    either chunk is kept and several values follow the variable's rule for multiple values."""
    if not spec.per_entity:
        merged: dict[str, list[Candidate]] = {v.name: [] for v in spec.variables}
        for answer in answers:
            for name, found in _candidates(spec, answer.payload or {}, answer.chunk_index).items():
                merged[name].extend(found)
        read = {a.chunk_index for a in answers if a.payload is not None}
        return [Record(None, None, None, merged, all_read=bool(read) and set(chunks) <= read)]
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


def _same_entity(record: Record, label: str, start: int | None, end: int | None) -> bool:
    key = entity_key(label)
    if key and key == entity_key(record.entity_text or ""):
        return True
    return None not in (start, end, record.start, record.end) and start < record.end and record.start < end  # type: ignore[operator]


def _by_evidence(candidates: list[Candidate]) -> list[Candidate]:
    """Candidates with a quote first, each group in chunk order: a chunk that shows its evidence decides before a
    chunk that answered without any (the first mention of a date is the first one the text is quoted for)."""
    return [c for c in candidates if c.quote] + [c for c in candidates if not c.quote]


def _merge_by_evidence(
    v: VariableSpec, candidates: list[Candidate], all_read: bool, absent: Any
) -> tuple[Any, Candidate | None, str | None]:
    """A yes/no (absent: false), or a category with a code for "not in the text", across chunks by the evidence:
    what any chunk finds (true, or another code) wins, the quoted one deciding; absent only when every chunk was
    read and each says so, since the clause may sit in the one chunk that was not."""
    said = [(c, coerce_value(v, c.raw).value) for c in candidates]
    present = [c for c, value in said if value is not None and value != absent]
    absents = [c for c, value in said if value is not None and value == absent]
    if not present and not absents:
        return _merge_values(v, candidates)
    if not present and not all_read:
        return None, None, "not every chunk could be read, so the document cannot be coded as without it"
    decided = present or absents
    if v.type == "boolean":  # one value either way: the first chunk that shows its evidence
        first = _by_evidence(decided)[0]
        return first.raw, first, None
    return _merge_values(v, decided)


def _merge_values(v: VariableSpec, candidates: list[Candidate]) -> tuple[Any, Candidate | None, str | None]:
    """The single answer, or the distinct answers as a list, those quoted first."""
    ordered = _by_evidence(candidates)
    distinct: list[Any] = []
    for c in ordered:
        items = c.raw if isinstance(c.raw, list) else [c.raw]
        for item in items:
            if item not in distinct:
                distinct.append(item)
    if v.type == "list" or len(distinct) > 1:
        return distinct, ordered[0], None
    return distinct[0], ordered[0], None


def _merge(v: VariableSpec, candidates: list[Candidate], all_read: bool) -> tuple[Any, Candidate | None, str | None]:
    """One raw value from the chunks' answers, the candidate whose evidence it rests on, and a note when the
    chunks could not decide it."""
    if not candidates:
        return None, None, None
    if v.type == "boolean":
        return _merge_by_evidence(v, candidates, all_read, False)
    if v.type == "category" and v.absent_value is not None:
        return _merge_by_evidence(v, candidates, all_read, v.absent_value)
    return _merge_values(v, candidates)


_STATUS_FACTOR = {"ok": 1.0, "coerced": 0.8, "defaulted": 0.35}
_ALIGNMENT_FACTOR = {EXACT: 1.0, FUZZY: 0.8, NOT_FOUND: 0.5, MISMATCH: 0.5}
DEFAULT_MODEL_CONFIDENCE = 0.9  # for models that do not report one


def _confidence(result: Coerced, alignment: Alignment | None, reported: float | None) -> float | None:
    """The model's own confidence (or a default), times what post-processing had to do, times how well the value
    is grounded in the text (a value that claims no evidence loses nothing for having none)."""
    if result.value is None:
        return None
    base = reported if reported is not None else DEFAULT_MODEL_CONFIDENCE
    grounding = _ALIGNMENT_FACTOR[alignment.status] if alignment is not None else 1.0
    return round(base * _STATUS_FACTOR.get(result.status, 0.0) * grounding, 2)


def code_record(
    spec: ProjectSpec, record: Record, uncertainty_threshold: float
) -> tuple[dict[str, Any], dict[str, Candidate | None], dict[str, Coerced]]:
    """One record's values: per variable the raw answer merged across chunks, the candidate it came from, and the
    typed, validated value after the uncertainty and dependency rules."""
    coerced: dict[str, Coerced] = {}
    picked: dict[str, Candidate | None] = {}
    raws: dict[str, Any] = {}
    for v in spec.variables:
        raw, candidate, note = _merge(v, record.candidates.get(v.name, []), record.all_read)
        raws[v.name], picked[v.name] = raw, candidate
        reported = candidate.confidence if candidate is not None else None
        result = coerce_value(v, raw)
        if note:
            result = Coerced(result.value, result.status, "; ".join(filter(None, [note, result.message])))
        coerced[v.name] = apply_uncertainty(v, result, reported, uncertainty_threshold)
    return raws, picked, apply_dependencies(list(spec.variables), coerced)


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
    stored = answers.of_document(session, run.id, document.id)
    usable = [a for a in stored if a.payload is not None]
    if stored and not usable:
        fail_document(session, run, document, LLM_UNPARSEABLE, stored[0].error or "no answer could be parsed")
        return 0
    chunks = {c.index: c for c in documents.chunks(session, document.id)}
    aligner = Aligner(document.text or "")
    records = records_of(spec, usable, aligner, chunks)
    ungrounded = 0
    for entity_index, record in enumerate(records):
        raws, picked, coerced = code_record(spec, record, uncertainty_threshold)
        for v in spec.variables:
            result, candidate = coerced[v.name], picked[v.name]
            grounded = ground_value(aligner, v, result, candidate, chunks)
            ungrounded += grounded.ungrounded
            offsets = grounded.offsets
            session.add(
                Extraction(
                    tenant_id=document.tenant_id,
                    run_id=run.id,
                    document_id=document.id,
                    entity_index=entity_index,
                    entity_text=record.entity_text,
                    entity_start=record.start,
                    entity_end=record.end,
                    variable_id=variable_ids[v.name],
                    variable_name=v.name,
                    raw_value=raws[v.name],
                    value=result.value,
                    status=grounded.status,
                    message=grounded.message,
                    confidence=_confidence(result, grounded.alignment, candidate.confidence if candidate else None),
                    alignment=grounded.alignment.status if grounded.alignment is not None else None,
                    quote=grounded.quote,
                    char_start=offsets[0] if offsets else None,
                    char_end=offsets[1] if offsets else None,
                    chunk_index=candidate.chunk_index if candidate else None,
                    prompt_version_id=prompt_version.id,
                    model=usable[0].model if usable else None,
                )
            )
    session.flush()
    carry_verdicts(session, run, [document.id])  # verdicts of a finished review on values that did not change
    document.status = DocumentStatus.done
    row = run_document(session, run, document)
    row.status = RunDocumentStatus.done
    row.error_code = None
    row.values_ungrounded = ungrounded
    refresh_run_counts(session, run)
    return len(records)
