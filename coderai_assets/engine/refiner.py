"""The refiner's rules, as pure functions: how reviewed documents are split into the ones a proposal is written
from and the ones it is scored on, the prompt that asks the model for a better definition of a weak variable, the
answer's schema, how a proposal becomes a definition, and the verdict on the held-out scores.

A proposal is only offered when it does better on documents it was not written from: a definition that only fits
the examples it saw is rejected (pipeline/refine.py scores it)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from coderai_assets.engine.agreement import UNKNOWN
from coderai_assets.engine.codebook import ProjectSpec
from coderai_assets.engine.variables import VariableSpec

PROPOSE_TOOL = "propose_definition"
# Bounds that keep a small model from writing until its answer budget is spent.
MAX_DESCRIPTION = 800
MAX_EXAMPLES = 5
MAX_SHOWN = 12  # wrong and right examples put before the model, each


@dataclass(frozen=True)
class Example:
    """One reviewed value of a document the proposal is written from."""

    file_name: str
    model_value: Any
    reviewer_value: Any  # UNKNOWN: the reviewer said wrong without saying what
    quote: str | None
    note: str
    context: str  # the text around the model's quote, or around the reviewer's value


def split_documents(document_ids: list[str], held_out_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(written from, held out): a seeded shuffle of the documents in the order given (the refiner gives them by
    file name, so the same files split alike in another project), at least one document on each side."""
    if len(document_ids) < 2:
        raise ValueError("at least two reviewed documents are needed: one to write from, one to score on")
    ordered = list(document_ids)
    random.Random(seed).shuffle(ordered)
    held = min(len(ordered) - 1, max(1, round(len(ordered) * held_out_fraction)))
    return sorted(ordered[held:]), sorted(ordered[:held])


def proposal_schema(v: VariableSpec) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "description": {
            "type": "string",
            "maxLength": MAX_DESCRIPTION,
            "description": "the new definition: what to code, what counts and what does not, how to decide",
        },
        "examples": {
            "type": "array",
            "maxItems": MAX_EXAMPLES,
            "items": {"type": "string", "maxLength": 200},
            "description": "short worked examples, each: words of a text -> the value to code",
        },
        "reason": {
            "type": "string",
            "maxLength": 500,
            "description": "why the coder went wrong and how the new definition prevents it",
        },
    }
    if v.type in ("category", "list"):
        properties["allowed_values"] = {
            "type": "array",
            "items": {"type": "string", "maxLength": 100},
            "maxItems": 50,
            "description": "the allowed values; keep every value the reviewers used",
        }
    return {
        "title": PROPOSE_TOOL,
        "description": "Propose a better definition of the variable.",
        "type": "object",
        "properties": properties,
        "required": ["description", "examples", "reason"],
    }


def _shown(value: Any) -> str:
    if value is UNKNOWN:
        return "(not this value; the reviewer did not say what)"
    return json.dumps(value, ensure_ascii=False, default=str)


def refiner_prompt(spec: ProjectSpec, v: VariableSpec, wrong: list[Example], right: list[Example]) -> tuple[str, str]:
    """(system, user): the variable as coders read it now, and where the model's values were wrong."""
    system = (
        "You improve the codebook of a content analysis. A coder (a language model) coded documents with the "
        "definition below; reviewers checked its values. Write a clearer definition of this one variable so "
        "that a coder gets the wrong cases right and keeps the right ones right. State the rule, not the cases: "
        "the new definition will be tested on other documents.\n"
        f"Project: {spec.name}\nDomain: {spec.domain_description}\n"
        f"Answer by calling {PROPOSE_TOOL}."
    )
    current = {
        "name": v.name,
        "type": v.type.value,
        "description": v.description,
        "allowed_values": v.allowed_values,
        "examples": v.examples,
    }
    lines = [f"Variable to improve: {v.name}", "Current definition:", json.dumps(current, ensure_ascii=False), ""]
    lines.append("Values the reviewers marked wrong:")
    for e in wrong[:MAX_SHOWN]:
        lines.append(
            f"- {e.file_name}: coded {_shown(e.model_value)}, should be {_shown(e.reviewer_value)}"
            + (f"; the reviewer's note: {e.note}" if e.note else "")
            + f"\n  Text: ...{e.context}..."
        )
    if right:
        lines.append("\nValues the reviewers marked correct:")
        lines += [f"- {e.file_name}: {_shown(e.model_value)}" for e in right[:MAX_SHOWN]]
    return system, "\n".join(lines)


def proposed_definition(v: VariableSpec, payload: dict[str, Any], used_values: set[str]) -> VariableSpec:
    """The variable with the proposal's description, examples and (for categories and lists) allowed values.
    Allowed values that drop one the reviewers used are not taken: the reviewers' codes must stay codable.
    Raises ValueError when the proposal is not a valid definition."""
    description = payload.get("description")
    if not isinstance(description, str) or not description.strip():
        raise ValueError("the proposal has no description")
    description = description.strip()
    written = payload.get("examples")
    examples = (
        [e.strip()[:500] for e in written if isinstance(e, str) and e.strip()] if isinstance(written, list) else []
    )
    examples = examples[:MAX_EXAMPLES]
    update: dict[str, Any] = {"description": description[:MAX_DESCRIPTION], "examples": examples or None}
    proposed = payload.get("allowed_values")
    if v.type in ("category", "list") and isinstance(proposed, list):
        values = list(dict.fromkeys(p.strip() for p in proposed if isinstance(p, str) and p.strip()))
        if values and used_values <= set(values):
            update["allowed_values"] = values
    return VariableSpec.model_validate({**v.model_dump(), **update})


def changes(before: VariableSpec, after: VariableSpec) -> dict[str, dict[str, Any]]:
    """Field by field, what a proposal changes: the readable diff the offer shows."""
    was, now = before.stored(), after.stored()
    return {
        key: {"from": was.get(key), "to": now.get(key)}
        for key in sorted(set(was) | set(now))
        if was.get(key) != now.get(key)
    }


def verdict(scores: list[dict[str, Any]], proposed: set[str]) -> tuple[str, str]:
    """("offered" or "rejected", why), from the held-out figures per variable: offered when a refined variable
    codes more held-out values right and no variable codes fewer."""
    worse = [s["variable"] for s in scores if s["after"]["correct"] < s["before"]["correct"]]
    better = [
        s["variable"] for s in scores if s["variable"] in proposed and s["after"]["correct"] > s["before"]["correct"]
    ]
    if worse:
        return "rejected", f"on the held-out documents it codes fewer values right for: {', '.join(worse)}"
    if not better:
        return "rejected", "on the held-out documents it codes no more values right than the current definition"
    return "offered", f"on the held-out documents it codes more values right for: {', '.join(better)}"
