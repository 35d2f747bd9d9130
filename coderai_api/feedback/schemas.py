from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from coderai_api.schemas import Body


class FeedbackCreate(Body):
    """`correct`, or `wrong` with what the value should have been (`corrected_value`, checked against the variable's
    type and allowed values; null: it should be empty; omitted: the reviewer does not say)."""

    verdict: Literal["correct", "wrong"]
    corrected_value: Any = None
    note: str = Field(default="", max_length=5000)


class FeedbackRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    extraction_id: uuid.UUID
    run_id: uuid.UUID | None
    document_id: uuid.UUID | None
    variable_name: str | None
    user_id: uuid.UUID | None
    verdict: str
    corrected_value: Any
    # A wrong verdict that says what the value should be (corrected_value; null: empty); false: "not this" only.
    has_correction: bool
    # Carried from a finished review of an earlier run, where the same value was judged: that run.
    carried_from_run_id: uuid.UUID | None = None
    # The name it is given by (FeedbackCreate.note); stored as the row's `comment`.
    note: str = Field(validation_alias=AliasChoices("note", "comment"))
    created_at: datetime
    superseded_at: datetime | None


class ValueFeedback(BaseModel):
    """The caller's current feedback on a value and its history (oldest first); the other reviewers' current
    feedback once every reviewer of the run is done (`others_visible`)."""

    mine: FeedbackRead | None
    history: list[FeedbackRead]
    others: list[FeedbackRead]
    others_visible: bool


class EntityFeedbackCreate(Body):
    """An entity the model missed (`entity_text`, and where the text names it), or one it made up (its
    `entity_index` in the run's values of the document)."""

    document_id: uuid.UUID
    kind: Literal["missed", "spurious"]
    entity_index: int | None = Field(default=None, ge=0, le=1_000_000)
    entity_text: str | None = Field(default=None, max_length=2000)
    char_start: int | None = Field(default=None, ge=0, le=2_000_000_000)
    char_end: int | None = Field(default=None, ge=0, le=2_000_000_000)
    note: str = Field(default="", max_length=5000)

    @model_validator(mode="after")
    def _what(self) -> EntityFeedbackCreate:
        if self.kind == "missed" and not self.entity_text:
            raise ValueError("a missed entity needs entity_text")
        if self.kind == "spurious" and self.entity_index is None:
            raise ValueError("a spurious entity needs entity_index")
        if (self.char_start is None) != (self.char_end is None) or (
            self.char_start is not None and self.char_end is not None and self.char_end <= self.char_start
        ):
            raise ValueError("give both char_start and char_end, with char_end after char_start")
        return self


class EntityFeedbackRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    run_id: uuid.UUID
    document_id: uuid.UUID
    user_id: uuid.UUID | None
    kind: str
    entity_index: int | None
    entity_text: str | None
    char_start: int | None
    char_end: int | None
    note: str
    created_at: datetime


class ReviewerRead(BaseModel):
    user_id: uuid.UUID
    done: bool
    done_at: datetime | None
    feedback: int


class RunReview(BaseModel):
    """Who reviews the run and whether each is done; others' feedback shows once all are."""

    reviewers: list[ReviewerRead]
    all_done: bool


class Figures(BaseModel):
    level: str  # nominal, interval
    n: int
    accuracy: float | None
    accuracy_ci: list[float] | None
    kappa: float | None  # nominal variables
    kappa_ci: list[float] | None
    alpha: float | None  # Krippendorff's, at the level of measurement
    alpha_ci: list[float] | None


class VariableAgreement(Figures):
    variable: str
    type: str
    threshold: float
    # alpha (or, where alpha is undefined, accuracy) at the threshold: a full run may start.
    passes: bool


class ReviewerAgreement(Figures):
    variable: str
    reviewers: list[uuid.UUID | None]


class RunAgreement(BaseModel):
    """Per variable: the model against the reviewers' feedback, and reviewer against reviewer on double-coded
    values. Until every reviewer is done (`complete`), only the caller's own feedback counts."""

    run_id: uuid.UUID
    complete: bool
    model_vs_reviewers: list[VariableAgreement]
    between_reviewers: list[ReviewerAgreement]
