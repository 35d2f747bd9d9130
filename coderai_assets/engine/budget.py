"""How much document text one call can carry: the model's context minus the prompt, the schema and the answer.

Token counts are estimated at 3.5 characters a token (English prose and JSON run at 3.5 to 4.5 with the tokenizers
in use), which errs on the side of smaller chunks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from coderai_assets.engine.codebook import Codebook, ProjectSpec, compile_codebook
from coderai_assets.engine.variables import VariableSpec

CHARS_PER_TOKEN = 3.5
ANSWER_TOKENS_PER_VARIABLE = 60  # a value and its quote; measured all-null answers need 20 to 50
MIN_CHUNK_CHARS = 1000


def estimate_tokens(text: str) -> int:
    return int(len(text) / CHARS_PER_TOKEN) + 1


def prompt_tokens(codebook: Codebook) -> int:
    return estimate_tokens(codebook.system_prompt) + estimate_tokens(json.dumps(codebook.json_schema))


def answer_tokens(n_variables: int, max_output_tokens: int) -> int:
    return min(max_output_tokens, 50 + ANSWER_TOKENS_PER_VARIABLE * n_variables)


def chunk_chars(codebook: Codebook, n_variables: int, *, context_tokens: int, max_output_tokens: int) -> int:
    """Characters of document text per chunk so that prompt + chunk + answer fit the context window."""
    free = context_tokens - prompt_tokens(codebook) - answer_tokens(n_variables, max_output_tokens)
    return max(MIN_CHUNK_CHARS, int(free * CHARS_PER_TOKEN))


def fits(codebook: Codebook, n_variables: int, *, context_tokens: int, max_output_tokens: int) -> bool:
    """Whether the prompt and answer leave room for at least a minimal chunk of text."""
    needed = prompt_tokens(codebook) + answer_tokens(n_variables, max_output_tokens)
    return needed + estimate_tokens("x" * MIN_CHUNK_CHARS) <= context_tokens


def variable_groups(
    spec: ProjectSpec, *, with_quotes: bool, context_tokens: int, max_output_tokens: int, text_share: float = 0.5
) -> list[tuple[VariableSpec, ...]]:
    """The variables in as few groups as keep each call's prompt and answer within (1 - text_share) of the
    context, so that every call still carries a useful amount of text. One group when the whole codebook fits;
    an empty list when even one variable alone does not fit."""
    limit = int(context_tokens * (1 - text_share))

    def cost(variables: tuple[VariableSpec, ...]) -> int:
        codebook = compile_codebook(spec.model_copy(update={"variables": variables}), with_quotes)
        return prompt_tokens(codebook) + answer_tokens(len(variables), max_output_tokens)

    if cost(spec.variables) <= limit:
        return [spec.variables]
    groups: list[tuple[VariableSpec, ...]] = []
    current: tuple[VariableSpec, ...] = ()
    for variable in spec.variables:
        candidate = (*current, variable)
        if cost(candidate) <= limit:
            current = candidate
            continue
        if not current:
            return []  # this variable alone is too large for the context
        groups.append(current)
        current = (variable,)
        if cost(current) > limit:
            return []
    if current:
        groups.append(current)
    return groups


@dataclass(frozen=True)
class CallPlan:
    """How every chunk of a project is asked, decided in one place for the run (pipeline/extract.py), the refiner's
    trial of a proposal and the estimate: with `entities`, one call lists the chunk's entities and one call per
    entity codes it (`books` then holds the whole codebook, which sizes those calls); else one call per codebook in
    `books`, the whole codebook or, when it leaves no room for text, its variable groups."""

    books: tuple[Codebook, ...]
    sizes: tuple[int, ...]  # variables each book asks
    entities: bool = False

    @property
    def calls_per_chunk(self) -> int:
        """The estimate's count: entity-level chunks are counted with one entity each."""
        return 2 if self.entities else len(self.books)

    def chunk_chars(self, *, context_tokens: int, max_output_tokens: int) -> int:
        """Characters of text a chunk may carry so that its largest call fits the context."""
        return min(
            chunk_chars(book, n, context_tokens=context_tokens, max_output_tokens=max_output_tokens)
            for book, n in zip(self.books, self.sizes, strict=True)
        )


def call_plan(
    spec: ProjectSpec, *, with_quotes: bool, context_tokens: int | None, max_output_tokens: int
) -> CallPlan | None:
    """The calls for a chunk of `spec` (see CallPlan); None when the codebook leaves no room for text in the
    model's context and cannot be split (an entity-level codebook, or a single variable too large alone).
    Without a known context the whole codebook is one call."""
    whole = compile_codebook(spec, with_quotes)
    n = len(spec.variables)
    entities = spec.per_entity
    if not context_tokens or fits(whole, n, context_tokens=context_tokens, max_output_tokens=max_output_tokens):
        return CallPlan((whole,), (n,), entities)
    if entities:
        return None
    groups = variable_groups(
        spec, with_quotes=with_quotes, context_tokens=context_tokens, max_output_tokens=max_output_tokens
    )
    if not groups:
        return None
    books = tuple(compile_codebook(spec.model_copy(update={"variables": g}), with_quotes) for g in groups)
    return CallPlan(books, tuple(len(g) for g in groups))


def chunk_chars_for(spec: ProjectSpec, *, with_quotes: bool, context_tokens: int, max_output_tokens: int) -> int:
    """Chunk size for a project: what fits beside its whole codebook, or beside its largest variable group
    (document-level projects whose codebook is too large for one call)."""
    plan = call_plan(spec, with_quotes=with_quotes, context_tokens=context_tokens, max_output_tokens=max_output_tokens)
    if plan is None:  # the document fails with prompt_too_large; the size is the whole codebook's, as said there
        return chunk_chars(
            compile_codebook(spec, with_quotes),
            len(spec.variables),
            context_tokens=context_tokens,
            max_output_tokens=max_output_tokens,
        )
    return plan.chunk_chars(context_tokens=context_tokens, max_output_tokens=max_output_tokens)
