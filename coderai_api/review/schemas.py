"""What a reviewer reads of a run: its documents and its values, a page at a time."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict

from coderai_assets.storage.models import RunDocumentStatus, ValueStatus


class RunDocumentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    document_id: uuid.UUID
    file_name: str
    status: RunDocumentStatus
    # How far a pending document got: parsed, extracted.
    stage: str | None
    error_code: str | None
    error_message: str | None
    llm_calls: int
    cached_calls: int
    input_tokens: int
    output_tokens: int
    values_ungrounded: int


class ValueRead(BaseModel):
    """One value as the run produced it: what the model wrote, what it became, and where in the text it stands
    (offsets into the document's parsed text, GET /projects/{id}/documents/{document_id}/text)."""

    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    document_id: uuid.UUID
    file_name: str
    entity_index: int
    entity_text: str | None
    entity_start: int | None
    entity_end: int | None
    variable: str
    raw_value: Any
    value: Any
    status: ValueStatus
    message: str | None
    confidence: float | None
    quote: str | None
    char_start: int | None
    char_end: int | None
    alignment: str | None
    chunk_index: int | None
    prompt_version_id: uuid.UUID | None
    prompt_version: int | None
    model: str | None
