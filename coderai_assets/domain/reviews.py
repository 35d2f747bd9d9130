"""What reviewers said about a run, as the API, the gate and the export read it: their current feedback, the
corrections that win over the model's values, and the agreement figures per variable (engine/agreement.py).

Double coding is blind. A run's reviewers are everybody who opened its review (with a first verdict, or
`POST /runs/{id}/review`); until every one of them is done, each reader sees only their own feedback, and so do the
figures, the gate, the refiner and the export they ask for. Once all are done, everybody's feedback shows, except to
an editor who is not among the reviewers (they could still start coding): they see their own until they finish a
review of the run. Verdicts carried from a finished review of an earlier run (domain/carry.py) were blind there,
and show to everybody.

A scope says whose feedback a reader sees: EVERYONE, or one user's id (their own, and carried verdicts); NOBODY is
the scope of the platform itself while a review is incomplete (a run's own export)."""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import or_
from sqlalchemy.orm import Session

from coderai_assets.domain.specs import version_spec
from coderai_assets.engine.agreement import UNKNOWN, agreement
from coderai_assets.storage.models import EntityFeedback, Extraction, Feedback, Project, PromptVersion, Run
from coderai_assets.storage.repositories import verdicts

REJECTED = "rejected"  # a wrong verdict without a correction: the final value is empty
EVERYONE: uuid.UUID | None = None
NOBODY = uuid.UUID(int=0)  # matches no user: only carried verdicts


def review_complete(session: Session, run_id: uuid.UUID) -> bool:
    """Every reviewer of the run is done (true when nobody opened a review: nothing of it is blind)."""
    return all(r.done_at is not None for r in verdicts.reviews_of(session, run_id))


def all_done(session: Session, run_id: uuid.UUID) -> bool:
    """Somebody reviewed the run, and every reviewer of it is done."""
    reviews = verdicts.reviews_of(session, run_id)
    return bool(reviews) and all(r.done_at is not None for r in reviews)


def reader_scope(session: Session, run_id: uuid.UUID, reader: uuid.UUID | None, *, coder: bool) -> uuid.UUID | None:
    """Whose feedback on the run `reader` may see (`coder`: an editor, who may code it). None as the reader is
    the platform itself."""
    reviews = verdicts.reviews_of(session, run_id)
    if any(r.done_at is None for r in reviews):
        return reader or NOBODY
    if reader is None or not coder or not reviews:
        return EVERYONE
    return EVERYONE if any(r.user_id == reader for r in reviews) else reader


def team_scope(session: Session, run_ids: list[uuid.UUID], reader: uuid.UUID | None) -> uuid.UUID | None:
    """Whose feedback a product for the whole team (the export, the gate) holds: everybody's once every review of
    these runs is complete, else the reader's own."""
    complete = all(review_complete(session, run_id) for run_id in run_ids)
    return EVERYONE if complete else (reader or NOBODY)


def feedback_state(session: Session, run_ids: list[uuid.UUID]) -> str:
    """A fingerprint of everything reviewers said on the runs: verdict rows only grow (an edit adds one), so their
    count with the entity rows and the reviews, open and done, changes with any feedback. Counts, not times: a
    transaction that commits late cannot hide behind an earlier timestamp."""
    if not run_ids:
        return "none"
    given, superseded, entities, reviews, done = verdicts.state_counts(session, run_ids)
    return f"v{given}s{superseded}e{entities}r{reviews}d{done}"


def feedback_as_of(session: Session, run_ids: list[uuid.UUID]) -> str:
    """When the latest feedback on the runs was given, for the about sheet."""
    if not run_ids:
        return ""
    latest = verdicts.latest_given(session, run_ids)
    return latest.isoformat(timespec="seconds") if latest else ""


def latest_reviewed_run(session: Session, project: Project, before: Run | None = None) -> Run | None:
    """The project's newest run with current feedback (created before `before`, if given): the one the reliability
    gate reads, the refiner learns from by default, and a run without feedback of its own reports in its export."""
    return verdicts.latest_run_with_verdicts(session, project, before)


def reviewer_value(feedback: Feedback, value: Extraction) -> Any:
    """What the reviewer says the value is: the model's when correct, the correction when wrong (None: it should
    be empty, a coding like any other); a wrong verdict that does not say what agrees with nothing."""
    if feedback.verdict == "correct":
        return value.value
    return feedback.corrected_value if feedback.has_correction else UNKNOWN


