"""Agent tasks: the refiner's and the co-pilot's work, recorded by the API and done here, in a Dagster run the agent
sensor launches, so that no request waits on a model. A task moves queued -> running -> succeeded, failed (with a
stable code) or canceled; its calls count against the workspace's share of the rate limit and its monthly budget,
and what they cost is added to the month's spending."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy.orm import Session

from coderai_assets.engine.budget import answer_tokens
from coderai_assets.engine.llm import Extractor
from coderai_assets.engine.model_limits import ModelLimits
from coderai_assets.engine.spending import Prices, Spent, check_caps
from coderai_assets.errors import Canceled, CoderAIError
from coderai_assets.pipeline.copilot import SuggestOptions, suggest
from coderai_assets.pipeline.refine import RefineOptions, Tally, refine
from coderai_assets.pipeline.spending import month_spent, record_workspace_spend
from coderai_assets.settings import Settings
from coderai_assets.storage.models import AgentTask, AgentTaskKind, AgentTaskStatus, utcnow
from coderai_assets.storage.repositories import agent_tasks

SessionScope = Callable[[uuid.UUID | None], AbstractContextManager[Session]]


def task_gate(
    scope: SessionScope,
    task_id: uuid.UUID,
    tenant_id: uuid.UUID,
    prices: Prices,
    default_cap: float | None,
    tally: Tally,
):
    """Before each agent call, one short transaction: refused (Canceled) once the task is cancelled, and
    (BudgetExceeded) when the call could take the workspace past its monthly budget, counting the task's calls so
    far (recorded with its outcome)."""

    def gate(input_tokens: int, output_tokens: int) -> None:
        with scope(tenant_id) as session:
            if agent_tasks.status(session, task_id) == AgentTaskStatus.canceled:
                raise Canceled("the task was cancelled")
            month, cap = month_spent(session, tenant_id, default_cap)
        so_far = prices.cost(tally.input_tokens, tally.output_tokens)
        check_caps(Spent(0.0, None, month + so_far, cap), prices.cost(input_tokens, output_tokens))

    return gate


def _options(task: AgentTask, settings: Settings, limits: ModelLimits) -> RefineOptions | SuggestOptions:
    request = task.request
    if task.kind == AgentTaskKind.refine:
        return RefineOptions(
            run_id=uuid.UUID(request["run_id"]) if request.get("run_id") else None,
            variables=tuple(request.get("variables") or ()),
            held_out_fraction=float(request.get("held_out_fraction", 0.5)),
            seed=int(request.get("seed", 0)),
            feedback_scope=uuid.UUID(request["feedback_of"]) if request.get("feedback_of") else None,
            with_quotes=settings.request_quotes,
            uncertainty_threshold=settings.uncertainty_threshold,
            context_tokens=limits.context_tokens,
            max_output_tokens=settings.llm_max_output_tokens,
            concurrency=min(8, settings.llm_concurrency),
        )
    return SuggestOptions(
        document_ids=tuple(uuid.UUID(d) for d in request.get("document_ids") or ()),
        documents=int(request.get("documents", 3)),
        max_variables=int(request.get("max_variables", 8)),
    )


def run_task(
    scope: SessionScope,
    task_id: uuid.UUID,
    tenant_id: uuid.UUID,
    *,
    extractor_for: Callable[[int | None], Extractor],
    parse: Callable[[str], str],
    settings: Settings,
    limits: ModelLimits,
    dagster_run_id: str | None = None,
) -> str:
    """Does the task and records its outcome; returns its status. A task already ended is left as it is (a
    re-executed Dagster run); one found running was cut short (its worker died) and is done again."""
    with scope(tenant_id) as session:
        task = session.get(AgentTask, task_id)
        if task is None or task.status.ended:
            return task.status if task is not None else AgentTaskStatus.failed
        task.status, task.started_at, task.dagster_run_id = AgentTaskStatus.running, utcnow(), dagster_run_id
        project_id = task.project_id
        options = _options(task, settings, limits)
    prices = Prices(limits.input_price_per_mtok, limits.output_price_per_mtok)

    def project_scope() -> AbstractContextManager[Session]:
        return scope(tenant_id)

    result: dict[str, Any] | None = None
    error: tuple[str, str] | None = None
    tally = Tally()  # kept when the task fails part way: its calls were paid for
    gate = task_gate(scope, task_id, tenant_id, prices, settings.workspace_monthly_budget_usd, tally)
    try:
        if isinstance(options, RefineOptions):
            extractor = extractor_for(None).bound_to(str(tenant_id), gate)
            result = refine(project_scope, project_id, extractor, options, tally).model_dump(mode="json")
        else:
            # The suggestions of a whole codebook are a longer answer than one chunk's values.
            budget = answer_tokens(options.max_variables * 3, settings.llm_max_output_tokens)
            extractor = extractor_for(budget).bound_to(str(tenant_id), gate)
            result = suggest(project_scope, project_id, extractor, parse, options, tally)
    except CoderAIError as exc:  # a provider's refusal, a cap, a cancellation, or the agent's own
        error = (exc.code, exc.message)
    except Exception as exc:  # recorded, not raised: a retry of the Dagster run would not fare better
        error = ("internal_error", f"{type(exc).__name__}: {exc}")
    with scope(tenant_id) as session:
        task = agent_tasks.get(session, tenant_id, task_id, lock=True)
        assert task is not None  # the same task, read at the start of this function
        if tally.calls:
            task.llm_calls, task.input_tokens, task.output_tokens = tally.calls, tally.input_tokens, tally.output_tokens
            task.cost_usd = prices.cost(tally.input_tokens, tally.output_tokens)
            record_workspace_spend(session, tenant_id, task.cost_usd)
        task.finished_at = task.finished_at or utcnow()
        if task.status == AgentTaskStatus.canceled:
            pass  # cancelled while it worked: what its calls cost is recorded, nothing else
        elif error is not None:
            task.status, task.error_code, task.error = AgentTaskStatus.failed, error[0], error[1][:2000]
        else:
            task.status, task.result = AgentTaskStatus.succeeded, result
        return task.status
