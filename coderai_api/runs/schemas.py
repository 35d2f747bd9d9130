from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from coderai_api.schemas import Body
from coderai_assets.storage.models import RunKind, RunStatus


class ReliabilityOverride(Body):
    """Why a full run starts although variables are under the reliability threshold (kept in the export)."""

    reason: str = Field(min_length=10, max_length=2000)


class RunCreate(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"kind": {"const": "sample"}}, "required": ["kind"]},
            "then": {"required": ["sample_size"], "properties": {"sample_size": {"type": "integer"}}},
        }
    )
    kind: RunKind
    sample_size: int | None = Field(default=None, ge=1, le=10_000)
    seed: int | None = None
    # A hard cap in USD: a call that would take the run past it is not made, and the run stops with
    # `budget_exceeded` (spending passes it by no more than the calls in flight). See POST .../runs/estimate.
    max_cost_usd: float | None = Field(default=None, gt=0)
    # A full run is refused (409 `reliability_below_threshold`) while a variable's alpha in the latest reviewed run
    # is under the project's threshold, unless this says why it should start anyway.
    reliability_override: ReliabilityOverride | None = None

    @model_validator(mode="after")
    def _sample(self) -> RunCreate:
        if self.kind == RunKind.sample and self.sample_size is None:
            raise ValueError("a sample run needs sample_size")
        return self


class RunProgress(BaseModel):
    """Where an active run is, as its documents' rows say (every committed chunk and stage moves it)."""

    documents_total: int
    documents_parsed: int
    documents_extracted: int
    documents_validated: int
    documents_failed: int
    llm_calls: int
    cached_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    # From the documents finished so far; None until one has finished.
    eta_seconds: float | None


class RunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    project_id: uuid.UUID
    kind: RunKind
    status: RunStatus
    sample_size: int | None
    prompt_version_id: uuid.UUID | None
    model: str | None
    documents_total: int
    documents_done: int
    documents_failed: int
    llm_calls: int
    cached_calls: int  # chunks answered whole from the cache: no call
    # Calls that asked only the variables whose definition changed (a sample after a refinement), earlier answers
    # of the same chunks giving the others.
    partly_cached_calls: int = 0
    input_tokens: int
    output_tokens: int
    cost_usd: float
    # Values found by the model but not in the document text (status `ungrounded`): GET /runs/{id}/values?status=...
    values_ungrounded: int = 0
    max_cost_usd: float | None = None
    # What the run's committed answers cost, as the spending caps count it (grows with every answer).
    spent_usd: float = 0.0
    dagster_run_ids: list[str]
    error: str | None
    # A run stopped by its provider (`llm_auth_failed`, `llm_quota_exceeded`, `llm_unavailable`) or a user
    # (`canceled`).
    error_code: str | None = None
    reliability_override: dict[str, Any] | None = None
    # 0, then one more for each POST /runs/{id}/retry.
    attempt: int = 0
    # While the run is active (queued, running, exporting); the counters above then move with it too.
    progress: RunProgress | None = None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    # Dagster run id -> status, as the lifecycle sensor last recorded it.
    dagster_status: dict[str, str] = {}


class RunEstimate(BaseModel):
    """What the run would cost (pipeline/estimate.py): answers at the mean length of the project's earlier ones
    (`output_basis` "observed": run a sample first) or at a typical length ("typical"); `cost_usd_max` counts every
    answer at its whole budget. Text not parsed yet is guessed from file sizes (`documents_parsed` says how many
    were)."""

    documents: int
    documents_parsed: int
    chunks: int
    cached_chunks: int
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cost_usd_max: float
    output_basis: str
    model: str
    context_tokens: int
    chunk_chars: int
    input_price_per_mtok: float
    output_price_per_mtok: float
