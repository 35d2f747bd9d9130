from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from coderai_assets.storage.models import DocumentStatus


class DocumentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    file_name: str
    format: str | None
    size_bytes: int
    sha256: str
    status: DocumentStatus
    error_code: str | None
    error_message: str | None
    page_count: int | None
    created_at: datetime


class DocumentDetail(DocumentRead):
    parse_warnings: list | None
    # Characters of parsed text (None until it is parsed): the space the values' offsets point into.
    text_chars: int | None


class DocumentText(BaseModel):
    """A slice of the parsed text: `text` is characters `offset` to `offset + len(text)` of `total_chars`."""

    offset: int
    total_chars: int
    text: str


class UploadResult(BaseModel):
    document: DocumentRead
    duplicate: bool
