"""The plan overview card: a master plan, its tactical plans and their recent weekly plans, with progress and health.

Adaptive Cards have no progress bar, so one is drawn as a ColumnSet of two columns whose relative widths are the
done and remaining shares: the done column takes the health colour, the rest the neutral `emphasis` style.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from bot.cards.actions import VERB_MY_TASKS, VERB_SHOW_PLAN, execute
from bot.cards.budget import budget_section
from bot.cards.edit import plan_edit_button, undo_button
from bot.cards.elements import (
    Element,
    adaptive_card,
    bullet_list,
    column,
    column_set,
    container,
    fact_set,
    folded,
    heading,
    largest_fitting,
    subheading,
    text_block,
)
from bot.cards.markdown import markdown
from bot.cards.task_list import VERB_TASKS
from bot.cards.wording import HEALTH_COLORS, HEALTH_LABELS, count_of, day_label, plan_ref, window_label
from bot.text.health import next_step_text, reason_text, reason_that_matters_most
from bot.text.numbers import figure, quantity
from bot.text.people import person_name
from planner.domain.budgets import BudgetStatus
from planner.domain.model import Health, Plan, Tier, iso_week_of
from planner.domain.rollup import MetricPace, PlanRollup

PLAN_CARD = "plan"
"""The `card` the plan card's Refresh names, so the plan is redrawn in place of the card clicked."""
MAX_TACTICAL_PLANS = 12
TACTICAL_UNFOLDED = 2
"""Tactical plans shown before "Show more": the rest fold, so the card stays within a Teams screen."""
MAX_REASONS = 3
MAX_WEEKLY_REASONS = 2
BAR_HEIGHT = "8px"
BAR_EMPTY_STYLE = "emphasis"


def percent_done(progress: float) -> int:
    """The whole percentage shown for a progress fraction, clamped to 0-100."""
    return min(max(round(progress * 100), 0), 100)


def progress_bar(progress: float, health: Health, *, element_id: str | None = None) -> Element:
    """A bar filled to `progress` in the colour of `health`: two columns weighted done/rest out of 100."""
    # Both weights stay at least 1 (a zero weight is not a valid relative width and renderers differ on it);
    # at 0 % and 100 % the sliver is painted like its neighbour, so the bar still reads empty or full.
    filled = percent_done(progress)
    filled_weight = min(max(filled, 1), 99)
    fill_style = HEALTH_COLORS[health]
    done_style = fill_style if filled > 0 else BAR_EMPTY_STYLE
    rest_style = BAR_EMPTY_STYLE if filled < 100 else fill_style
    return column_set(
        [
            column([], width=str(filled_weight), style=done_style, min_height=BAR_HEIGHT),
            column([], width=str(100 - filled_weight), style=rest_style, min_height=BAR_HEIGHT, spacing="none"),
        ],
        element_id=element_id,
        spacing="small",
    )


def progress_bar_id(plan_id: int) -> str:
    """The element id of a plan's progress bar, unique within the card."""
    return f"progress-{plan_ref(plan_id)}"


def progress_text(rollup: PlanRollup) -> str:
    """`31 of 50 tasks done, 62 %`, or `No tasks yet`."""
    counts = rollup.counts
    if not counts.total:
        return "No tasks yet"
    return f"{counts.done} of {count_of(counts.total, 'task')} done, {percent_done(rollup.progress)} %"


def health_label(health: Health) -> Element:
    """`On track`, `At risk` or `Off track` in the health's colour."""
    return text_block(HEALTH_LABELS[health], weight="bolder", color=HEALTH_COLORS[health])


def _owner(plan: Plan, names: Mapping[str, str]) -> str:
    return person_name(plan.owner, names)


def _with_health(text: Element, health: Health) -> Element:
    return column_set([column([text], width="stretch"), column([health_label(health)], width="auto")], spacing="small")


def _reasons(rollup: PlanRollup, most: int = MAX_REASONS) -> list[Element]:
    if rollup.health in (Health.ON_TRACK, Health.MET) or not rollup.reasons:
        return []
    shown = [reason_text(reason) for reason in rollup.reasons[:most]]
    if len(rollup.reasons) > most:
        shown.append(f"and {len(rollup.reasons) - most} more")
    return [bullet_list(shown, subtle=True)]


def metric_fact(pace: MetricPace) -> tuple[str, str]:
    """A KPI as a fact: (`SQLs`, `240 of 500 (expected 250 by now)`), with the health when it is not on track."""
    metric = pace.metric
    target = quantity(metric.target, metric.unit, name=metric.name)
    expected = (
        "(window ended)"
        if pace.health.is_final
        else f"(expected {quantity(pace.expected, metric.unit, name=metric.name)} by now)"
    )
    if pace.actual is None:
        none = "No reading in its window" if pace.health.is_final else "No reading yet"
        value = f"{none}; target {target} {expected}"
    else:
        value = f"{figure(pace.actual, metric.unit, name=metric.name)} of {target} {expected}"
    if pace.health is not Health.ON_TRACK:
        value = f"{value} · {HEALTH_LABELS[pace.health]}"
    return metric.name, value


def _quoted_commands(text: str) -> str:
    """Commands in quotes rather than backticks: a card's TextBlock shows backticks as they are."""
    return re.sub(r"`([^`]*)`", "\u201c\\1\u201d", text)


def _headline(rollup: PlanRollup) -> list[Element]:
    """The reason that matters most, and the next step for it: what a leader reads before the detail."""
    if rollup.health in (Health.ON_TRACK, Health.MET):
        return []
    reason = reason_that_matters_most(rollup.reasons)
    if reason is None:
        return []
    return [
        text_block(f"Why: {reason_text(reason)}", color=HEALTH_COLORS[rollup.health], spacing="small"),
        text_block(f"Next: {_quoted_commands(next_step_text(reason, plan_ref(rollup.plan.id)))}", spacing="none"),
    ]


