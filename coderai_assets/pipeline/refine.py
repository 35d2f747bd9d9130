"""The refiner: from a run's feedback, a better definition of each weak variable, scored on held-out documents.

1. The run's reviewed documents are split (seeded) into the ones a proposal is written from and the held-out ones.
2. A variable is weak when a value of it was wrong on the documents written from; the model is shown its
   definition, the wrong values with their corrections, notes and surrounding text, and proposes a definition.
3. The held-out documents are coded again with the proposed codebook (the live one with the proposals), and each
   variable's values there are compared with the reviewers', before (the run's values, which they reviewed) and
   after. The offer stands only when a refined variable gains and none loses (engine/refiner.py `verdict`).

No database connection is held while the model is asked: what the calls need is read first, detached."""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy.orm import Session

from coderai_assets.domain.reviews import latest_feedback, latest_reviewed_run, reviewer_value
from coderai_assets.domain.specs import project_spec
from coderai_assets.engine.agreement import UNKNOWN, agreement, coded_alike
from coderai_assets.engine.codebook import ProjectSpec, variables_hash
from coderai_assets.engine.grounding import Aligner
from coderai_assets.engine.llm import Answer, Extractor
from coderai_assets.engine.model_limits import ModelLimits
from coderai_assets.engine.normalise import entity_key
from coderai_assets.engine.provider import estimate_tokens
from coderai_assets.engine.refiner import (
    MAX_SHOWN,
    Example,
    changes,
    proposal_schema,
    proposed_definition,
    refiner_prompt,
    split_documents,
    verdict,
)
from coderai_assets.engine.spending import Prices
from coderai_assets.engine.variables import VariableSpec
from coderai_assets.errors import Conflict, LLMError, NotFound
from coderai_assets.pipeline.estimate import estimate_run
from coderai_assets.pipeline.extract import ChunkText, ask_chunk
from coderai_assets.pipeline.validate import code_record, ground_value, records_of
from coderai_assets.storage.models import Document, Project, Run
from coderai_assets.storage.repositories import documents

PROPOSAL_TOKENS = 250  # a proposal's answer, typically: a description, a few examples and a reason
CONTEXT_CHARS = 300  # of text each side of a wrong value, shown to the model
MAX_ITEMS_SHOWN = 500  # held-out values listed in the result, before and after


@dataclass(frozen=True)
class RefineOptions:
    run_id: uuid.UUID | None = None  # the reviewed run; the latest run with feedback when None
    variables: tuple[str, ...] = ()  # only these; every weak one when empty
    held_out_fraction: float = 0.5
    seed: int = 0
    # Whose feedback it learns from and scores on (domain/reviews.py): everybody's (None) once every review of
    # the run is complete, else the requester's own, so a refinement never shows one reviewer another's answers.
    feedback_scope: uuid.UUID | None = None
    with_quotes: bool = True
    uncertainty_threshold: float = 0.5
    context_tokens: int | None = None
    max_output_tokens: int = 1024
    concurrency: int = 4


@dataclass(frozen=True)
class Reviewed:
    document_id: str
    entity_index: int
    entity_text: str | None
    variable: str
    model_value: Any
    reviewer_value: Any
    quote: str | None
    note: str
    char_start: int | None


@dataclass
class HeldOut:
    document_id: str
    file_name: str
    text: str
    chunks: list[ChunkText]


