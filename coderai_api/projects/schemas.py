from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from coderai_api.schemas import Body
from coderai_assets.engine.variables import IfUncertain, VariableSpec, VariableType
from coderai_assets.storage.models import ExtractionUnit


class ProjectCreate(Body):
    name: str = Field(min_length=1, max_length=200)
    domain_description: str = ""
    extraction_unit: ExtractionUnit = ExtractionUnit.document
    entity_description: str = ""
    # Code documents uploaded after a full run was accepted, with that run's prompt version.
    auto_process: bool = False


class ProjectUpdate(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    domain_description: str | None = None
    entity_description: str | None = None
    auto_process: bool | None = None
    # Krippendorff's alpha each variable must reach before a full run (model against reviewers), and per variable.
    reliability_threshold: float | None = Field(default=None, ge=0, le=1)
    reliability_thresholds: dict[str, Annotated[float, Field(ge=0, le=1)]] | None = None


class ProjectRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    domain_description: str
    extraction_unit: ExtractionUnit
    entity_description: str
    auto_process: bool
    reliability_threshold: float = 0.8
    reliability_thresholds: dict[str, float] | None = None
    shard: int
    created_at: datetime


class VariableCreate(Body, VariableSpec):
    """A new variable: the definition, where it goes in the codebook, and the rules that tie its fields together
    (stated in the schema too, so a client can check them first)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "allOf": [
                {
                    "if": {"properties": {"type": {"const": "category"}}, "required": ["type"]},
                    "then": {
                        "required": ["allowed_values"],
                        "properties": {"allowed_values": {"type": "array", "minItems": 1}},
                    },
                },
                {
                    "if": {"properties": {"if_uncertain": {"const": "code"}}, "required": ["if_uncertain"]},
                    "then": {"required": ["uncertain_code"], "properties": {"uncertain_code": {"type": "string"}}},
                },
            ]
        },
    )
    position: int | None = Field(default=None, ge=0, le=1_000_000)  # stored as a 32-bit integer

    @model_validator(mode="after")
    def _consistent(self) -> VariableCreate:
        if self.type == VariableType.category and not self.allowed_values:
            raise ValueError("a category variable needs allowed_values")
        if self.if_uncertain == IfUncertain.code and not self.uncertain_code:
            raise ValueError("if_uncertain=code needs uncertain_code")
        if self.depends_on == self.name:
            raise ValueError("a variable cannot depend on itself")
        if self.absent_value is not None and (
            self.type != VariableType.category or self.absent_value not in (self.allowed_values or [])
        ):
            raise ValueError("absent_value must be one of a category's allowed_values")
        return self

    def definition(self) -> VariableSpec:
        return VariableSpec.model_validate(self.model_dump(exclude={"position"}))


class VariableRead(VariableSpec):
    id: uuid.UUID
    position: int


# An edit: any field of the definition but the name (the dataset's column); unset fields keep their value. The
# result is checked as a whole, as on creation. An edit makes a new prompt version; only this variable is re-asked.
_EDITABLE: dict[str, Any] = {
    name: (Optional[field.annotation], None)  # noqa: UP045 (an annotation object, not a written type)
    for name, field in {**VariableSpec.model_fields, **VariableCreate.model_fields}.items()
    if name != "name"
}
VariableUpdate: Any = create_model("VariableUpdate", __base__=Body, **_EDITABLE)
