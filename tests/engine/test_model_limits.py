"""The context window and prices follow the model: a known table, the server's answer, the settings."""

from __future__ import annotations

import logging

from pydantic import SecretStr

from coderai_assets.engine.model_limits import FALLBACK_CONTEXT, resolve_limits


def _settings(settings, **changes):
    return settings.model_copy(
        update={"llm_context_tokens": None, "llm_input_price_per_mtok": None, "llm_output_price_per_mtok": None}
        | changes
    )


def test_an_openai_key_and_nothing_else_gets_the_models_context_and_prices(settings):
    openai = _settings(settings, llm_provider="openai", llm_api_key=SecretStr("sk-x"), llm_model="")
    limits = resolve_limits(openai)
    assert (limits.context_tokens, limits.source) == (128_000, "table")  # gpt-4o-mini, not 4,096
    assert (limits.input_price_per_mtok, limits.output_price_per_mtok) == (0.15, 0.60)
    dated = resolve_limits(openai.model_copy(update={"llm_model": "gpt-4.1-mini-2025-04-14"}))
    assert dated.context_tokens == 1_047_576  # the longest matching prefix, not gpt-4.1's


def test_settings_override_the_table(settings):
    limits = resolve_limits(
        _settings(
            settings,
            llm_provider="openai",
            llm_api_key=SecretStr("sk-x"),
            llm_context_tokens=32_000,
            llm_input_price_per_mtok=1.0,
        )
    )
    assert (limits.context_tokens, limits.source, limits.input_price_per_mtok) == (32_000, "settings", 1.0)


def test_an_unknown_model_asks_its_server_then_falls_back_with_a_warning(settings, caplog):
    compatible = _settings(
        settings, llm_provider="openai_compatible", llm_base_url="http://127.0.0.1:9/v1", llm_model="qwen-local"
    )
    asked = resolve_limits(compatible, ask_server=lambda s, name: 32_768 if name == "qwen-local" else None)
    assert (asked.context_tokens, asked.source, asked.input_price_per_mtok) == (32_768, "server", 0.0)

    def unreachable(s, name):
        raise OSError("connection refused")

    with caplog.at_level(logging.WARNING):
        fallback = resolve_limits(compatible, ask_server=unreachable)
    assert (fallback.context_tokens, fallback.source) == (FALLBACK_CONTEXT, "fallback")
    assert "CODERAI_LLM_CONTEXT_TOKENS" in caplog.text


def test_the_server_answer_is_read_from_the_usual_keys():
    from coderai_assets.engine.model_limits import _server_context

    assert _server_context({"id": "m", "max_model_len": 8192}) == 8192  # vLLM
    assert _server_context({"id": "m", "context_length": 131072}) == 131072  # OpenRouter, LM Studio
    assert _server_context({"id": "m", "meta": {"n_ctx_train": 8192}}) == 8192  # llama.cpp
    assert _server_context({"id": "m"}) is None
