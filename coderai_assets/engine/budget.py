"""How much document text one call can carry: the model's context minus the prompt, the schema and the answer.

Token counts are estimated at 3.5 characters a token (English prose and JSON run at 3.5 to 4.5 with the tokenizers
in use), which errs on the side of smaller chunks.
"""

from __future__ import annotations

import json

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


def chunk_chars_for(spec: ProjectSpec, *, with_quotes: bool, context_tokens: int, max_output_tokens: int) -> int:
    """Chunk size for a project: what fits beside its whole codebook, or beside its largest variable group
    (document-level projects whose codebook is too large for one call)."""
    whole = compile_codebook(spec, with_quotes)
    size = chunk_chars(whole, len(spec.variables), context_tokens=context_tokens, max_output_tokens=max_output_tokens)
    if spec.extraction_unit != "document" or fits(
        whole, len(spec.variables), context_tokens=context_tokens, max_output_tokens=max_output_tokens
    ):
        return size
    groups = variable_groups(
        spec, with_quotes=with_quotes, context_tokens=context_tokens, max_output_tokens=max_output_tokens
    )
    if not groups:
        return size
    return min(
        chunk_chars(
            compile_codebook(spec.model_copy(update={"variables": g}), with_quotes),
            len(g),
            context_tokens=context_tokens,
            max_output_tokens=max_output_tokens,
        )
        for g in groups
    )
