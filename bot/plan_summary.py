"""A compact summary of the plans and tasks a caller can see, for the assistant's request.

Built from the plan services (the active master plan's rollup and its tasks), so every id in it is a real one; bounded
in size whatever the plan's, and every title, name and reason quoted as a JSON string, so a title cannot pass for a
line of the summary (or an instruction).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date

from bot.operations.base import Context
from bot.text.health import reason_text
from bot.text.numbers import figure, quantity
from planner.domain.model import Plan, Task, Tier
from planner.domain.rollup import PlanRollup

MAX_TASKS = 30
"""Tasks listed at most: the open ones first, soonest due first."""
MAX_CHARS = 6_000
"""Characters of summary at most; what does not fit is left to the tools."""


async def plan_summary(context: Context, *, max_tasks: int = MAX_TASKS, max_chars: int = MAX_CHARS) -> str:
    """The active master plan's tree (ids, titles, owners' names, windows, health, KPIs) and its tasks (ids, titles,
    owners' names, due dates, statuses), or the master plans to choose from when no one is active today."""
    today = context.today
    found = await context.plans.owned_rollup(None, today)
    if found is None:
        masters = await context.plans.list_plans(Tier.MASTER)
        if not masters:
            return "There is no master plan yet."
        names = await context.display_names(m.owner for m in masters)
        lines = ["No one master plan is active today; the master plans are:"]
        lines += [_plan_line(m, names) for m in masters]
        return _bounded(lines, max_chars)
    tree = found.rollup
    plans = list(_walk(tree, 0, today))
    tasks = await context.plans.list_tasks(tree.plan.id)
    open_tasks = [t for t in tasks if t.status.is_open]
    shown = open_tasks[:max_tasks]
    names = await context.display_names([r.plan.owner for r, _ in plans] + [t.owner for t in shown])
    lines = [f"The plans and tasks {_quoted(context.caller.name)} can see, as of {today.isoformat()}:"]
    for rollup, depth in plans:
        lines.append("  " * depth + _rollup_line(rollup, names))
    done = len(tasks) - len(open_tasks)
    lines.append(f"Open tasks ({len(shown)} of {len(open_tasks)} shown, soonest due first; {done} done):")
    lines += [_task_line(t, names, today) for t in shown]
    return _bounded(lines, max_chars)


def _walk(rollup: PlanRollup, depth: int, today: date) -> Iterable[tuple[PlanRollup, int]]:
    plan = rollup.plan
    if plan.tier is Tier.WEEKLY and not plan.window.includes(today):
        return
    yield rollup, depth
    for child in rollup.children:
        yield from _walk(child, depth + 1, today)


def _plan_line(plan: Plan, names: dict[str, str]) -> str:
    window = f"{plan.window.start.isoformat()} to {plan.window.end.isoformat()}"
    week = f" week {plan.iso_week}" if plan.iso_week else ""
    owner = _quoted(names.get(plan.owner, plan.owner))
    return f"P{plan.id} {plan.tier.value}{week} {_quoted(plan.title)}, {window}, owner {owner}"


def _rollup_line(rollup: PlanRollup, names: dict[str, str]) -> str:
    counts = rollup.counts
    line = f"{_plan_line(rollup.plan, names)}: {rollup.health.value}"
    if rollup.reasons:
        line += f" ({_quoted(reason_text(rollup.reasons[0]))})"
    line += f"; {counts.done} of {counts.total} tasks done"
    if counts.overdue:
        line += f", {counts.overdue} overdue"
    if counts.blocked:
        line += f", {counts.blocked} blocked"
    for pace in rollup.metrics:
        metric = pace.metric
        actual = "no reading" if pace.actual is None else _quoted(figure(pace.actual, metric.unit, name=metric.name))
        target = _quoted(quantity(metric.target, metric.unit, name=metric.name))
        line += f"; KPI {_quoted(metric.name)} {actual} of {target}"
        line += f" (expected {_quoted(quantity(pace.expected, metric.unit, name=metric.name))} by now)"
    return line


def _task_line(task: Task, names: dict[str, str], today: date) -> str:
    owner = _quoted(names.get(task.owner, task.owner)) if task.owner else "nobody"
    late = ", overdue" if task.due_on < today else ""
    line = f"T{task.id} {_quoted(task.title)}, owner {owner}, due {task.due_on.isoformat()}{late}, {task.status.value}"
    if task.blocked_reason:
        line += f" ({_quoted(task.blocked_reason)})"
    return f"{line}, in P{task.plan_id}"


def _quoted(text: str) -> str:
    return json.dumps(text[:200], ensure_ascii=False)


def _bounded(lines: list[str], max_chars: int) -> str:
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        if used + len(line) + 1 > max_chars:
            kept.append(f"… {len(lines) - index} more lines left out: use the tools to read them.")
            break
        kept.append(line)
        used += len(line) + 1
    return "\n".join(kept)
