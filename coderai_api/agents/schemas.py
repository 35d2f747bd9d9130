from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from coderai_api.schemas import Body
from coderai_assets.storage.models import AgentTaskKind, AgentTaskStatus


class SuggestRequest(Body):
    """The documents the co-pilot reads (ids), or the first `documents` uploaded; at most `max_variables`."""

    document_ids: list[uuid.UUID] = Field(default_factory=list, max_length=5)
    documents: int = Field(default=3, ge=1, le=5)
    max_variables: int = Field(default=8, ge=1, le=30)


class RefineRequest(Body):
    """The reviewed run (the latest with feedback by default), the variables to refine (every weak one by default),
    the share of reviewed documents held out to score the proposal on, and the split's seed."""

    run_id: uuid.UUID | None = None
    variables: list[str] = Field(default_factory=list, max_length=200)
    held_out_fraction: float = Field(default=0.5, ge=0.1, le=0.9)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)


class AcceptRequest(Body):
    """Which of the task's variables to take (all by default; the rest are dropped) and, per variable, fields to
    change first (any field of a variable's definition; a suggestion's name too)."""

    variables: list[str] | None = Field(default=None, max_length=200)
    edits: dict[str, dict[str, Any]] = Field(default_factory=dict, max_length=200)


class AgentTaskRead(BaseModel):
    """A refiner (`refine`) or co-pilot (`suggest`) task: `queued`, `running`, `succeeded` (see `result`),
    `failed` (`error_code`) or `canceled`. `applied`: what a user accepted of it."""

    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    project_id: uuid.UUID
    kind: AgentTaskKind
    status: AgentTaskStatus
    request: dict[str, Any]
    result: dict[str, Any] | None
    error_code: str | None
    error: str | None
    llm_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    applied: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class AcceptResult(BaseModel):
    """The variables created (a suggestion) or changed (a refinement), and the prompt version the next run will use,
    with its diff against the version before (a refinement)."""

    task: AgentTaskRead
    variables: list[dict[str, Any]]
    prompt_version: int | None = None
    diff: dict[str, Any] | None = None


class RefinementEstimate(BaseModel):
    """What a refinement would cost: a proposal call per weak variable, then the held-out documents coded again
    (`held_out`: their estimate, as a run's), in calls, tokens and USD (`cost_usd_max`: every answer at its whole
    budget). No weak variable: nothing to ask, nothing to pay."""

    weak_variables: list[str]
    written_from_documents: int
    held_out_documents: int
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cost_usd_max: float
    held_out: dict[str, Any]
    model: str
