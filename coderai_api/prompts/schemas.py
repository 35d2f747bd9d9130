from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel


class PromptVersionSummary(BaseModel):
    id: uuid.UUID
    version: int
    created_at: datetime
    variables: list[str]
    runs: int


class PromptVersionRead(PromptVersionSummary):
    """Everything a version sends the model, and the specification it was compiled from."""

    system_prompt: str
    user_template: str
    json_schema: dict[str, Any]
    spec: dict[str, Any] | None


class VariableChange(BaseModel):
    name: str
    # field -> {"from": ..., "to": ...}
    fields: dict[str, dict[str, Any]]


class PromptVersionDiff(BaseModel):
    """From version `from_version` to `to_version`: the variables added, removed and changed field by field, the
    project-level fields that changed, and a unified diff of the system prompt."""

    from_version: int
    to_version: int
    added: list[str]
    removed: list[str]
    changed: list[VariableChange]
    project: dict[str, dict[str, Any]]
    system_prompt_diff: list[str]