@dataclass
class Tally:
    """What an agent's calls used; added to from the threads that code held-out documents."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, answer: Answer, calls: int = 1) -> None:
        with self._lock:
            self.calls += calls
            self.input_tokens += answer.input_tokens
            self.output_tokens += answer.output_tokens


@dataclass
class Prepared:
    run_id: uuid.UUID
    spec: ProjectSpec
    base_hash: str
    reviewed: list[Reviewed]
    train: list[str]
    held_out: list[str]
    examples: dict[str, tuple[list[Example], list[Example]]]  # variable -> (wrong, right) on the train documents
    documents: dict[str, HeldOut] = field(default_factory=dict)


def reviewed_run(session: Session, project: Project, run_id: uuid.UUID | None) -> Run:
    if run_id is not None:
        run = session.get(Run, run_id)
        if run is None or run.project_id != project.id:
            raise NotFound("No such run in the project.", code="run_not_found")
        return run
    run = latest_reviewed_run(session, project)
    if run is None:
        raise Conflict("No run of the project has feedback yet: review a sample first.", code="no_feedback")
    return run


def _context(session: Session, document_id: str, around: int | None, needle: Any) -> str:
    """Text around the model's quote, else around the reviewer's value where the text has it, else the start."""
    document = uuid.UUID(document_id)
    if not documents.text_length(session, document):
        return ""
    start = around
    if start is None and isinstance(needle, str | int | float) and str(needle).strip():
        start = documents.find_in_text(session, document, str(needle))
    start = max(0, (start or 0) - CONTEXT_CHARS)
    window = documents.text_window(session, document, start, 2 * CONTEXT_CHARS)
    return " ".join((window or "").split())


def prepare(session: Session, project: Project, options: RefineOptions) -> Prepared:
    """What the refiner needs, read in one transaction: the reviewed values, the split, the examples of the
    documents written from, and the held-out documents' text and chunks."""
    run = reviewed_run(session, project, options.run_id)
    spec = project_spec(session, project)
    live = {v.name for v in spec.variables}
    reviewed = [
        Reviewed(
            document_id=str(value.document_id),
            entity_index=value.entity_index,
            entity_text=value.entity_text,
            variable=value.variable_name,
            model_value=value.value,
            reviewer_value=reviewer_value(feedback, value),
            quote=value.quote,
            note=feedback.comment or "",
            char_start=value.char_start,
        )
        for feedback, value in latest_feedback(session, run.id, options.feedback_scope)
        if value.variable_name in live  # a variable deleted since is not refined
    ]
    reviewed_documents = sorted({r.document_id for r in reviewed})
    names = documents.file_names(session, [uuid.UUID(d) for d in reviewed_documents])
    by_file_name = sorted(reviewed_documents, key=lambda d: (names.get(uuid.UUID(d), ""), d))
    try:
        train, held_out = split_documents(by_file_name, options.held_out_fraction, options.seed)
    except ValueError as exc:
        raise Conflict(
            f"The run has feedback on {len(reviewed_documents)} document(s); the refiner needs at least two: {exc}.",
            code="too_few_reviewed_documents",
        ) from exc
    types = {v.name: v.type.value for v in spec.variables}
    examples: dict[str, tuple[list[Example], list[Example]]] = defaultdict(lambda: ([], []))
    train_set = set(train)
    for r in reviewed:
        if r.document_id not in train_set:
            continue
        alike = coded_alike(r.model_value, r.reviewer_value, types[r.variable])
        side = examples[r.variable][1 if alike else 0]
        # The text around a wrong value, read only for those the model will be shown.
        shown = not alike and len(side) < MAX_SHOWN
        side.append(
            Example(
                file_name=names.get(uuid.UUID(r.document_id), r.document_id),
                model_value=r.model_value,
                reviewer_value=r.reviewer_value,
                quote=r.quote,
                note=r.note,
                context=_context(session, r.document_id, r.char_start, r.reviewer_value) if shown else "",
            )
        )
    prepared = Prepared(
        run_id=run.id,
        spec=spec,
        base_hash=variables_hash(spec),  # the definitions the proposal was written against
        reviewed=reviewed,
        train=train,
        held_out=held_out,
        examples=dict(examples),
    )
    for document_id in held_out:
        document = session.get(Document, uuid.UUID(document_id))
        assert document is not None
        chunks = documents.chunks(session, document.id)
        prepared.documents[document_id] = HeldOut(
            document_id,
            document.file_name,
            document.text or "",
            [ChunkText(c.index, c.text, c.char_start, c.char_end) for c in chunks],
        )
    return prepared


def weak_variables(prepared: Prepared, options: RefineOptions) -> list[str]:
    """The variables with a wrong value on the documents written from (of those asked for, if any), in order."""
    weak = [v.name for v in prepared.spec.variables if prepared.examples.get(v.name, ([], []))[0]]
    return [n for n in weak if n in options.variables] if options.variables else weak


