"""Agent tasks: recorded (the agent sensor launches them), read, and accepted. Accepting a refinement changes the
live variables, so the next run's prompt version is the refined codebook and asks only the changed variables again
(the cache answers the others); accepting suggestions creates variables. Both under the project row's lock, and a
task is applied once: two accepts at once, or an accept after the variables changed, are refused."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from coderai_api.agents.schemas import AcceptRequest, AgentTaskRead, RefineRequest, SuggestRequest
from coderai_api.auth.service import Principal
from coderai_api.feedback.service import is_coder, scope_of
from coderai_api.pagination import PageRequest
from coderai_api.projects.schemas import VariableCreate, VariableUpdate
from coderai_api.projects.service import (
    create_variable,
    record_codebook,
    update_variable,
    variable_read,
)
from coderai_api.prompts.service import diff
from coderai_api.runs.service import model_limits
from coderai_assets.domain.reviews import visible
from coderai_assets.domain.specs import ensure_prompt_version, lock_project, project_spec
from coderai_assets.engine.codebook import variables_hash
from coderai_assets.engine.model_limits import model_label
from coderai_assets.errors import Conflict, InvalidInput, NotFound
from coderai_assets.pipeline.refine import Refinement, RefineOptions, estimate_refinement, reviewed_run
from coderai_assets.settings import Settings
from coderai_assets.storage import repositories
from coderai_assets.storage.models import AgentTask, AgentTaskKind, AgentTaskStatus, Project, utcnow
from coderai_assets.storage.repositories import agent_tasks, documents, projects, verdicts


def _record(
    session: Session, project: Project, principal: Principal, kind: AgentTaskKind, request: dict[str, Any]
) -> AgentTask:
    task = AgentTask(
        tenant_id=project.tenant_id,
        project_id=project.id,
        kind=kind,
        status=AgentTaskStatus.queued,
        request=request,
        created_by=principal.user_id,
    )
    session.add(task)
    session.flush()
    return task


def request_suggestions(session: Session, project: Project, principal: Principal, body: SuggestRequest) -> AgentTask:
    if body.document_ids:
        if documents.count(session, project, list(body.document_ids)) != len(set(body.document_ids)):
            raise NotFound("A document to read is not in the project.", code="document_not_found")
    elif not documents.count(session, project):
        raise Conflict("The project has no documents: upload a few first.", code="no_documents")
    return _record(session, project, principal, AgentTaskKind.suggest, body.model_dump(mode="json"))


def _check_variables(session: Session, project: Project, names: list[str]) -> None:
    unknown = sorted(set(names) - {v.spec.name for v in projects.variables(session, project)})
    if unknown:
        raise InvalidInput(f"Unknown variables: {', '.join(unknown)}.", code="unknown_variable")


def request_refinement(session: Session, project: Project, principal: Principal, body: RefineRequest) -> AgentTask:
    """Checked now, so that a request that cannot succeed says so at once: the run, and feedback on two documents.
    It learns only from the feedback the requester may see (their own, while the review is not complete)."""
    run = reviewed_run(session, project, body.run_id)
    scope = scope_of(session, principal, run.id)
    reviewed = session.scalar(visible(verdicts.reviewed_documents_of_run(run), scope))
    if (reviewed or 0) < 2:
        raise Conflict(
            f"The run has feedback on {reviewed or 0} document(s); the refiner needs at least two, one to write "
            "the proposal from and one to score it on.",
            code="too_few_reviewed_documents",
        )
    _check_variables(session, project, body.variables)
    request = {**body.model_dump(mode="json"), "run_id": str(run.id), "feedback_of": str(scope) if scope else None}
    return _record(session, project, principal, AgentTaskKind.refine, request)


def estimate(
    session: Session, settings: Settings, project: Project, principal: Principal, body: RefineRequest
) -> dict[str, Any]:
    """What the refinement this body asks for would cost (pipeline/refine.py `estimate_refinement`), from the
    feedback the requester may see, as the refinement itself."""
    _check_variables(session, project, body.variables)
    run = reviewed_run(session, project, body.run_id)
    options = RefineOptions(
        run_id=run.id,
        feedback_scope=scope_of(session, principal, run.id),
        variables=tuple(body.variables),
        held_out_fraction=body.held_out_fraction,
        seed=body.seed,
        with_quotes=settings.request_quotes,
        max_output_tokens=settings.llm_max_output_tokens,
    )
    return estimate_refinement(
        session,
        project,
        options,
        limits=model_limits(settings),
        model_name=model_label(settings),
        chunk_chars=settings.chunk_chars,
        overlap=settings.chunk_overlap_chars,
    )


def shown_to(principal: Principal, task: AgentTask) -> AgentTask | dict[str, Any]:
    """The task as the caller may read it: a viewer does not see the reviewers' corrected values a refinement was
    scored on (held-out items' `reviewer`)."""
    if is_coder(principal) or task.kind != AgentTaskKind.refine or not task.result:
        return task
    shown = AgentTaskRead.model_validate(task).model_dump(mode="json")
    refinement = Refinement.model_validate(task.result).model_dump(mode="json")
    shown["result"] = {
        **refinement,
        "items": [{k: v for k, v in item.items() if k != "reviewer"} for item in refinement["items"]],
    }
    return shown


def get_task(session: Session, tenant_id: uuid.UUID, task_id: uuid.UUID, *, lock: bool = False) -> AgentTask:
    task = agent_tasks.get(session, tenant_id, task_id, lock=lock)
    if task is None:
        raise NotFound("No such agent task.", code="agent_task_not_found")
    return task


def list_tasks(
    session: Session,
    principal: Principal,
    project: Project,
    page: PageRequest,
    status: AgentTaskStatus | None,
    kind: AgentTaskKind | None,
) -> dict:
    query = agent_tasks.of_project_query(project, status=status, kind=kind)
    found = repositories.keyset_page(session, query, name="agent-tasks", scalars=True, **page.args)
    return page.answer(found, lambda task: shown_to(principal, task))


def cancel(session: Session, principal: Principal, task_id: uuid.UUID) -> AgentTask:
    """A queued task is never launched; a running one makes no further call (its gate reads the status)."""
    task = get_task(session, principal.tenant_id, task_id, lock=True)
    if task.status.ended:
        raise Conflict(f"The task has ended ({task.status}).", code="agent_task_ended")
    task.status, task.error_code, task.finished_at = AgentTaskStatus.canceled, "canceled", utcnow()
    return task


def _chosen(body: AcceptRequest, offered: list[str]) -> list[str]:
    chosen = offered if body.variables is None else body.variables
    unknown = sorted((set(chosen) | set(body.edits)) - set(offered))
    if unknown:
        raise InvalidInput(f"The task offers no variable {', '.join(unknown)}.", code="unknown_variable")
    return [name for name in offered if name in chosen]


def accept(
    session: Session, principal: Principal, task_id: uuid.UUID, body: AcceptRequest, *, with_quotes: bool
) -> dict[str, Any]:
    task = get_task(session, principal.tenant_id, task_id, lock=True)  # two accepts at once: one waits, then sees
    if task.status != AgentTaskStatus.succeeded or task.result is None:
        raise Conflict(f"The task is {task.status}: nothing to accept yet.", code="agent_task_not_ready")
    if task.applied is not None:
        raise Conflict("The task was accepted already.", code="agent_task_applied")
    project = projects.of_task(session, task)
    lock_project(session, project)
    if task.kind == AgentTaskKind.refine:
        return _accept_refinement(session, principal, task, project, body, with_quotes)
    return _accept_suggestions(session, principal, task, project, body, with_quotes)


def _applied(task: AgentTask, principal: Principal, applied: dict[str, Any]) -> None:
    task.applied, task.applied_by, task.applied_at = applied, principal.user_id, utcnow()


def _accept_refinement(
    session: Session, principal: Principal, task: AgentTask, project: Project, body: AcceptRequest, with_quotes: bool
) -> dict[str, Any]:
    result = Refinement.model_validate(task.result)
    if result.verdict != "offered":
        raise Conflict(f"The refinement was not offered: {result.reason}.", code="refinement_rejected")
    if variables_hash(project_spec(session, project)) != result.base_hash:
        raise Conflict(
            "The codebook changed since the refinement was proposed: ask for a new one.", code="refinement_stale"
        )
    proposals = {p.variable: p for p in result.proposals}
    chosen = _chosen(body, list(proposals))
    live = {v.spec.name: v for v in projects.variables(session, project)}
    changed = []
    for name in chosen:
        definition = {k: v for k, v in proposals[name].definition.items() if k != "name"}
        try:
            update = VariableUpdate.model_validate({**definition, **body.edits.get(name, {})})
        except ValueError as exc:
            raise InvalidInput(f"The edit of {name} is not valid: {exc}", code="invalid_variable") from exc
        changed.append(variable_read(update_variable(session, project, live[name].id, update)).model_dump(mode="json"))
    before = ensure_prompt_version(session, project, with_quotes).version
    _applied(task, principal, {"variables": chosen, "edited": sorted(body.edits), "prompt_version": before})
    previous = before - 1 if before > 1 else None
    return {
        "task": task,
        "variables": changed,
        "prompt_version": before,
        "diff": diff(session, project, before, previous) if previous else None,
    }


def _accept_suggestions(
    session: Session, principal: Principal, task: AgentTask, project: Project, body: AcceptRequest, with_quotes: bool
) -> dict[str, Any]:
    suggestions = {s["definition"]["name"]: s for s in (task.result or {}).get("suggestions", [])}
    chosen = _chosen(body, list(suggestions))
    created = []
    for name in chosen:
        try:
            variable = VariableCreate.model_validate({**suggestions[name]["definition"], **body.edits.get(name, {})})
        except ValueError as exc:
            raise InvalidInput(f"The suggestion {name} is not valid: {exc}", code="invalid_variable") from exc
        created.append(variable_read(create_variable(session, project, variable)).model_dump(mode="json"))
    record_codebook(session, project, with_quotes=with_quotes)
    _applied(
        task,
        principal,
        {"variables": [c["name"] for c in created], "dropped": [n for n in suggestions if n not in chosen]},
    )
    return {"task": task, "variables": created}
