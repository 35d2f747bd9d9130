"""Reviewers' feedback on a run's values and entities, with history and double coding.

Double coding: a reviewer's review of a run starts when they open it (their first feedback, or POST .../review)
and ends when they say it is done; what each reader sees follows domain/reviews.py (blind until every reviewer
is done). A finished review is locked: its verdicts change only after the reviewer reopens it, which hides the
others' answers again until it is done once more. An edit supersedes the earlier answer, which stays as history."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from coderai_api.auth.service import Principal
from coderai_api.pagination import PageRequest
from coderai_assets.domain.carry import carry_to_later_runs
from coderai_assets.domain.reviews import EVERYONE, reader_scope, review_complete, visible
from coderai_assets.domain.specs import version_spec
from coderai_assets.engine.coercion import coerce_value
from coderai_assets.errors import Conflict, InvalidInput, NotFound
from coderai_assets.storage import repositories
from coderai_assets.storage.models import (
    EntityFeedback,
    Extraction,
    Feedback,
    PromptVersion,
    Review,
    Role,
    Run,
    utcnow,
)
from coderai_assets.storage.repositories import values, verdicts


def is_coder(principal: Principal) -> bool:
    """Editors and owners may code a run (give feedback); viewers only read."""
    return principal.role in (Role.editor, Role.owner)


def scope_of(session: Session, principal: Principal, run_id: uuid.UUID) -> uuid.UUID | None:
    return reader_scope(session, run_id, principal.user_id, coder=is_coder(principal))


def get_value(session: Session, tenant_id: uuid.UUID, value_id: uuid.UUID, *, lock: bool = False) -> Extraction:
    value = values.get(session, tenant_id, value_id, lock=lock)
    if value is None:
        raise NotFound("No such value.", code="value_not_found")
    return value


def _review(session: Session, principal: Principal, run_id: uuid.UUID, *, lock: bool = False) -> Review:
    """The caller's review of the run, opened now if it was not (they are then one of its reviewers)."""
    review = verdicts.review_of(session, run_id, principal.user_id, lock=lock)
    if review is None:
        review = Review(tenant_id=principal.tenant_id, run_id=run_id, user_id=principal.user_id)
        session.add(review)
        session.flush()
    return review


def _open_review(session: Session, principal: Principal, run_id: uuid.UUID) -> Review:
    """The caller's review, to add to: 409 `review_finished` once they have said it is done."""
    review = _review(session, principal, run_id, lock=True)
    if review.done_at is not None:
        raise Conflict(
            "Your review of this run is finished, so its verdicts are locked: reopen it (POST /runs/{id}/review/"
            "reopen) to change them; the others' answers are hidden again until it is done.",
            code="review_finished",
        )
    return review


def _corrected(session: Session, value: Extraction, corrected):
    """The correction as the variable's type has it (a date in ISO form, a category as listed); 422 when the
    variable could not hold it."""
    if corrected is None:
        return None
    version = session.get(PromptVersion, value.prompt_version_id) if value.prompt_version_id else None
    if version is None:
        return corrected
    spec, _ = version_spec(session, version)
    variable = next((v for v in spec.variables if v.name == value.variable_name), None)
    if variable is None:
        return corrected
    result = coerce_value(variable, corrected)
    if result.status == "invalid":
        raise InvalidInput(
            f"{value.variable_name}: {result.message or 'the correction does not fit the variable'}",
            code="invalid_correction",
        )
    return result.value


def give_feedback(
    session: Session,
    principal: Principal,
    value_id: uuid.UUID,
    verdict: str,
    corrected,
    note: str,
    *,
    has_correction: bool,
) -> Feedback:
    """The caller's answer on a value, replacing (and keeping) their earlier one. Under the value's row lock: two
    requests of one reviewer at once leave one current answer. `has_correction`: a wrong verdict says what the
    value should be (`corrected`; None: empty)."""
    value = get_value(session, principal.tenant_id, value_id, lock=True)
    _open_review(session, principal, value.run_id)
    has_correction = verdict == "wrong" and has_correction
    stored = _corrected(session, value, corrected) if has_correction else None
    now = utcnow()
    current = verdicts.current_verdict(session, value, principal.user_id)
    if current is not None:
        current.superseded_at = now
        session.flush()
    answer = Feedback(
        tenant_id=principal.tenant_id,
        extraction_id=value.id,
        run_id=value.run_id,
        document_id=value.document_id,
        variable_name=value.variable_name,
        user_id=principal.user_id,
        verdict=verdict,
        corrected_value=stored,
        has_correction=has_correction,
        comment=note,
    )
    session.add(answer)
    session.flush()
    return answer