def estimate_refinement(
    session: Session,
    project: Project,
    options: RefineOptions,
    *,
    limits: ModelLimits,
    model_name: str,
    chunk_chars: int,
    overlap: int,
) -> dict[str, Any]:
    """What the refinement would cost, before it is asked for: a proposal call per weak variable (its prompt as the
    refiner would write it) and the held-out documents coded again, uncached, counted as a run's estimate counts
    them (pipeline/estimate.py). The split is the one the refinement will make (same seed)."""
    prepared = prepare(session, project, options)
    weak = weak_variables(prepared, options)
    by_name = {v.name: v for v in prepared.spec.variables}
    prompts = [refiner_prompt(prepared.spec, by_name[n], *prepared.examples[n]) for n in weak]
    proposal_input = sum(estimate_tokens(system + user, 0) for system, user in prompts)
    held_out = estimate_run(
        session,
        project,
        [uuid.UUID(d) for d in prepared.held_out] if weak else [],
        limits=limits,
        model_name=model_name,
        with_quotes=options.with_quotes,
        chunk_chars=chunk_chars,
        overlap=overlap,
        max_output_tokens=options.max_output_tokens,
        use_cache=False,
    )
    prices = Prices(limits.input_price_per_mtok, limits.output_price_per_mtok)
    calls = len(weak) + held_out["calls"]
    input_tokens = proposal_input + held_out["input_tokens"]
    output_tokens = len(weak) * PROPOSAL_TOKENS + held_out["output_tokens"]
    return {
        "weak_variables": weak,
        "written_from_documents": len(prepared.train),
        "held_out_documents": len(prepared.held_out),
        "calls": calls,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": round(prices.cost(input_tokens, output_tokens), 6),
        "cost_usd_max": round(
            held_out["cost_usd_max"] + prices.cost(proposal_input, len(weak) * options.max_output_tokens), 6
        ),
        "held_out": held_out,
        "model": model_name,
    }


@dataclass
class _Answered:
    chunk_index: int
    payload: dict[str, Any] | None


def _code_held_out(
    extractor: Extractor, spec: ProjectSpec, document: HeldOut, options: RefineOptions, tally: Tally
) -> Coded:
    """The document coded with `spec` as a run would code it, each value grounded in the text as a run grounds it."""
    answers = []
    for chunk in document.chunks:
        answer, calls = ask_chunk(
            extractor,
            spec,
            chunk,
            len(document.chunks),
            document.file_name,
            with_quotes=options.with_quotes,
            context_tokens=options.context_tokens,
            max_output_tokens=options.max_output_tokens,
        )
        tally.add(answer, calls)
        if answer.payload is None:
            raise LLMError(answer.error or "unparseable answer")
        answers.append(_Answered(chunk.index, answer.payload))
    spans = {c.index: c for c in document.chunks}
    aligner = Aligner(document.text)
    coded = Coded()
    for index, record in enumerate(records_of(spec, answers, aligner, spans)):
        _, picked, coerced = code_record(spec, record, options.uncertainty_threshold)
        for v in spec.variables:
            result = coerced[v.name]
            grounded = ground_value(aligner, v, result, picked[v.name], spans)
            where = list(grounded.offsets) if grounded.offsets else None
            coded.values[(index, v.name)] = {"value": result.value, "quote": grounded.quote, "offsets": where}
        if record.entity_text is not None:
            coded.entities[entity_key(record.entity_text)] = index
    return coded


@dataclass
class Coded:
    """A held-out document coded with the proposal: (record, variable) -> its value, quote and offsets; for
    entity-level projects, each entity's record by its name."""

    values: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    entities: dict[str, int] = field(default_factory=dict)

    def value_for(self, reviewed: Reviewed, entity: bool) -> dict[str, Any]:
        """What the proposal coded for the reviewed value: the same document's record, or the entity of the same
        name; nothing when the entity was not found again."""
        index = self.entities.get(entity_key(reviewed.entity_text or "")) if entity else 0
        found = self.values.get((index, reviewed.variable)) if index is not None else None
        return found or {"value": None, "quote": None, "offsets": None}


