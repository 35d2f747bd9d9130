"""A fake chat model for tests only: answers the structured-output tool call from canned answers per file."""

from __future__ import annotations

import re
from typing import Any

from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from coderai_assets.codebook import TOOL_NAME


class ToolCallingFakeModel(GenericFakeChatModel):
    """LangChain's fake models refuse bind_tools (DESIGN.md 7); this one accepts it and answers the tool call
    with `answers[file_name]`, the file name read from the prompt, recording every prompt it saw."""

    answers: dict[str, Any] = {}
    prompts: list[str] = []

    def bind_tools(self, tools, **kwargs):  # type: ignore[override]
        return self

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs) -> ChatResult:
        prompt = "\n".join(str(m.content) for m in messages)
        self.prompts.append(prompt)
        match = re.search(r"Document: (\S+)", prompt)
        args = self.answers.get(match.group(1) if match else "", self.answers.get("*", {}))
        message = AIMessage(
            content="",
            tool_calls=[{"name": TOOL_NAME, "args": args, "id": f"call_{len(self.prompts)}", "type": "tool_call"}],
            usage_metadata={"input_tokens": len(prompt) // 4, "output_tokens": 20, "total_tokens": len(prompt) // 4 + 20},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


# The demo corpus's facts, as a perfect model would code them (file names as the demo writes them).
PROTEST_ANSWERS = {
    "lyon_nurses.txt": {"city": "Lyon", "event_date": "12 March 2024", "participants": 3000,
                        "protest_type": "march", "violence": False,
                        "quotes": {"city": "Lyon", "participants": "About 3,000 nurses"}},
    "porto_dockers.html": {"city": "Porto", "event_date": "2023-06-03", "participants": "some 450",
                           "protest_type": "Strike", "violence": True, "quotes": {"violence": "two workers were injured"}},
    "gdansk_students.pdf": {"city": "Gdansk", "event_date": "21 November 2022", "participants": 200,
                            "protest_type": "sit-in", "violence": False},
    "tampere_farmers.docx": {"city": "Tampere", "event_date": "8 February 2024", "participants": 1200,
                             "protest_type": "rally", "violence": "no"},
}


def protest_model(settings=None) -> ToolCallingFakeModel:
    """Factory for CODERAI_LLM_FACTORY=tests.fakes:protest_model (used by the end-to-end test's run workers)."""
    return ToolCallingFakeModel(messages=iter([]), answers=PROTEST_ANSWERS)