def _metrics(rollup: PlanRollup) -> list[Element]:
    if not rollup.metrics:
        return []
    return [fact_set([metric_fact(pace) for pace in rollup.metrics])]


def _bar(rollup: PlanRollup) -> Element:
    return progress_bar(rollup.progress, rollup.health, element_id=progress_bar_id(rollup.plan.id))


def _weekly_rows(weeklies: Sequence[PlanRollup], parent: Plan, names: Mapping[str, str], today: date) -> list[Element]:
    recent = {iso_week_of(today - timedelta(days=7)): "Last week", iso_week_of(today): "This week"}
    rows: list[Element] = []
    for weekly in weeklies:
        plan = weekly.plan
        week = plan.iso_week or iso_week_of(plan.window.start)
        if week not in recent:
            continue
        parts = [f"{recent[week]} ({week})", plan_ref(plan.id), progress_text(weekly)]
        if plan.owner != parent.owner:
            parts.append(_owner(plan, names))
        parts.append(HEALTH_LABELS[weekly.health])
        # One coloured line rather than a ColumnSet: a weekly row costs half the bytes, so 12 tactical plans fit.
        rows.append(text_block(" · ".join(parts), size="small", color=HEALTH_COLORS[weekly.health], spacing="small"))
        rows.extend(_reasons(weekly, MAX_WEEKLY_REASONS))
    return rows


def _tactical_section(
    tactical: PlanRollup, names: Mapping[str, str], today: date, budget: BudgetStatus | None = None
) -> Element:
    plan = tactical.plan
    window = window_label(plan.window.start, plan.window.end)
    weeklies = [child for child in tactical.children if child.plan.tier is Tier.WEEKLY]
    return container(
        [
            _with_health(text_block(markdown("**{}** · {}", plan.title, plan_ref(plan.id))), tactical.health),
            text_block(f"{_owner(plan, names)} · {window} · {progress_text(tactical)}", subtle=True, spacing="none"),
            # A plan with no tasks yet says so; an empty bar under it would only be a grey box.
            *([_bar(tactical)] if tactical.counts.total else []),
            *_reasons(tactical),
            *_metrics(tactical),
            *budget_section(budget),
            *_weekly_rows(weeklies, plan, names, today),
        ],
        separator=True,
        spacing="medium",
    )


def _archived(plan: Plan) -> list[Element]:
    """An archived plan's card says so: it looks like any other, and the leader just asked for it to be put away."""
    if plan.archived_at is None:
        return []
    ref = plan_ref(plan.id)
    return [
        text_block(
            f"Archived on {day_label(plan.archived_at.date(), with_year=True)}: kept for history, left out of the "
            f"plan list; unarchive {ref} brings it back.",
            color="warning",
        )
    ]


def plan_overview(
    rollup: PlanRollup,
    *,
    names: Mapping[str, str],
    today: date,
    budgets: Mapping[int, BudgetStatus] | None = None,
    note: str | None = None,
    undo: bool = False,
) -> dict[str, Any]:
    """The plan tree with progress bars, health, reasons and KPIs; weekly plans of this week and the last only.

    An Edit button turns the card into the plan's form; `note` (what just changed) goes on top, and with `undo` an
    Undo button takes back the edit that made this version."""
    plan = rollup.plan
    head: list[Element] = [text_block(note, weight="bolder", color="accent")] if note else []
    head += [
        heading(plan.title),
        text_block(
            f"{plan_ref(plan.id)} · {_owner(plan, names)} · {window_label(plan.window.start, plan.window.end)}",
            subtle=True,
            spacing="none",
        ),
        *_archived(plan),
        _bar(rollup),
        _with_health(text_block(progress_text(rollup)), rollup.health),
        *_headline(rollup),
        *_metrics(rollup),
        *budget_section((budgets or {}).get(plan.id)),
    ]
    # The plans still running come first: in the last month of a quarter, the two months over (met or missed)
    # would otherwise take the unfolded places and hide the one the leader can still act on.
    tacticals = sorted(
        (child for child in rollup.children if child.plan.tier is Tier.TACTICAL),
        key=lambda child: child.health.is_final,
    )
    weeklies = [child for child in rollup.children if child.plan.tier is Tier.WEEKLY]
    actions = [
        execute("Task list", VERB_TASKS, {"plan": plan_ref(plan.id)}),
        execute("My tasks", VERB_MY_TASKS, {}),
        execute("Refresh", VERB_SHOW_PLAN, {"plan": plan.id, "card": PLAN_CARD}),
        plan_edit_button(plan, card=PLAN_CARD),
    ]
    if undo:
        actions.append(undo_button("plan", plan.id, plan.version))

    def build(shown: int) -> Element:
        body = list(head)
        if tacticals:
            body.append(subheading("Tactical plans"))
            sections = [
                _tactical_section(tactical, names, today, (budgets or {}).get(tactical.plan.id))
                for tactical in tacticals[:shown]
            ]
            body.extend(sections[:TACTICAL_UNFOLDED])
            body.extend(folded("more-tactical", sections[TACTICAL_UNFOLDED:]))
            hidden = len(tacticals) - shown
            if hidden > 0:
                body.append(text_block(f"and {hidden} more tactical {'plan' if hidden == 1 else 'plans'}", subtle=True))
        elif plan.tier is Tier.MASTER:
            body.append(text_block("No tactical plans yet.", subtle=True))
        body.extend(_weekly_rows(weeklies, plan, names, today))
        return adaptive_card(body, actions)

    return largest_fitting(build, min(len(tacticals), MAX_TACTICAL_PLANS))