def value_feedback(session: Session, principal: Principal, value_id: uuid.UUID) -> dict:
    value = get_value(session, principal.tenant_id, value_id)
    rows = verdicts.history_of(session, value)
    mine = [f for f in rows if f.user_id == principal.user_id]
    everyone = scope_of(session, principal, value.run_id) is EVERYONE
    others = [
        f
        for f in rows
        if f.user_id != principal.user_id and f.superseded_at is None and (everyone or f.carried_from_id is not None)
    ]
    return {
        "mine": next((f for f in mine if f.superseded_at is None), None),
        "history": mine,
        "others": others,
        "others_visible": everyone,
    }


def run_feedback(
    session: Session,
    principal: Principal,
    run: Run,
    page: PageRequest,
    *,
    document_id: uuid.UUID | None,
    variable: str | None,
) -> dict:
    """The current feedback on the run's values the caller may see (domain/reviews.py), oldest first."""
    query = verdicts.current_of_run(run, document_id=document_id, variable=variable)
    query = visible(query, scope_of(session, principal, run.id)).order_by(Feedback.created_at, Feedback.id)
    return page.answer(repositories.keyset_page(session, query, name="feedback", scalars=True, **page.args))


def add_entity_feedback(session: Session, principal: Principal, run: Run, body) -> EntityFeedback:
    entities = values.entities_of(session, run, body.document_id)
    if not entities:
        raise NotFound("The run has no values for that document.", code="document_not_found")
    if body.kind == "spurious" and body.entity_index not in entities:
        raise InvalidInput(f"The document has no entity {body.entity_index} in this run.", code="entity_not_found")
    _open_review(session, principal, run.id)
    row = EntityFeedback(
        tenant_id=principal.tenant_id,
        run_id=run.id,
        document_id=body.document_id,
        user_id=principal.user_id,
        kind=body.kind,
        entity_index=body.entity_index,
        entity_text=body.entity_text,
        char_start=body.char_start,
        char_end=body.char_end,
        note=body.note,
    )
    session.add(row)
    session.flush()
    return row


def entity_feedback(session: Session, principal: Principal, run: Run, page: PageRequest) -> dict:
    query = verdicts.entity_verdicts_of_run(run).order_by(EntityFeedback.created_at, EntityFeedback.id)
    if scope_of(session, principal, run.id) is not EVERYONE:
        query = query.where(EntityFeedback.user_id == principal.user_id)
    return page.answer(repositories.keyset_page(session, query, name="entity-feedback", scalars=True, **page.args))


def review_status(session: Session, run: Run) -> dict:
    counts = verdicts.verdicts_per_reviewer(session, run)
    reviews = verdicts.reviews_of(session, run.id)
    return {
        "reviewers": [
            {
                "user_id": r.user_id,
                "done": r.done_at is not None,
                "done_at": r.done_at,
                "feedback": counts.get(r.user_id, 0),
            }
            for r in reviews
        ],
        "all_done": bool(reviews) and all(r.done_at is not None for r in reviews),
    }


def start_review(session: Session, principal: Principal, run: Run) -> dict:
    """The caller opens their review of the run before any verdict: they are one of its reviewers from now, so
    nobody's answers show until they are done too."""
    _review(session, principal, run.id)
    return review_status(session, run)


def _lock_reviews(session: Session, run: Run) -> None:
    """The run's reviews, changed one transaction at a time: two reviewers finishing at once would each see the
    other not done yet, and neither would carry the completed review's verdicts."""
    verdicts.lock_reviews(session, run)


def finish_review(session: Session, principal: Principal, run: Run) -> dict:
    """The caller's review is done, and locked. When it completes the run's review, its verdicts carry to the
    unchanged values of later runs (domain/carry.py)."""
    _lock_reviews(session, run)
    review = _review(session, principal, run.id, lock=True)
    if review.done_at is None:
        review.done_at = utcnow()
    session.flush()
    if review_complete(session, run.id):
        carry_to_later_runs(session, run)
    return review_status(session, run)


def reopen_review(session: Session, principal: Principal, run: Run) -> dict:
    """The caller's finished review is open again, to change a verdict; the history keeps what it was. The others'
    answers are hidden again (from everybody) until it is done once more."""
    _lock_reviews(session, run)
    review = session.get(Review, (run.id, principal.user_id))
    if review is None or review.done_at is None:
        raise Conflict("Your review of this run is not finished.", code="review_not_finished")
    review.done_at = None
    session.flush()
    return review_status(session, run)
