"""Spending caps, as pure rules: what a call may cost at most, and whether it may still be made.

A call is refused before it is made when what is already spent plus its most expensive outcome (its prompt and the
whole answer budget) would pass a cap, so spending passes a cap by no more than the calls already in flight."""

from __future__ import annotations

from dataclasses import dataclass

from coderai_assets.errors import StopsWork

BUDGET_EXCEEDED = "budget_exceeded"


class BudgetExceeded(StopsWork):
    """Not the provider's refusal but ours; it stops the work the same way."""

    code = BUDGET_EXCEEDED


@dataclass(frozen=True)
class Prices:
    """USD per million tokens."""

    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6


@dataclass(frozen=True)
class Spent:
    """What a run and its workspace's month have spent, and their caps (None: no cap)."""

    run: float
    run_cap: float | None
    month: float
    month_cap: float | None


def check_caps(spent: Spent, next_cost: float) -> None:
    """Raises BudgetExceeded when a call costing up to `next_cost` would pass the run's or the month's cap."""
    if spent.run_cap is not None and spent.run + next_cost > spent.run_cap:
        raise BudgetExceeded(
            f"the run has spent ${spent.run:.4f} of its cap of ${spent.run_cap:.4f}; the next call may cost "
            f"${next_cost:.4f}: raise the cap and retry the run"
        )
    if spent.month_cap is not None and spent.month + next_cost > spent.month_cap:
        raise BudgetExceeded(
            f"the workspace has spent ${spent.month:.4f} of its monthly budget of ${spent.month_cap:.4f}; the next "
            f"call may cost ${next_cost:.4f}: raise the budget and retry the run"
        )