FIGURES = ("n", "accuracy", "accuracy_ci", "kappa", "kappa_ci", "alpha", "alpha_ci")


def _figures(pairs: list[tuple[Any, Any]], variable_type: str) -> dict[str, Any]:
    """With their 95% intervals (none under 5 items): a gain on a few held-out documents may be noise, and the
    offer says so."""
    figures = agreement(pairs, variable_type, with_intervals=True)
    correct = sum(1 for a, b in pairs if coded_alike(a, b, variable_type))
    return {"correct": correct, **{k: figures[k] for k in FIGURES}}


class Proposal(BaseModel):
    """A weak variable's proposed definition: what it changes, field by field, and how many wrong and right
    values it was written from."""

    variable: str
    reason: str
    changes: dict[str, dict[str, Any]]
    definition: dict[str, Any]
    written_from: dict[str, int]


class Skipped(BaseModel):
    variable: str
    reason: str


class HeldOutScore(BaseModel):
    """A variable's agreement with the reviewers on the held-out documents, before and after (`_figures`)."""

    variable: str
    refined: bool
    before: dict[str, Any]
    after: dict[str, Any]


class HeldOutItem(BaseModel):
    """One reviewed held-out value of a refined variable: the reviewer's, the run's, and the proposal's."""

    document_id: str
    file_name: str
    entity_index: int
    variable: str
    reviewer: Any
    before: Any
    after: Any
    after_quote: str | None
    after_offsets: list[int] | None


class CodingError(BaseModel):
    document_id: str
    error: str


class Refinement(BaseModel):
    """The refiner's offer, as the agent task stores it (`result`) and the API reads it back. `verdict`: `offered`,
    `rejected` or `nothing_to_refine`, `reason` saying why; `spec`, the proposed codebook's variables, once there
    are proposals."""

    run_id: str
    base_hash: str
    written_from_documents: list[str]
    held_out_documents: list[str]
    proposals: list[Proposal] = []
    skipped: list[Skipped] = []
    held_out: list[HeldOutScore] = []
    items: list[HeldOutItem] = []
    errors: list[CodingError] = []
    verdict: Literal["offered", "rejected", "nothing_to_refine"]
    reason: str
    spec: dict[str, Any] | None = None


def _used_values(prepared: Prepared) -> dict[str, set[str]]:
    """The values reviewers wrote for each variable: a proposal may not drop an allowed value they used."""
    used: dict[str, set[str]] = defaultdict(set)
    for r in prepared.reviewed:
        if isinstance(r.reviewer_value, str):
            used[r.variable].add(r.reviewer_value)
        elif isinstance(r.reviewer_value, list):
            used[r.variable] |= {str(x) for x in r.reviewer_value}
    return used


def _propose(
    prepared: Prepared, wanted: list[str], extractor: Extractor, options: RefineOptions, tally: Tally
) -> tuple[list[Proposal], list[Skipped], dict[str, VariableSpec]]:
    """A proposal for each weak variable, or why there is none; and the codebook's variables with the proposals."""
    spec = prepared.spec
    by_name = {v.name: v for v in spec.variables}

    def ask(name: str) -> Answer:
        wrong, right = prepared.examples[name]
        try:
            answer = extractor.ask(*refiner_prompt(spec, by_name[name], wrong, right), proposal_schema(by_name[name]))
        except LLMError as exc:  # this variable goes without a proposal; a fatal provider error stops the task
            return Answer(payload=None, error=exc.message)
        tally.add(answer)
        return answer

    # The variables' proposals are independent calls: asked at once, up to the option's concurrency.
    with ThreadPoolExecutor(max_workers=options.concurrency) as pool:
        answers = list(pool.map(ask, wanted))
    used = _used_values(prepared)
    proposals: list[Proposal] = []
    skipped: list[Skipped] = []
    refined = dict(by_name)
    for name, answer in zip(wanted, answers, strict=True):
        try:
            if answer.payload is None:
                raise ValueError(answer.error or "no answer")
            definition = proposed_definition(by_name[name], answer.payload, used[name])
        except ValueError as exc:
            skipped.append(Skipped(variable=name, reason=f"no usable proposal: {exc}"[:500]))
            continue
        diff = changes(by_name[name], definition)
        if not diff:
            skipped.append(Skipped(variable=name, reason="the proposal is the current definition"))
            continue
        refined[name] = definition
        wrong, right = prepared.examples[name]
        proposals.append(
            Proposal(
                variable=name,
                reason=str((answer.payload or {}).get("reason") or "")[:500],
                changes=diff,
                definition=definition.stored(),
                written_from={"wrong": len(wrong), "right": len(right)},
            )
        )
    return proposals, skipped, refined


