"""Why a plan is not on track, in words: the reasons the rollup finds (planner/domain/rollup.py), as a plan card, a
health nudge and a drift nudge show them. Plain text: a card shows it literally, a message passes it to `literal`."""

from __future__ import annotations

from collections.abc import Mapping
from functools import singledispatch
from typing import Any

from bot.text.numbers import quantity
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


@reason_text.register
def _(reason: TasksBehind) -> str:
    progress = reason.done / reason.total if reason.total else 0.0
    return (
        f"{reason.done} of {reason.total} tasks done ({_percent(progress)}) "
        f"with {_percent(reason.elapsed)} of the window gone"
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
        f"({_percent(reason.behind)} behind pace, tolerance {_percent(reason.tolerance)})"
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
    return f"{reason.done} of {reason.total} tasks done by the end of its window"


def stored_reason_text(stored: str | Mapping[str, Any]) -> str:
    """A reason a queued message carries (`reason_payload`); messages queued before reasons were data carry words."""
    if isinstance(stored, str):
        return stored
    reason = reason_of_payload(stored)
    return reason_text(reason) if reason is not None else ""


def _percent(fraction: float) -> str:
    return f"{round(fraction * 100)}%"
