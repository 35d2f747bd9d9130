"""Reviewers' feedback (editors give it, everybody with access reads what they may see): per value, with history;
missed and spurious entities; each reviewer's review of a run, and double coding (see service.py)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from coderai_api.deps import Editor, SessionDep, Viewer
from coderai_api.errors import ERROR_RESPONSES
from coderai_api.feedback import agreement, service
from coderai_api.feedback.schemas import (
    EntityFeedbackCreate,
    EntityFeedbackRead,
    FeedbackCreate,
    FeedbackRead,
    RunAgreement,
    RunReview,
    ValueFeedback,
)
from coderai_api.pagination import Page, Paged
from coderai_api.projects.service import get_project
from coderai_api.runs.service import get_run

router = APIRouter(tags=["feedback"], responses=ERROR_RESPONSES)


@router.put("/values/{value_id}/feedback", response_model=FeedbackRead)
def give_feedback(value_id: uuid.UUID, body: FeedbackCreate, session: SessionDep, principal: Editor):
    """The caller's verdict on a value (ids from GET /runs/{id}/values); again, it replaces their earlier one,
    which stays in the history. 422 `invalid_correction` when the variable could not hold the correction."""
    given = "corrected_value" in body.model_fields_set  # null given: it should be empty; omitted: not said
    return service.give_feedback(
        session, principal, value_id, body.verdict, body.corrected_value, body.note, has_correction=given
    )


@router.get("/values/{value_id}/feedback", response_model=ValueFeedback)
def value_feedback(value_id: uuid.UUID, session: SessionDep, principal: Viewer):
    return service.value_feedback(session, principal, value_id)


@router.get("/runs/{run_id}/feedback", response_model=Page[FeedbackRead])
def run_feedback(
    run_id: uuid.UUID,
    session: SessionDep,
    principal: Viewer,
    page: Paged,
    document_id: uuid.UUID | None = None,
    variable: Annotated[str | None, Query(max_length=63)] = None,
):
    """Current feedback on the run's values: the caller's own, and everybody's once every reviewer is done."""
    run = get_run(session, principal.tenant_id, run_id)
    return service.run_feedback(session, principal, run, page, document_id=document_id, variable=variable)


@router.post("/runs/{run_id}/entity-feedback", response_model=EntityFeedbackRead, status_code=201)
def add_entity_feedback(run_id: uuid.UUID, body: EntityFeedbackCreate, session: SessionDep, principal: Editor):
    """Entity-level projects: an entity the model missed, or one it made up."""
    run = get_run(session, principal.tenant_id, run_id)
    return service.add_entity_feedback(session, principal, run, body)


@router.get("/runs/{run_id}/entity-feedback", response_model=Page[EntityFeedbackRead])
def entity_feedback(run_id: uuid.UUID, session: SessionDep, principal: Viewer, page: Paged):
    """Missed and spurious entities: the caller's own, and everybody's once every reviewer is done; oldest first."""
    return service.entity_feedback(session, principal, get_run(session, principal.tenant_id, run_id), page)


@router.get("/runs/{run_id}/review", response_model=RunReview)
def review_status(run_id: uuid.UUID, session: SessionDep, principal: Viewer):
    return service.review_status(session, get_run(session, principal.tenant_id, run_id))


@router.post("/runs/{run_id}/review", response_model=RunReview)
def start_review(run_id: uuid.UUID, session: SessionDep, principal: Editor):
    """The caller becomes one of the run's reviewers before giving any verdict: nobody's answers show until they
    are done too (a first verdict does the same)."""
    return service.start_review(session, principal, get_run(session, principal.tenant_id, run_id))


@router.post("/runs/{run_id}/review/reopen", response_model=RunReview)
def reopen_review(run_id: uuid.UUID, session: SessionDep, principal: Editor):
    """A finished review is locked (409 `review_finished` on a verdict); reopened, its verdicts can change, and the
    others' answers are hidden again until it is done. 409 `review_not_finished` when it is not finished."""
    return service.reopen_review(session, principal, get_run(session, principal.tenant_id, run_id))


@router.post("/runs/{run_id}/review/done", response_model=RunReview)
def finish_review(run_id: uuid.UUID, session: SessionDep, principal: Editor):
    """The caller's review of the run is done. Once every reviewer's is, each sees the others' feedback."""
    return service.finish_review(session, principal, get_run(session, principal.tenant_id, run_id))


@router.get("/runs/{run_id}/agreement", response_model=RunAgreement)
def run_agreement(run_id: uuid.UUID, session: SessionDep, principal: Viewer, intervals: bool = True):
    """Accuracy, Cohen's kappa (nominal variables) and Krippendorff's alpha (at the variable's level of
    measurement) with 95% intervals and the number of items, per variable: the model against the reviewers, each
    variable against the project's threshold; and between reviewers where values were double-coded.
    `intervals=false` skips the bootstrap (seconds for a large codebook)."""
    run = get_run(session, principal.tenant_id, run_id)
    project = get_project(session, principal.tenant_id, run.project_id)
    return agreement.run_agreement(session, principal, run, project, with_intervals=intervals)
