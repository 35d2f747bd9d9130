"""How much document text one call can carry: the model's context minus the prompt, the schema and the answer.

Token counts are estimated at 3.5 characters a token (English prose and JSON run at 3.5 to 4.5 with the tokenizers
in use), which errs on the side of smaller chunks.
"""

from __future__ import annotations

import json

from coderai_assets.codebook import Codebook

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
