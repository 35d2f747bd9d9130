"""Spending caps against the database: every call asks the gate first (one short transaction: the run's and its
workspace's month's spend and caps), and every committed answer adds its cost to both, in its own transaction."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from coderai_assets.engine.spending import Prices, Spent, check_caps
from coderai_assets.storage.models import Run, WorkspaceSpend, utcnow
from coderai_assets.storage.repositories import accounts, runs

SessionScope = Callable[[uuid.UUID | None], AbstractContextManager[Session]]


def this_month():
    return utcnow().date().replace(day=1)


def record_spend(session: Session, tenant_id: uuid.UUID, run_id: uuid.UUID, cost: float) -> None:
    """Adds `cost` to the run and to its workspace's month (in the caller's transaction, with the answer)."""
    if cost <= 0:
        return
    session.query(Run).filter(Run.id == run_id).update({Run.spent_usd: Run.spent_usd + cost})
    record_workspace_spend(session, tenant_id, cost)


def record_workspace_spend(session: Session, tenant_id: uuid.UUID, cost: float) -> None:
    """Adds `cost` to the workspace's month (the caller's transaction): runs and agent tasks alike."""
    if cost <= 0:
        return
    statement = insert(WorkspaceSpend).values(tenant_id=tenant_id, month=this_month(), spent_usd=cost)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[WorkspaceSpend.tenant_id, WorkspaceSpend.month],
            set_={"spent_usd": WorkspaceSpend.spent_usd + statement.excluded.spent_usd},
        )
    )


def month_spent(session: Session, tenant_id: uuid.UUID, default_month_cap: float | None) -> tuple[float, float | None]:
    """(what the workspace spent this month, its monthly cap or None)."""
    cap = accounts.monthly_budget(session, tenant_id)
    month = accounts.month_spent(session, tenant_id, this_month())
    return month or 0.0, cap if cap is not None else default_month_cap


def spent(session: Session, tenant_id: uuid.UUID, run_id: uuid.UUID, default_month_cap: float | None) -> Spent:
    run_spent, run_cap = runs.spend(session, run_id)
    month, month_cap = month_spent(session, tenant_id, default_month_cap)
    return Spent(run_spent or 0.0, run_cap, month, month_cap)


@dataclass
class SpendingGate:
    """Called before each call with its prompt's tokens and its answer budget; raises BudgetExceeded.

    With no cap on the run or its workspace (the usual case) a call costs no query: whether there is one is read
    at most every CAPS_SECONDS, so a budget set while the run works applies within that; with a cap, every call
    reads what was spent."""

    session: SessionScope
    tenant_id: uuid.UUID
    run_id: uuid.UUID
    prices: Prices
    default_month_cap: float | None = None
    _capped: bool | None = None
    _read_at: float = 0.0

    CAPS_SECONDS = 5.0

    def _has_caps(self, session: Session) -> bool:
        run_cap, month_cap = runs.caps(session, self.run_id)
        return run_cap is not None or month_cap is not None or self.default_month_cap is not None

    def __call__(self, input_tokens: int, output_tokens: int) -> None:
        next_cost = self.prices.cost(input_tokens, output_tokens)
        if self._capped is False and time.monotonic() - self._read_at < self.CAPS_SECONDS:
            return
        with self.session(self.tenant_id) as session:
            self._capped, self._read_at = self._has_caps(session), time.monotonic()
            if self._capped:
                check_caps(spent(session, self.tenant_id, self.run_id, self.default_month_cap), next_cost)
