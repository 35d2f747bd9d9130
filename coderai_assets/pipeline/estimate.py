"""What a run would cost before it is started: documents, chunks, calls, tokens and USD, from the codebook, the
model's context and prices, and the parsed text (or, for a document not parsed yet, its file size), with the
chunks whose answer the cache already holds taken out.

An estimate, said as one: token counts are about 4 characters a token; an answer is counted at the mean of the
project's earlier answers (a sample run's, say) when there are some, else at a typical length per variable, and
`cost_usd_max` counts every answer at its whole budget, which no run passes; an entity-level project is counted
with one entity per chunk; text not parsed yet is guessed from the file's size and format."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence

from sqlalchemy.orm import Session

from coderai_assets.domain.specs import project_spec
from coderai_assets.engine import budget
from coderai_assets.engine.codebook import compile_codebook
from coderai_assets.engine.model_limits import ModelLimits
from coderai_assets.engine.spending import Prices
from coderai_assets.storage.models import Document, Project
from coderai_assets.storage.repositories import answers, documents

# A typical answer when the project has none yet: tokens per variable (a value, its quote and confidence, or the
# value alone), plus the JSON around them.
TYPICAL_ANSWER_TOKENS = {True: 15, False: 6}
ANSWER_OVERHEAD_TOKENS = 20
# Earlier answers needed before their mean stands for the next ones.
MIN_OBSERVED = 5

# Characters of text per byte of file, by format, for documents not parsed yet (typical of the demo and the corpus:
# markup and binary containers carry much less text than their size).
TEXT_PER_BYTE = {"txt": 1.0, "md": 1.0, "csv": 1.0, "html": 0.3, "htm": 0.3, "docx": 0.3, "pdf": 0.1}


def _guessed_chars(document: Document) -> int:
    kind = (document.format or document.file_name.rsplit(".", 1)[-1]).lower()
    return int(document.size_bytes * TEXT_PER_BYTE.get(kind, 0.3))


def _chunks(chars: int, size: int, overlap: int) -> int:
    if chars <= 0:
        return 0
    step = max(1, size - min(overlap, size // 2))
    return max(1, math.ceil(max(0, chars - size) / step) + 1)


def estimate_run(
    session: Session,
    project: Project,
    document_ids: Sequence[uuid.UUID],
    *,
    limits: ModelLimits,
    model_name: str,
    with_quotes: bool,
    chunk_chars: int,
    overlap: int,
    max_output_tokens: int,
    use_cache: bool = True,
) -> dict:
    """`use_cache=False`: every chunk asked again (a codebook the cache has never seen, such as a refinement's)."""
    spec = project_spec(session, project)
    codebook = compile_codebook(spec, with_quotes)
    n_variables = len(spec.variables)
    size = chunk_chars or budget.chunk_chars_for(
        spec, with_quotes=with_quotes, context_tokens=limits.context_tokens, max_output_tokens=max_output_tokens
    )
    # The calls a run will make for each chunk (pipeline/extract.py asks by the same plan); a codebook that leaves
    # no room for text is counted as one call, though its documents will fail before any call.
    plan = budget.call_plan(
        spec, with_quotes=with_quotes, context_tokens=limits.context_tokens, max_output_tokens=max_output_tokens
    ) or budget.CallPlan((codebook,), (n_variables,), spec.per_entity)
    calls_per_chunk = plan.calls_per_chunk
    groups = len(plan.books)
    prompt = round(sum(budget.prompt_tokens(book) for book in plan.books) / groups)
    per_call = max(1, n_variables // groups)
    answer_cap = budget.answer_tokens(per_call, max_output_tokens)
    observed_calls, observed_output = answers.observed_output(session, project, model_name)
    if observed_calls >= MIN_OBSERVED:
        answer, basis = min(answer_cap, round(observed_output / observed_calls)), "observed"
    else:
        typical = ANSWER_OVERHEAD_TOKENS + TYPICAL_ANSWER_TOKENS[with_quotes] * per_call
        answer, basis = min(answer_cap, typical), "typical"
    # The chunks the cache answers: those of the same model and unchanged codebook (the same prompt version).
    version = answers.version_for_hash(session, project, codebook.variables_hash)
    answered: dict[uuid.UUID, int] = {}
    if use_cache and version is not None and document_ids:
        answered = answers.answered_chunks(session, version, model_name, list(document_ids))
    rows = documents.with_text_lengths(session, list(document_ids))
    # A parsed document's chunks as stored (the next run parses it again the same way unless the chunk size
    # changed).
    stored = documents.chunk_counts(session, list(document_ids))
    chunks = cached = calls = text_tokens = parsed = 0
    for document, length in rows:
        chars = length if length is not None else _guessed_chars(document)
        parsed += length is not None
        n = stored.get(document.id) or _chunks(chars, size, overlap)
        hit = min(n, answered.get(document.id, 0))
        chunks += n
        cached += hit
        calls += (n - hit) * calls_per_chunk
        text_tokens += math.ceil(chars / 4 * (n - hit) / n) if n else 0
    input_tokens = calls * prompt + text_tokens * (calls_per_chunk if plan.entities else 1)
    output_tokens = calls * answer
    prices = Prices(limits.input_price_per_mtok, limits.output_price_per_mtok)
    cost_max = prices.cost(input_tokens, calls * answer_cap)
    return {
        "documents": len(rows),
        "documents_parsed": parsed,
        "chunks": chunks,
        "cached_chunks": cached,
        "calls": calls,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": round(prices.cost(input_tokens, output_tokens), 6),
        "cost_usd_max": round(cost_max, 6),
        # Where the answer length comes from: the project's earlier answers, or a typical length per variable.
        "output_basis": basis,
        "model": model_name,
        "context_tokens": limits.context_tokens,
        "chunk_chars": size,
        "input_price_per_mtok": limits.input_price_per_mtok,
        "output_price_per_mtok": limits.output_price_per_mtok,
    }