def _score(
    prepared: Prepared, proposed: set[str], after_values: dict[str, Coded]
) -> tuple[list[HeldOutScore], list[HeldOutItem]]:
    """Each variable's agreement with the reviewers on the held-out documents coded again, before and after; and
    the refined variables' values there, side by side."""
    spec = prepared.spec
    entity = spec.per_entity
    before: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
    after: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
    items: list[HeldOutItem] = []
    for r in prepared.reviewed:
        if r.document_id not in after_values:
            continue  # not held out, or its coding failed: left out of both sides
        new = after_values[r.document_id].value_for(r, entity)
        before[r.variable].append((r.model_value, r.reviewer_value))
        after[r.variable].append((new["value"], r.reviewer_value))
        if r.variable in proposed and len(items) < MAX_ITEMS_SHOWN:
            items.append(
                HeldOutItem(
                    document_id=r.document_id,
                    file_name=prepared.documents[r.document_id].file_name,
                    entity_index=r.entity_index,
                    variable=r.variable,
                    reviewer=None if r.reviewer_value is UNKNOWN else r.reviewer_value,
                    before=r.model_value,
                    after=new["value"],
                    after_quote=new["quote"],
                    after_offsets=new["offsets"],
                )
            )
    scores = [
        HeldOutScore(
            variable=v.name,
            refined=v.name in proposed,
            before=_figures(before[v.name], v.type.value),
            after=_figures(after[v.name], v.type.value),
        )
        for v in spec.variables
        if before.get(v.name)
    ]
    return scores, items


def refine(
    session_scope: Callable[[], Any], project_id: uuid.UUID, extractor: Extractor, options: RefineOptions, tally: Tally
) -> Refinement:
    """The refiner's offer (see the module's docstring); its calls are added to `tally`. `session_scope()` opens a
    transaction of the project's workspace."""
    with session_scope() as session:
        project = session.get(Project, project_id)
        if project is None:
            raise NotFound("No such project.", code="project_not_found")
        prepared = prepare(session, project, options)
    wanted = weak_variables(prepared, options)
    proposals, skipped, refined = _propose(prepared, wanted, extractor, options, tally)
    result = Refinement(
        run_id=str(prepared.run_id),
        base_hash=prepared.base_hash,
        written_from_documents=prepared.train,
        held_out_documents=prepared.held_out,
        proposals=proposals,
        skipped=skipped,
        verdict="nothing_to_refine",
        reason="no value was wrong on the documents written from"
        if not wanted
        else "the model proposed nothing usable",
    )
    if not proposals:
        return result
    spec = prepared.spec
    proposed = {p.variable for p in proposals}
    proposed_spec = spec.model_copy(update={"variables": tuple(refined[v.name] for v in spec.variables)})

    def code(document: HeldOut) -> tuple[str, Coded | None, str | None]:
        try:
            return document.document_id, _code_held_out(extractor, proposed_spec, document, options, tally), None
        except LLMError as exc:
            return document.document_id, None, exc.message[:500]

    with ThreadPoolExecutor(max_workers=options.concurrency) as pool:
        coded = list(pool.map(code, prepared.documents.values()))
    result.errors = [CodingError(document_id=d, error=e) for d, _, e in coded if e]
    result.held_out, result.items = _score(prepared, proposed, {d: c for d, c, _ in coded if c is not None})
    if not result.held_out:
        result.verdict, result.reason = "rejected", "no held-out document could be coded again"
    else:
        result.verdict, result.reason = verdict([s.model_dump() for s in result.held_out], proposed)  # type: ignore[assignment]
    result.spec = {"variables": [v.stored() for v in proposed_spec.variables]}
    return result
