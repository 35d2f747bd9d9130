"""A fake chat model for tests only: answers the structured-output tool call from canned answers per file."""

from __future__ import annotations

import os
import time
from typing import Any

from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from coderai_assets.engine.codebook import TOOL_NAME
from coderai_assets.engine.llm import Extractor


class ToolCallingFakeModel(GenericFakeChatModel):
    """LangChain's fake models refuse bind_tools (docs/decisions.md: model calls); this one accepts it and answers
    the tool call with the first of `answers` whose key occurs in the prompt (or `answers["*"]`), recording every
    prompt."""

    answers: dict[str, Any] = {}
    prompts: list[str] = []
    tool_name: str = TOOL_NAME

    def bind_tools(self, tools, **kwargs):  # type: ignore[override]
        # The answer calls the tool it was given (the extractor's, the refiner's or the co-pilot's). The same tool
        # keeps this model (tests count on its attributes); another gets a copy, which shares `prompts`.
        from langchain_core.utils.function_calling import convert_to_openai_tool

        name = convert_to_openai_tool(tools[0])["function"]["name"]
        return self if name == self.tool_name else self.model_copy(update={"tool_name": name})

    def _args(self, messages: list[BaseMessage], prompt: str) -> dict[str, Any]:
        """The tool call's arguments: the first answer whose key the prompt holds."""
        return next((a for key, a in self.answers.items() if key in prompt), self.answers.get("*", {}))

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs) -> ChatResult:
        prompt = "\n".join(str(m.content) for m in messages)
        self.prompts.append(prompt)
        message = AIMessage(
            content="",
            tool_calls=[
                {
                    "name": self.tool_name,
                    "args": self._args(messages, prompt),
                    "id": f"call_{len(self.prompts)}",
                    "type": "tool_call",
                }
            ],
            usage_metadata={
                "input_tokens": len(prompt) // 4,
                "output_tokens": 20,
                "total_tokens": len(prompt) // 4 + 20,
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


# The demo corpus's facts, as a perfect model would code them, keyed by a phrase of each report.
PROTEST_ANSWERS = {
    "LYON, 12 March 2024": {
        "city": "Lyon",
        "event_date": "12 March 2024",
        "participants": 3000,
        "protest_type": "march",
        "violence": False,
        "quotes": {"city": "Lyon", "participants": "About 3,000 nurses"},
    },
    "PORTO, 3 June 2023": {
        "city": "Porto",
        "event_date": "2023-06-03",
        "participants": "some 450",
        "protest_type": "Strike",
        "violence": True,
        "quotes": {"violence": "two workers were injured"},
        "confidence": {"violence": 0.8, "participants": 0.95},
    },
    "Gdansk Technical": {
        "city": "Gdansk",
        "event_date": "21 November 2022",
        "participants": 200,
        "protest_type": "sit-in",
        "violence": False,
    },
    "TAMPERE, 8 February": {
        "city": "Tampere",
        "event_date": "8 February 2024",
        "participants": 1200,
        "protest_type": "rally",
        "violence": "no",
    },
}


class LoggedSlowModel(ToolCallingFakeModel):
    """Takes `delay` seconds a call and appends a line per call to `log` (a file: run workers are processes)."""

    delay: float = 0.0
    log: str = ""

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs) -> ChatResult:
        time.sleep(self.delay)
        result = super()._generate(messages, stop, run_manager, **kwargs)
        if self.log:
            with open(self.log, "a") as log:
                log.write(self._log_line() + "\n")
        return result

    def _log_line(self) -> str:
        return str(os.getpid())


def protest_model(settings=None) -> ToolCallingFakeModel:
    """Factory for CODERAI_LLM_FACTORY=tests.fakes:protest_model (used by the end-to-end test's run workers).
    CODERAI_TEST_MODEL_DELAY (seconds a call) and CODERAI_TEST_CALL_LOG (a file, one line per call) let a test
    slow it down and count its calls across processes."""
    return LoggedSlowModel(
        messages=iter([]),
        answers=PROTEST_ANSWERS,
        delay=float(os.environ.get("CODERAI_TEST_MODEL_DELAY", "0")),
        log=os.environ.get("CODERAI_TEST_CALL_LOG", ""),
    )


# The refiner's test model: it codes a report's city as its country until the codebook says the city is the one
# named in the dateline, and it proposes exactly that definition when asked to refine `city`.
COUNTRIES = {"Lyon": "France", "Porto": "Portugal", "Gdansk": "Poland", "Tampere": "Finland"}
DATELINE_PROPOSAL = {
    "description": "The city named in the dateline at the start of the report, never the country",
    "examples": ["LYON, 12 March 2024 -> Lyon"],
    "reason": "The coder gave the country where the report names a city.",
}


class DatelineModel(LoggedSlowModel):
    """Answers as ToolCallingFakeModel, but: the extractor's `city` is the country unless the system prompt
    mentions the dateline; the refiner's tool gets DATELINE_PROPOSAL; the co-pilot's tool gets `suggestions`.
    With `log`, each call writes `<pid> <tool> <the variables its schema asks>` (run workers are processes)."""

    asked: list[str] = []
    suggestions: dict[str, Any] = {}

    def bind_tools(self, tools, **kwargs):  # type: ignore[override]
        from langchain_core.utils.function_calling import convert_to_openai_tool

        function = convert_to_openai_tool(tools[0])["function"]
        asked = sorted(k for k in function["parameters"].get("properties", {}) if k not in ("quotes", "confidence"))
        return self.model_copy(update={"tool_name": function["name"], "asked": asked})

    def _args(self, messages: list[BaseMessage], prompt: str) -> dict[str, Any]:
        if self.tool_name == "propose_definition":
            return dict(DATELINE_PROPOSAL)
        if self.tool_name == "suggest_variables":
            return dict(self.suggestions)
        # The document is the user message (the codebook's examples may quote a report too).
        text = str(messages[-1].content)
        args = dict(next((a for key, a in self.answers.items() if key in text), {}))
        if "city" in args and "dateline" not in str(messages[0].content):
            args["city"] = COUNTRIES[args["city"]]
            args["quotes"] = {k: v for k, v in (args.get("quotes") or {}).items() if k != "city"}
        return {k: v for k, v in args.items() if k in self.asked or k in ("quotes", "confidence")}

    def _log_line(self) -> str:
        return f"{os.getpid()} {self.tool_name} {','.join(self.asked)}"


COPILOT_SUGGESTIONS = {
    "variables": [
        {
            "name": "Strike Size",
            "type": "integer",
            "description": "How many people took part",
            "reason": "Size is the main outcome of protest event analysis.",
            "example_quote": "About 3,000 nurses",
        },
        {
            "name": "sector",
            "type": "category",
            "description": "The protesters' sector",
            "reason": "Compare sectors.",
            "example_quote": "a quote no document has",
        },
        {"name": "", "type": "text", "description": "nameless", "reason": "", "example_quote": ""},
    ]
}


def dateline_model(settings=None) -> DatelineModel:
    """Factory for CODERAI_LLM_FACTORY=tests.fakes:dateline_model (the research loop's end-to-end test)."""
    return DatelineModel(
        messages=iter([]),
        answers=PROTEST_ANSWERS,
        suggestions=COPILOT_SUGGESTIONS,
        delay=float(os.environ.get("CODERAI_TEST_MODEL_DELAY", "0")),
        log=os.environ.get("CODERAI_TEST_CALL_LOG", ""),
    )


class AnsweringExtractor(Extractor):
    """Base of the test doubles that answer a codebook without a chat model. Bound to a workspace it stays the
    same object, so what it counts is counted where the test reads it."""

    def bound_to(self, workspace: str, gate=None) -> Extractor:
        return self
