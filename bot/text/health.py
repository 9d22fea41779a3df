"""Why a plan is not on track, in words: the reasons the rollup finds (planner/domain/rollup.py), as a plan card, a
health nudge and a drift nudge show them. Plain text: a card shows it literally, a message passes it to `literal`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import singledispatch
from typing import Any

from bot.text.numbers import percent, quantity
from planner.domain.rollup import (
    ChildInTrouble,
    HealthReason,
    MetricBehind,
    MetricEnded,
    TasksBehind,
    TasksEnded,
    TasksOverdue,
    reason_of_payload,
)


@singledispatch
def reason_text(reason: HealthReason) -> str:
    """One reason in words (`3 tasks overdue`)."""
    raise TypeError(f"no words for {type(reason).__name__}")


def _tasks(count: int) -> str:
    return f"{count} task{'s' if count != 1 else ''}"


@reason_text.register
def _(reason: TasksBehind) -> str:
    progress = reason.done / reason.total if reason.total else 0.0
    return (
        f"{reason.done} of {_tasks(reason.total)} done ({percent(progress)}) "
        f"with {percent(reason.elapsed)} of the window gone"
    )


@reason_text.register
def _(reason: TasksOverdue) -> str:
    return f"{reason.count} task{'s' if reason.count != 1 else ''} overdue"


@reason_text.register
def _(reason: MetricBehind) -> str:
    def q(value: float) -> str:
        return quantity(value, reason.unit, name=reason.metric)

    if reason.actual is None:
        return f"no reading of {reason.metric} yet ({q(reason.expected)} expected by now)"
    return (
        f"{reason.metric} at {q(reason.actual)} against {q(reason.expected)} expected by now "
        f"({percent(reason.behind)} behind pace, tolerance {percent(reason.tolerance)})"
    )


@reason_text.register
def _(reason: ChildInTrouble) -> str:
    return f"{reason.tier} plan {reason.title!r} is {reason.health}"


@reason_text.register
def _(reason: MetricEnded) -> str:
    def q(value: float) -> str:
        return quantity(value, reason.unit, name=reason.metric)

    if reason.actual is None:
        return f"no reading of {reason.metric} in its window (target {q(reason.target)})"
    return f"{reason.metric} ended at {q(reason.actual)} against a target of {q(reason.target)}"


@reason_text.register
def _(reason: TasksEnded) -> str:
    return f"{reason.done} of {_tasks(reason.total)} done by the end of its window"


def stored_reason_text(stored: str | Mapping[str, Any]) -> str:
    """A reason a queued message carries (`reason_payload`); messages queued before reasons were data carry words."""
    if isinstance(stored, str):
        return stored
    reason = reason_of_payload(stored)
    return reason_text(reason) if reason is not None else ""


_WEIGHT = {MetricBehind: 0, TasksOverdue: 1, TasksBehind: 2, ChildInTrouble: 3, MetricEnded: 4, TasksEnded: 5}


def reason_that_matters_most(reasons: Sequence[HealthReason]) -> HealthReason | None:
    """The reason a leader acts on first: a KPI furthest behind pace, then overdue work, then slow work."""
    if not reasons:
        return None
    return min(reasons, key=lambda r: (_WEIGHT.get(type(r), 9), -getattr(r, "behind", 0.0)))


@singledispatch
def next_step_text(reason: HealthReason, plan: str) -> str:
    """What to do about `reason` on plan `plan` (`P2`), with the command that does it."""
    return f"Open the plan with `plan {plan}` and look at what is late."


@next_step_text.register
def _(reason: MetricBehind, plan: str) -> str:
    return (
        f"Record the latest {reason.metric} with `record {reason.metric} VALUE`, "
        f"or ask `how are we doing {plan}` for what would close the gap."
    )


@next_step_text.register
def _(reason: TasksOverdue, plan: str) -> str:
    return f"Clear or re-date the overdue work: `tasks {plan} overdue`."


@next_step_text.register
def _(reason: TasksBehind, plan: str) -> str:
    return f"See what is open and who owns it: `tasks {plan}`."


@next_step_text.register
def _(reason: ChildInTrouble, plan: str) -> str:
    return f"Open the {reason.tier} plan {reason.title!r} below and act on its first reason."
