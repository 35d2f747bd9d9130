from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from coderai_assets.storage.models import ExtractionUnit, IfMultiple, IfUncertain, VariableType


class Strict(BaseModel):
    # Unknown fields are refused: nobody sets tenant_id or ids through a body.
    model_config = ConfigDict(extra="forbid")


class ProjectCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    domain_description: str = ""
    extraction_unit: ExtractionUnit = ExtractionUnit.document
    entity_description: str = ""
    # Code documents uploaded after a full run was accepted, with that run's prompt version.
    auto_process: bool = False


class ProjectUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    domain_description: str | None = None
    entity_description: str | None = None
    auto_process: bool | None = None


class ProjectRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    domain_description: str
    extraction_unit: ExtractionUnit
    entity_description: str
    auto_process: bool
    shard: int
    created_at: datetime


class Validation(Strict):
    min: float | None = None
    max: float | None = None
    pattern: str | None = None


class VariableCreate(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$", description="snake_case identifier, the column name")
    display_name: str = ""
    type: VariableType
    description: str = ""
    allowed_values: list[str] | None = None
    if_uncertain: IfUncertain = IfUncertain.leave_empty
    uncertain_code: str | None = None
    if_multiple_values: IfMultiple = IfMultiple.first
    max_values: int | None = Field(default=None, ge=1)
    default_value: str | None = None
    depends_on: str | None = None
    depends_on_value: str | None = None
    validation: Validation | None = None
    position: int | None = None

    @field_validator("allowed_values")
    @classmethod
    def _distinct(cls, values: list[str] | None) -> list[str] | None:
        if values is not None and len(set(values)) != len(values):
            raise ValueError("allowed_values must be distinct")
        return values

    @model_validator(mode="after")
    def _consistent(self) -> VariableCreate:
        if self.type == VariableType.category and not self.allowed_values:
            raise ValueError("a category variable needs allowed_values")
        if self.if_uncertain == IfUncertain.code and not self.uncertain_code:
            raise ValueError("if_uncertain=code needs uncertain_code")
        if self.depends_on == self.name:
            raise ValueError("a variable cannot depend on itself")
        return self


class VariableRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    display_name: str
    type: VariableType
    description: str
    allowed_values: list[str] | None
    if_uncertain: IfUncertain
    uncertain_code: str | None
    if_multiple_values: IfMultiple
    max_values: int | None
    default_value: str | None
    depends_on: str | None
    depends_on_value: str | None
    validation: dict[str, Any] | None
    position: int


class VariableUpdate(Strict):
    """Any field but the name (the dataset's column); unset fields keep their value. The result is checked as a
    whole, as on creation. An edit makes a new prompt version; only this variable is re-asked on the next run."""

    display_name: str | None = None
    type: VariableType | None = None
    description: str | None = None
    allowed_values: list[str] | None = None
    if_uncertain: IfUncertain | None = None
    uncertain_code: str | None = None
    if_multiple_values: IfMultiple | None = None
    max_values: int | None = Field(default=None, ge=1)
    default_value: str | None = None
    depends_on: str | None = None
    depends_on_value: str | None = None
    validation: Validation | None = None
    position: int | None = None
