"""Agreement per variable, from reviewers' feedback: the model against each reviewer (the value, or the reviewer's
correction), and reviewer against reviewer where values were double-coded (once every reviewer is done); and the
reliability gate a full run passes (alpha at the project's threshold) unless the user overrides it with a reason."""

from __future__ import annotations

from sqlalchemy.orm import Session

from coderai_api.auth.service import Principal
from coderai_api.feedback.service import scope_of
from coderai_assets.domain import reviews
from coderai_assets.domain.reviews import EVERYONE, latest_reviewed_run, review_complete
from coderai_assets.errors import Conflict
from coderai_assets.storage.models import Project, Run, utcnow


def run_agreement(
    session: Session, principal: Principal | None, run: Run, project: Project, *, with_intervals: bool = True
) -> dict:
    """`principal` None: everybody's feedback; else what the caller may see (their own until every reviewer is
    done)."""
    scope = EVERYONE if principal is None else scope_of(session, principal, run.id)
    return reviews.run_agreement(session, run, project, scope=scope, with_intervals=with_intervals)


def check_reliability(session: Session, principal: Principal, project: Project, reason: str | None) -> dict | None:
    """Before a full run: the variables of the latest reviewed run whose alpha (model against reviewers) is under
    the threshold. With any, 409 `reliability_below_threshold`, unless `reason` is given: then the override to
    record on the run (and in its export's about sheet). None when nothing is under the threshold."""
    reviewed = latest_reviewed_run(session, project)
    if reviewed is None:
        return None
    if not review_complete(session, reviewed.id):
        # Until every reviewer is done, no figure is the team's, and none may be told from another's answers.
        if not reason:
            raise Conflict(
                f"The review of run {reviewed.id} is not complete: every reviewer must say it is done"
                " (POST /runs/{id}/review/done) before its figures gate a full run; or start it with"
                " reliability_override.reason.",
                code="review_incomplete",
            )
        return {**_override(principal, reviewed, reason, {}), "review_incomplete": True}
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
    return _override(principal, reviewed, reason, summary)


def _override(principal: Principal, reviewed: Run, reason: str, below: dict) -> dict:
    """What the run and its export's about sheet keep of a full run started past the gate."""
    return {
        "reason": reason,
        "by": str(principal.user_id),
        "at": utcnow().isoformat(timespec="seconds"),
        "reviewed_run_id": str(reviewed.id),
        "variables": below,
    }
