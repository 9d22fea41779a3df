"""A plan's budget on its card: allocation against spend, and the pace against the share of the window gone.

`Budget: $42,000 of $60,000 spent (70 %), 55 % of the window gone — ahead of pace`, with a bar in the pace's colour.
"""

from __future__ import annotations

from bot.cards.elements import Element, column, column_set, text_block
from bot.text.numbers import money_in_cents
from planner.domain.budgets import BudgetPace, BudgetStatus

PACE_LABELS: dict[BudgetPace, str] = {
    BudgetPace.NO_SPEND: "nothing spent yet",
    BudgetPace.ON_PACE: "on pace",
    BudgetPace.AHEAD: "ahead of pace",
    BudgetPace.BEHIND: "behind pace",
    BudgetPace.OVER: "over budget",
    BudgetPace.ENDED_WITHIN: "window ended within budget",
    BudgetPace.ENDED_OVER: "window ended over budget",
}
PACE_COLORS: dict[BudgetPace, str] = {
    BudgetPace.NO_SPEND: "default",
    BudgetPace.ON_PACE: "good",
    BudgetPace.AHEAD: "warning",
    BudgetPace.BEHIND: "default",
    BudgetPace.OVER: "attention",
    BudgetPace.ENDED_WITHIN: "good",
    BudgetPace.ENDED_OVER: "attention",
}
_BAR_STYLES = {"good": "good", "warning": "warning", "attention": "attention", "default": "accent"}
BAR_HEIGHT = "6px"


def _percent(share: float) -> str:
    """A whole percentage with thousands separators (`4,200` when spend runs far over a small allocation)."""
    return f"{round(share * 100):,}"


def budget_line(status: BudgetStatus) -> str:
    """`Budget: $42,000 of $60,000 spent (70 %), 55 % of the window gone — ahead of pace`."""
    currency = status.currency
    gone = f"{_percent(status.window_gone)} % of the window gone"
    if status.budget is None:
        return f"Budget: {money_in_cents(status.spent, currency)} spent, no allocation yet"
    share = status.spent_share or 0.0
    # A currency written by its code is said once, after the pair: `42,000 of 60,000 CAD`; a symbol goes with each.
    spent_part = money_in_cents(status.spent, currency).removesuffix(" " + currency)
    spent = f"{spent_part} of {money_in_cents(status.amount, currency)} spent"
    if status.pace in (BudgetPace.ENDED_WITHIN, BudgetPace.ENDED_OVER):
        return f"Budget: {spent} ({_percent(share)} %) — {PACE_LABELS[status.pace]}"
    return f"Budget: {spent} ({_percent(share)} %), {gone} — {PACE_LABELS[status.pace]}"


def allocation_line(status: BudgetStatus) -> str | None:
    """For a master plan with allocations: `Allocated $180,000 to tactical plans · $70,000 unallocated`."""
    if status.budget is None or not status.allocated:
        return None
    left = status.amount - status.allocated
    return (
        f"Allocated {money_in_cents(status.allocated, status.currency)} to tactical plans · "
        f"{money_in_cents(left, status.currency)} unallocated"
    )


def _bar(status: BudgetStatus) -> Element:
    share = status.spent_share or 0.0
    filled = min(max(round(share * 100), 0), 100)
    weight = min(max(filled, 1), 99)
    style = _BAR_STYLES[PACE_COLORS[status.pace]]
    done = style if filled > 0 else "emphasis"
    rest = "emphasis" if filled < 100 else style
    return column_set(
        [
            column([], width=str(weight), style=done, min_height=BAR_HEIGHT),
            column([], width=str(100 - weight), style=rest, min_height=BAR_HEIGHT, spacing="none"),
        ],
        spacing="small",
    )


def budget_section(status: BudgetStatus | None) -> list[Element]:
    """The budget lines of a plan's card section (none for a plan without budget or spend)."""
    if status is None:
        return []
    shown: list[Element] = [
        text_block(budget_line(status), color=PACE_COLORS[status.pace], spacing="small"),
    ]
    if status.budget is not None:
        shown.append(_bar(status))
    if (allocated := allocation_line(status)) is not None:
        shown.append(text_block(allocated, subtle=True, size="small", spacing="none"))
    return shown
