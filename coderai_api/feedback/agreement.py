"""Agreement per variable, from reviewers' feedback: the model against each reviewer (the value, or the reviewer's
correction), and reviewer against reviewer where values were double-coded (once every reviewer is done); and the
reliability gate a full run passes (alpha at the project's threshold) unless the user overrides it with a reason."""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from coderai_api.auth.service import Principal
from coderai_api.feedback.service import all_done
from coderai_assets.engine.agreement import UNKNOWN, agreement
from coderai_assets.errors import Conflict
from coderai_assets.storage.models import Extraction, Feedback, Project, PromptVersion, Run, utcnow
from coderai_assets.storage.specs import version_spec


def reviewer_value(feedback: Feedback, value: Extraction) -> Any:
    """What the reviewer says the value is: the model's when correct, the correction when wrong (a wrong verdict
    without one agrees with nothing)."""
    if feedback.verdict == "correct":
        return value.value
    return feedback.corrected_value if feedback.corrected_value is not None else UNKNOWN


def threshold(project: Project, variable: str) -> float:
    return float((project.reliability_thresholds or {}).get(variable, project.reliability_threshold))


def run_agreement(
    session: Session, principal: Principal | None, run: Run, project: Project, *, with_intervals: bool = True
) -> dict:
    """`principal` None: everybody's feedback (the gate); else the caller's own until every reviewer is done."""
    visible_all = principal is None or all_done(session, run.id)
    query = select(Feedback, Extraction).join(Extraction, Extraction.id == Feedback.extraction_id)
    query = query.where(Feedback.run_id == run.id, Feedback.superseded_at.is_(None))
    if not visible_all and principal is not None:
        query = query.where(Feedback.user_id == principal.user_id)
    rows = session.execute(query).all()
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
    if visible_all:
        pairs: dict[tuple[str, uuid.UUID | None, uuid.UUID | None], list[tuple[Any, Any]]] = defaultdict(list)
        for value_id, said in by_value.items():
            for first, second in itertools.combinations(sorted(said, key=str), 2):
                pairs[(names[value_id], first, second)].append((said[first], said[second]))
        for (name, first, second), items in sorted(pairs.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
            figures = agreement(items, types.get(name, "text"), with_intervals=with_intervals)
            between.append({"variable": name, "reviewers": [first, second], **figures})
    return {"run_id": run.id, "complete": visible_all, "model_vs_reviewers": variables, "between_reviewers": between}


def latest_reviewed_run(session: Session, project: Project) -> Run | None:
    return session.scalars(
        select(Run)
        .join(Feedback, Feedback.run_id == Run.id)
        .where(Run.project_id == project.id, Feedback.superseded_at.is_(None))
        .order_by(Run.created_at.desc())
        .limit(1)
    ).first()


def check_reliability(session: Session, principal: Principal, project: Project, reason: str | None) -> dict | None:
    """Before a full run: the variables of the latest reviewed run whose alpha (model against reviewers) is under
    the threshold. With any, 409 `reliability_below_threshold`, unless `reason` is given: then the override to
    record on the run (and in its export's about sheet). None when nothing is under the threshold."""
    reviewed = latest_reviewed_run(session, project)
    if reviewed is None:
        return None
    figures = run_agreement(session, None, reviewed, project, with_intervals=False)
    below = {v["variable"]: v for v in figures["model_vs_reviewers"] if not v["passes"]}
    if not below:
        return None
    summary = {
        name: {"alpha": v["alpha"], "accuracy": v["accuracy"], "n": v["n"], "threshold": v["threshold"]}
        for name, v in below.items()
    }
    if not reason:
        listed = ", ".join(f"{n} (alpha {v['alpha']}, threshold {v['threshold']})" for n, v in summary.items())
        raise Conflict(
            f"Variables under the reliability threshold in run {reviewed.id}: {listed}. Refine them and sample again,"
            " or start the full run with reliability_override.reason.",
            code="reliability_below_threshold",
        )
    return {
        "reason": reason,
        "by": str(principal.user_id),
        "at": utcnow().isoformat(timespec="seconds"),
        "reviewed_run_id": str(reviewed.id),
        "variables": summary,
    }
