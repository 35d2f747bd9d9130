"""What every request body shares: unknown fields are refused (nobody sets tenant_id or ids through a body), and
so is the NUL character anywhere in it, which PostgreSQL refuses in text and JSONB (a project name with `\\x00`
answered 500)."""

from __future__ import annotations

from typing import Any

import email_validator
from pydantic import BaseModel, ConfigDict, model_validator

# Addresses on special-use domains (`localhost`, `.test`, `.internal`) are valid addresses for a self-hosted
# platform, and the OpenAPI `email` format admits them: refusing them made schema-valid requests fail.
email_validator.SPECIAL_USE_DOMAIN_NAMES.clear()


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if _has_nul(data):
            raise ValueError("text may not contain the NUL character (\\u0000)")
        return data


class DeletionAccepted(BaseModel):
    """A deletion asked for (202): what is deleted is gone from every read at once; its runs are cancelled, and its
    rows, files and Dagster partitions are removed within seconds, once its Dagster runs have stopped."""

    kind: str
    id: Any
    status: str = "deleting"
