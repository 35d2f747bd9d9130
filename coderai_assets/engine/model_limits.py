"""What a model can take and what it costs: its context window and its prices per million tokens. The context
sizes chunks and variable groups, so it must follow the model: a 4,096-token default for every provider made a
user with an OpenAI key and no other setting pay 79 calls and 5.7 M prompt tokens for 49 contracts, not 49 and
0.87 M.

Settings win (`CODERAI_LLM_CONTEXT_TOKENS`, `CODERAI_LLM_INPUT_PRICE_PER_MTOK`, `..._OUTPUT_...`); then this table
(the longest name prefix that starts the model's name); then, for an OpenAI-compatible server, what its
`/v1/models` reports; else 4,096 tokens, with a warning."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from coderai_assets.settings import Settings

log = logging.getLogger(__name__)

LOCAL_MODEL_NAME = "SmolLM2-135M-Instruct-Q4_1"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
FALLBACK_CONTEXT = 4096

# name prefix: (context tokens, USD per million input tokens, per million output tokens), as published by the
# providers in 2025; prices change, so a deployment that bills should set its own.
KNOWN_MODELS: dict[str, tuple[int, float, float]] = {
    "gpt-4.1-nano": (1_047_576, 0.10, 0.40),
    "gpt-4.1-mini": (1_047_576, 0.40, 1.60),
    "gpt-4.1": (1_047_576, 2.00, 8.00),
    "gpt-4o-mini": (128_000, 0.15, 0.60),
    "gpt-4o": (128_000, 2.50, 10.00),
    "gpt-4-turbo": (128_000, 10.00, 30.00),
    "gpt-3.5-turbo": (16_385, 0.50, 1.50),
    "o4-mini": (200_000, 1.10, 4.40),
    "o3-mini": (200_000, 1.10, 4.40),
    "o3": (200_000, 2.00, 8.00),
    # The embedded model as `coderai local-llm` serves it (its n_ctx): a 135M model codes worse on longer input.
    "SmolLM2": (4096, 0.0, 0.0),
}
# Keys OpenAI-compatible servers use for a model's context in /v1/models (vLLM, OpenRouter, LM Studio, others).
_SERVER_CONTEXT_KEYS = ("max_model_len", "context_length", "context_window", "max_context_length", "n_ctx")


@dataclass(frozen=True)
class ModelLimits:
    context_tokens: int
    input_price_per_mtok: float
    output_price_per_mtok: float
    source: str  # where the context came from: settings, table, server or fallback


def model_name(settings: Settings) -> str:
    """The model the configured provider calls."""
    if settings.llm_provider == "local":
        return settings.llm_model or LOCAL_MODEL_NAME
    if settings.llm_provider == "openai":
        return settings.llm_model or DEFAULT_OPENAI_MODEL
    return settings.llm_model


def model_label(settings: Settings) -> str:
    """The name recorded with every answer and value the configured model produces (runs, values, the CSV's
    `model` column), and so what the cache and the estimates match earlier answers on: the provider and the
    model, never a server's address (shown to every tenant, and a URL can carry credentials)."""
    if settings.llm_provider == "factory":
        return settings.llm_model or f"factory/{settings.llm_factory.rpartition(':')[2]}"
    return f"{settings.llm_provider}/{model_name(settings)}"


def known(name: str) -> tuple[int, float, float] | None:
    matches = [prefix for prefix in KNOWN_MODELS if name.lower().startswith(prefix.lower())]
    return KNOWN_MODELS[max(matches, key=len)] if matches else None


def _server_context(entry: dict[str, Any]) -> int | None:
    for source in (entry, entry.get("meta") or {}, entry.get("top_provider") or {}):
        for key in (*_SERVER_CONTEXT_KEYS, "n_ctx_train"):
            value = source.get(key) if isinstance(source, dict) else None
            if isinstance(value, int) and value > 0:
                return value
    return None


def _ask_server(settings: Settings, name: str) -> int | None:
    import httpx

    key = settings.llm_api_key.get_secret_value()
    response = httpx.get(
        settings.llm_base_url.rstrip("/") + "/models",
        headers={"Authorization": f"Bearer {key}"} if key else {},
        timeout=5,
    )
    response.raise_for_status()
    for entry in response.json().get("data", []):
        if isinstance(entry, dict) and entry.get("id") == name:
            return _server_context(entry)
    return None


def resolve_limits(settings: Settings, ask_server: Callable[[Settings, str], int | None] = _ask_server) -> ModelLimits:
    name = model_name(settings)
    table = known(name)
    context, source = settings.llm_context_tokens, "settings"
    if context is None and table is not None:
        context, source = table[0], "table"
    if context is None and settings.llm_provider == "openai_compatible":
        try:
            context, source = ask_server(settings, name), "server"
        except Exception as exc:  # any failure of the server's answer falls back, with a warning
            log.warning("could not read the context of %s from %s/models: %s", name, settings.llm_base_url, exc)
    if context is None:
        log.warning(
            "the context window of %r is unknown: %d tokens assumed; set CODERAI_LLM_CONTEXT_TOKENS",
            name,
            FALLBACK_CONTEXT,
        )
        context, source = FALLBACK_CONTEXT, "fallback"
    input_price = settings.llm_input_price_per_mtok
    output_price = settings.llm_output_price_per_mtok
    return ModelLimits(
        context_tokens=context,
        input_price_per_mtok=input_price if input_price is not None else (table[1] if table else 0.0),
        output_price_per_mtok=output_price if output_price is not None else (table[2] if table else 0.0),
        source=source,
    )
