"""The rules' recommended next step for each KPI, in words: what to do, and why (the figures behind it)."""

from __future__ import annotations

from bot.cards.wording import day_label
from bot.text.numbers import quantity, whole
from planner.domain.measurement import MeasurementReport, NextStep, Recommendation, Step, next_steps
from planner.domain.rollup import reached


class RuleRecommender:
    """The recommender without a model: the rules' next step for each KPI, in the bot's words."""

    async def recommend(self, report: MeasurementReport) -> list[Recommendation]:
        return rule_recommendations(report)


def rule_recommendations(report: MeasurementReport) -> list[Recommendation]:
    """The rules' recommendation for each KPI of the report, in its order."""
    return [rule_recommendation(step) for step in next_steps(report)]


def rule_recommendation(next_step: NextStep) -> Recommendation:
    """One KPI's next step as a recommendation a person reads."""
    item = next_step.forecast
    metric = item.metric
    name = metric.name

    def q(value: float) -> str:
        return quantity(value, metric.unit, name=metric.name)

    def said(action: str, rationale: str) -> Recommendation:
        return Recommendation(metric=metric, plan_id=item.plan.id, action=action, rationale=rationale)

    if next_step.step is Step.FINAL:
        ended = day_label(item.plan.window.end, with_year=True)
        if item.actual is None:
            return said(
                f"Nothing to catch up on {name} in {item.plan.title}: its window has ended.",
                f"{name} had no reading in the window, which ended on {ended}; the target was "
                f"{q(metric.target)} (missed).",
            )
        met = reached(metric, item.actual)
        return said(
            f"Nothing to catch up on {name} in {item.plan.title}: its window has ended "
            + ("with the target met." if met else "short of the target; the plans still running carry it."),
            f"{name} ended at {q(item.actual)} against a target of {q(metric.target)} on {ended} "
            + ("(met)." if met else "(missed)."),
        )
    if next_step.step is Step.RECORD_FIRST:
        return said(
            f"Record a first reading of {name} (`record {name} <value>`) or connect a feed for it.",
            f"{name} has no reading yet, so its pace and where it will land cannot be judged.",
        )
    if next_step.step is Step.HOLD:
        return said(
            f"Hold {name} at {q(metric.target)}.",
            f"{name} is a level to hold; it reads {q(item.actual or 0)} now.",
        )
    attainment = item.projected_attainment or 0
    landing = f"At its current pace ({q(item.per_week or 0)} a week) {name} reaches " + (
        f"{q(item.projected or 0)} by {day_label(item.plan.window.end)}, against a target of "
        f"{q(metric.target)} ({whole(attainment * 100)} %)"
    )
    if next_step.step is Step.KEEP:
        return said(f"Keep the course on {name}.", landing + ".")
    needed = f"; it needs {q(item.needed_per_week)} a week from here" if item.needed_per_week is not None else ""
    if next_step.step is Step.PUSH:
        return said(
            f"Push {name} a little harder this week.",
            landing + f", within its tolerance of {round(metric.tolerance * 100)} %{needed}.",
        )
    if next_step.step is Step.UNBLOCK:
        listed = ", ".join(f"T{task_id}" for task_id in next_step.stuck)
        return said(
            f"Unblock the late work behind {name} first: {listed}.",
            landing + f"{needed}, and {next_step.stuck_count} task(s) in its plan are late or blocked.",
        )
    return said(
        f"Re-plan {name}: add work to its plan, or agree a new target with the leader.",
        landing + f"{needed}; nothing in its plan is late, so the plan itself falls short.",
    )
