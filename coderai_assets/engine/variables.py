"""A variable's definition: the one model that the API's schemas, the stored row (`variables.definition`), each
prompt version's snapshot and the codebook all use, so its fields are listed once."""

from __future__ import annotations

import enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# A variable's name is the dataset's column: snake_case, and short enough for PostgreSQL identifiers.
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"


class VariableType(enum.StrEnum):
    text = "text"
    integer = "integer"
    number = "number"
    boolean = "boolean"
    date = "date"
    category = "category"
    list = "list"


class IfUncertain(enum.StrEnum):
    leave_empty = "leave_empty"
    best_guess = "best_guess"
    code = "code"


class IfMultiple(enum.StrEnum):
    first = "first"
    all = "all"
    flag = "flag"


class Validation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    min: float | None = None
    max: float | None = None
    pattern: str | None = None


class VariableSpec(BaseModel):
    """What a variable means and how its value is coded. Cross-field rules that only a user's input can break
    (a category without allowed values, ...) are checked where the input arrives (`VariableCreate`)."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=NAME_PATTERN, description="snake_case identifier, the column name")
    type: VariableType
    display_name: str = ""
    description: str = ""
    allowed_values: list[str] | None = None
    if_uncertain: IfUncertain = IfUncertain.leave_empty
    uncertain_code: str | None = None
    if_multiple_values: IfMultiple = IfMultiple.first
    max_values: int | None = Field(default=None, ge=1, le=10_000)
    default_value: str | None = None
    depends_on: str | None = None
    depends_on_value: str | None = None
    validation: Validation | None = None
    # Worked examples for coders and the model ("'some 450 dockers' -> 450"); the refiner writes them too.
    examples: list[Annotated[str, Field(max_length=500)]] | None = Field(default=None, max_length=10)
    # A category's code for "not in the text" ("none"): across a document's chunks, another code any chunk gives
    # wins, and this one is coded only when every chunk was read and says it (as false for a yes/no).
    absent_value: str | None = Field(default=None, max_length=200)

    @field_validator("allowed_values")
    @classmethod
    def _distinct(cls, values: list[str] | None) -> list[str] | None:
        if values is not None and len(set(values)) != len(values):
            raise ValueError("allowed_values must be distinct")
        return values or None

    @property
    def label(self) -> str:
        return self.display_name or self.name

    @property
    def rules(self) -> dict[str, Any] | None:
        """The validation rules that are set, as the codebook and the validator read them."""
        return self.validation.model_dump(exclude_none=True) or None if self.validation else None

    def stored(self) -> dict[str, Any]:
        """The JSON kept in the database: values only, unset rules left out, so equal definitions store equal."""
        data = self.model_dump(mode="json")
        data["validation"] = self.rules
        for optional in ("examples", "absent_value"):
            if not data.get(optional):
                # Left out when unset, so that definitions stored before these existed hash (and cache) as before.
                data.pop(optional, None)
        return data
