"""What reviewers said about a run, as the API, the gate and the export read it: their current feedback, the
corrections that win over the model's values, and the agreement figures per variable (engine/agreement.py).

Double coding: nobody sees another reviewer's feedback on a run until every reviewer of it is done, so the
figures between reviewers, and everybody's figures, wait for that; the export, written for the whole team, shows
everything."""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from coderai_assets.engine.agreement import UNKNOWN, agreement
from coderai_assets.storage.models import EntityFeedback, Extraction, Feedback, Project, PromptVersion, Review, Run
from coderai_assets.storage.specs import version_spec

REJECTED = "rejected"  # a wrong verdict without a correction: the final value is empty


def all_done(session: Session, run_id: uuid.UUID) -> bool:
    reviews = session.scalars(select(Review).where(Review.run_id == run_id)).all()
    return bool(reviews) and all(r.done_at is not None for r in reviews)


def latest_reviewed_run(session: Session, project: Project, before: Run | None = None) -> Run | None:
    """The project's newest run with current feedback (created before `before`, if given): the one the reliability
    gate reads, the refiner learns from by default, and a run without feedback of its own reports in its export."""
    query = (
        select(Run)
        .join(Feedback, Feedback.run_id == Run.id)
        .where(Run.project_id == project.id, Feedback.superseded_at.is_(None))
    )
    if before is not None:
        query = query.where(Run.created_at <= before.created_at, Run.id != before.id)
    return session.scalars(query.order_by(Run.created_at.desc()).limit(1)).first()


def reviewer_value(feedback: Feedback, value: Extraction) -> Any:
    """What the reviewer says the value is: the model's when correct, the correction when wrong (a wrong verdict
    without one agrees with nothing)."""
    if feedback.verdict == "correct":
        return value.value
    return feedback.corrected_value if feedback.corrected_value is not None else UNKNOWN


def threshold(project: Project, variable: str) -> float:
    return float((project.reliability_thresholds or {}).get(variable, project.reliability_threshold))


def _current(session: Session, run_ids: list[uuid.UUID], user_id: uuid.UUID | None = None):
    query = (
        select(Feedback, Extraction)
        .join(Extraction, Extraction.id == Feedback.extraction_id)
        .where(Feedback.run_id.in_(run_ids), Feedback.superseded_at.is_(None))
        .order_by(Feedback.created_at)
    )
    if user_id is not None:
        query = query.where(Feedback.user_id == user_id)
    return session.execute(query).all()


def latest_feedback(session: Session, run_id: uuid.UUID) -> list[tuple[Feedback, Extraction]]:
    """Per reviewed value of the run, its latest current feedback (of whichever reviewer), as the refiner learns
    from it; in the order the values were given feedback."""
    latest: dict[uuid.UUID, tuple[Feedback, Extraction]] = {}
    for feedback, value in _current(session, [run_id]):
        latest[value.id] = (feedback, value)
    return list(latest.values())


def corrections(session: Session, run_ids: list[uuid.UUID]) -> dict[tuple[str, str, int, str], tuple[Any, str]]:
    """(run, document, entity, variable) -> (final value, source) where a reviewer said the model was wrong: the
    latest correction wins (source `reviewer`), or the value is struck (`rejected`)."""
    found: dict[tuple[str, str, int, str], tuple[Any, str]] = {}
    if not run_ids:
        return found
    for feedback, value in _current(session, run_ids):
        if feedback.verdict != "wrong":
            continue
        key = (str(value.run_id), str(value.document_id), value.entity_index, value.variable_name)
        corrected = feedback.corrected_value
        found[key] = (corrected, "reviewer") if corrected is not None else (None, REJECTED)
    return found


def run_agreement(
    session: Session, run: Run, project: Project, *, user_id: uuid.UUID | None = None, with_intervals: bool = True
) -> dict:
    """Per variable, the model against each reviewer's current feedback (`user_id`: that reviewer's alone), and
    reviewer against reviewer on values two of them coded (only when everybody's feedback counts)."""
    rows = _current(session, [run.id], user_id)
    version = session.get(PromptVersion, run.prompt_version_id) if run.prompt_version_id else None
    types = {v.name: v.type.value for v in version_spec(session, version)[0].variables} if version else {}
    model: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
    by_value: dict[uuid.UUID, dict[uuid.UUID | None, Any]] = defaultdict(dict)
    names: dict[uuid.UUID, str] = {}
    for feedback, value in rows:
        said = reviewer_value(feedback, value)
        model[value.variable_name].append((value.value, said))
        by_value[value.id][feedback.user_id] = said
        names[value.id] = value.variable_name
    variables = []
    for name in [n for n in types if n in model] + sorted(set(model) - set(types)):
        figures = agreement(model[name], types.get(name, "text"), with_intervals=with_intervals)
        bar = threshold(project, name)
        measure = figures["alpha"] if figures["alpha"] is not None else figures["accuracy"]
        variables.append(
            {
                "variable": name,
                "type": types.get(name, "text"),
                **figures,
                "threshold": bar,
                "passes": measure is None or measure >= bar,
            }
        )
    between = []
    if user_id is None:
        pairs: dict[tuple[str, uuid.UUID | None, uuid.UUID | None], list[tuple[Any, Any]]] = defaultdict(list)
        for value_id, said in by_value.items():
            for first, second in itertools.combinations(sorted(said, key=str), 2):
                pairs[(names[value_id], first, second)].append((said[first], said[second]))
        for (name, first, second), items in sorted(pairs.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
            figures = agreement(items, types.get(name, "text"), with_intervals=with_intervals)
            between.append({"variable": name, "reviewers": [first, second], **figures})
    return {
        "run_id": run.id,
        "complete": user_id is None,
        "model_vs_reviewers": variables,
        "between_reviewers": between,
    }


def feedback_sheet(session: Session, run: Run) -> list[dict[str, Any]]:
    """Every current verdict and every missed or spurious entity, for the export's feedback sheet."""
    rows: list[dict[str, Any]] = []
    for feedback, value in _current(session, [run.id]):
        rows.append(
            {
                "document_id": str(value.document_id),
                "entity_index": value.entity_index,
                "variable": value.variable_name,
                "model_value": value.value,
                "verdict": feedback.verdict,
                "corrected_value": feedback.corrected_value,
                "note": feedback.comment,
                "reviewer": str(feedback.user_id or ""),
                "at": feedback.created_at.isoformat(timespec="seconds") if feedback.created_at else "",
            }
        )
    for entity in session.scalars(select(EntityFeedback).where(EntityFeedback.run_id == run.id)):
        rows.append(
            {
                "document_id": str(entity.document_id),
                "entity_index": entity.entity_index,
                "variable": "",
                "model_value": None,
                "verdict": f"{entity.kind} entity",
                "corrected_value": entity.entity_text,
                "note": entity.note,
                "reviewer": str(entity.user_id or ""),
                "at": entity.created_at.isoformat(timespec="seconds") if entity.created_at else "",
            }
        )
    return rows
