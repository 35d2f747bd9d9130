from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from coderai_api.schemas import Body
from coderai_assets.storage.models import RunKind, RunStatus


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
    cached_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    dagster_run_ids: list[str]
    error: str | None
    # A run stopped by its provider (`llm_auth_failed`, `llm_quota_exceeded`, `llm_unavailable`) or a user
    # (`canceled`).
    error_code: str | None = None
    # 0, then one more for each POST /runs/{id}/retry.
    attempt: int = 0
    # While the run is active (queued, running, exporting); the counters above then move with it too.
    progress: RunProgress | None = None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    # Dagster run id -> status, as the lifecycle sensor last recorded it.
    dagster_status: dict[str, str] = {}