def threshold(project: Project, variable: str) -> float:
    return float((project.reliability_thresholds or {}).get(variable, project.reliability_threshold))


def visible(query, scope: uuid.UUID | None):
    """`query` over Feedback narrowed to what `scope` sees (the module's docstring)."""
    if scope is EVERYONE:
        return query
    return query.where(or_(Feedback.user_id == scope, Feedback.carried_from_id.is_not(None)))


def _current(session: Session, run_ids: list[uuid.UUID], scope: uuid.UUID | None = EVERYONE):
    return session.execute(visible(verdicts.current_with_values(run_ids), scope)).all()


def latest_feedback(
    session: Session, run_id: uuid.UUID, scope: uuid.UUID | None = EVERYONE
) -> list[tuple[Feedback, Extraction]]:
    """Per reviewed value of the run, its latest current feedback (of whichever reviewer `scope` sees), as the
    refiner learns from it; in the order the values were given feedback."""
    latest: dict[uuid.UUID, tuple[Feedback, Extraction]] = {}
    for feedback, value in _current(session, [run_id], scope):
        latest[value.id] = (feedback, value)
    return list(latest.values())


def corrections(
    session: Session, run_ids: list[uuid.UUID], scope: uuid.UUID | None = EVERYONE
) -> dict[tuple[str, str, int, str], tuple[Any, str]]:
    """(run, document, entity, variable) -> (final value, source) where a reviewer said the model was wrong: the
    latest correction wins (source `reviewer`; an empty one too), or the value is struck (`rejected`) when the
    reviewer did not say what it should be."""
    found: dict[tuple[str, str, int, str], tuple[Any, str]] = {}
    if not run_ids:
        return found
    for feedback, value in _current(session, run_ids, scope):
        if feedback.verdict != "wrong":
            continue
        key = (str(value.run_id), str(value.document_id), value.entity_index, value.variable_name)
        found[key] = (feedback.corrected_value, "reviewer") if feedback.has_correction else (None, REJECTED)
    return found


def run_agreement(
    session: Session, run: Run, project: Project, *, scope: uuid.UUID | None = EVERYONE, with_intervals: bool = True
) -> dict:
    """Per variable, the model against each reviewer's current feedback that `scope` sees, and reviewer against
    reviewer on values two of them coded (only when everybody's feedback counts)."""
    rows = _current(session, [run.id], scope)
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
    if scope is EVERYONE:
        pairs: dict[tuple[str, uuid.UUID | None, uuid.UUID | None], list[tuple[Any, Any]]] = defaultdict(list)
        for value_id, said in by_value.items():
            for first, second in itertools.combinations(sorted(said, key=str), 2):
                pairs[(names[value_id], first, second)].append((said[first], said[second]))
        for (name, first, second), items in sorted(pairs.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
            figures = agreement(items, types.get(name, "text"), with_intervals=with_intervals)
            between.append({"variable": name, "reviewers": [first, second], **figures})
    return {
        "run_id": run.id,
        "complete": scope is EVERYONE,
        "model_vs_reviewers": variables,
        "between_reviewers": between,
    }


def feedback_sheet(session: Session, run: Run, scope: uuid.UUID | None = EVERYONE) -> list[dict[str, Any]]:
    """Every current verdict and every missed or spurious entity `scope` sees, for the export's feedback sheet."""
    rows: list[dict[str, Any]] = []
    for feedback, value in _current(session, [run.id], scope):
        rows.append(
            {
                "document_id": str(value.document_id),
                "entity_index": value.entity_index,
                "variable": value.variable_name,
                "model_value": value.value,
                "verdict": feedback.verdict,
                "corrected_value": feedback.corrected_value if feedback.has_correction else "(not said)",
                "note": feedback.comment,
                "reviewer": str(feedback.user_id or ""),
                "at": feedback.created_at.isoformat(timespec="seconds") if feedback.created_at else "",
                "carried_from_run": str(feedback.carried_from_run_id or ""),
            }
        )
    entities = verdicts.entity_verdicts_of_run(run)
    if scope is not EVERYONE:
        entities = entities.where(EntityFeedback.user_id == scope)
    for entity in session.scalars(entities):
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
                "carried_from_run": "",
            }
        )
    return rows
