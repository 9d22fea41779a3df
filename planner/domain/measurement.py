"""Measurement: is the plan working, and why? Productivity and precision figures, KPI forecasts, recommendations.

Figures are pure functions of plain facts (`MeasurementFacts`), so each can be checked by hand on a small dataset;
`planner.services.measurement.Measurement` reads those facts for one master plan from the store.

Definitions, as of a day `as_of`:
- **on-time rate**: tasks done by the end of their due day, over the tasks whose outcome is known (done, or still
  open after their due day). A task due later and still open does not count yet.
- **cycle time**: days from a task's start (or its creation, when it was never started) to done; the mean.
- **throughput**: tasks done per ISO week, for each week of the plan's window begun by `as_of`, and their mean.
- **carried over**: tasks a weekly plan took over unfinished from the week before.
- **time to launch** (per tactical plan): days from the plan's start to the day its last milestone was done;
  None while a milestone is open (or when it has none).
- **delegations completed**: succeeded delegations per agent; **delegation success rate**: succeeded over finished
  (succeeded + failed) per agent.
- **KPI attainment**: the share of the way from baseline to target the latest reading has come (against target),
  and the same share of the way expected by now on the straight line to the target (against pace).
- **approval outcomes** per agent and per policy: of the decided approval requests of the tenant made since the
  plan started, the share approved as asked, approved with an edit (the approver attached a change or a condition
  as the note: there is no separate "edit" decision), rejected, and expired.
- **forecast**: the value each KPI reaches at its plan's end if it keeps the pace it had from the start to its
  latest reading (a straight line from the baseline through that reading).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from planner.domain.model import Metric, MetricReading, Plan, Task, Tier, iso_week_of, iso_week_window

# ---- the facts -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DelegationFact:
    """A delegation reduced to what the figures need."""

    task_id: int
    adapter: str
    status: str
    seconds: float | None = None


@dataclass(frozen=True, kw_only=True)
class ApprovalFact:
    """An approval request reduced to what the figures need."""

    id: int
    agent: str | None
    """The agent it concerns (`hubspot`), None when a person or the bot asked for it."""
    rules: tuple[str, ...]
    """Policy rules that flagged it; empty when a gate category alone asked for a person."""
    categories: tuple[str, ...]
    status: str
    """pending, approved, resumed, rejected or expired."""
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class MetricSeries:
    """A KPI with its readings (oldest first) and the window of the plan it belongs to."""

    metric: Metric
    plan: Plan
    readings: tuple[MetricReading, ...] = ()

    def latest(self, as_of: date) -> MetricReading | None:
        """The last reading taken by the end of `as_of`."""
        known = [r for r in self.readings if r.at.date() <= as_of]
        return known[-1] if known else None


@dataclass(frozen=True, kw_only=True)
class MeasurementFacts:
    """Everything measured about one master plan."""

    master: Plan
    tacticals: tuple[Plan, ...] = ()
    tasks: tuple[Task, ...] = ()
    carried_over: tuple[tuple[str, int], ...] = ()
    """(ISO week, task id) for each task a weekly plan carried over from the week before."""
    series: tuple[MetricSeries, ...] = ()
    delegations: tuple[DelegationFact, ...] = ()
    approvals: tuple[ApprovalFact, ...] = ()


def approval_fact(
    *,
    id: int,
    action: Mapping[str, Any] | None,
    requester: str,
    policy: Mapping[str, Any] | None,
    status: str,
    note: str | None,
) -> ApprovalFact:
    """An approval request's stored fields reduced to the fact: its agent is the action's, or the requester's when an
    agent asked (`agent:hubspot`)."""
    action = action or {}
    agent = action.get("agent")
    if not agent and str(requester).startswith("agent:"):
        agent = str(requester).removeprefix("agent:")
    policy = policy or {}
    return ApprovalFact(
        id=id,
        agent=agent or None,
        rules=tuple(policy.get("rules") or ()),
        categories=tuple(action.get("categories") or ()),
        status=status,
        note=note,
    )


# ---- the figures ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LaunchTime:
    plan_id: int
    title: str
    days: int | None
    """Days from the plan's start to its last milestone done; None while not launched."""
    milestones: int
    milestones_done: int


@dataclass(frozen=True, kw_only=True)
class Productivity:
    on_time: int
    judged: int
    """Tasks whose on-time outcome is known (the denominator of the on-time rate)."""
    cycle_time_days: float | None
    done: int
    weekly_done: tuple[tuple[str, int], ...]
    """Tasks done in each ISO week of the window begun by the day measured."""
    carried_over: int
    launches: tuple[LaunchTime, ...]
    delegations_completed: dict[str, int]
    """Succeeded delegations per agent."""

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.judged if self.judged else None

    @property
    def throughput(self) -> float | None:
        """Mean tasks done per week over the weeks begun."""
        return sum(n for _, n in self.weekly_done) / len(self.weekly_done) if self.weekly_done else None

    @property
    def delegations_completed_total(self) -> int:
        return sum(self.delegations_completed.values())


@dataclass(frozen=True, kw_only=True)
class Attainment:
    metric: Metric
    actual: float | None
    expected: float
    """Where the straight line from baseline to target is by now."""
    against_target: float | None
    against_pace: float | None


@dataclass(frozen=True, kw_only=True)
class Outcomes:
    """How the decided approval requests of one agent or one policy ended."""

    approved: int = 0
    edited: int = 0
    rejected: int = 0
    expired: int = 0

    @property
    def decided(self) -> int:
        return self.approved + self.edited + self.rejected + self.expired

    def rate(self, outcome: str) -> float | None:
        return getattr(self, outcome) / self.decided if self.decided else None

    def __add__(self, other: Outcomes) -> Outcomes:
        return Outcomes(
            approved=self.approved + other.approved,
            edited=self.edited + other.edited,
            rejected=self.rejected + other.rejected,
            expired=self.expired + other.expired,
        )


@dataclass(frozen=True, kw_only=True)
class DelegationRecord:
    succeeded: int = 0
    failed: int = 0

    @property
    def success_rate(self) -> float | None:
        finished = self.succeeded + self.failed
        return self.succeeded / finished if finished else None


NO_AGENT = ""
"""Where approval outcomes of requests no agent made (people's, the bot's own) are filed, beside each agent's."""


@dataclass(frozen=True, kw_only=True)
class Precision:
    attainment: tuple[Attainment, ...]
    delegations: dict[str, DelegationRecord]
    """Per agent."""
    by_agent: dict[str, Outcomes]
    """Per agent; what people and the bot asked for themselves is under `NO_AGENT`."""
    by_policy: dict[str, Outcomes]
    """Per policy rule id; requests no rule flagged are filed under `gate:<category>`."""

    @property
    def delegation_success_rate(self) -> float | None:
        total = DelegationRecord(
            succeeded=sum(d.succeeded for d in self.delegations.values()),
            failed=sum(d.failed for d in self.delegations.values()),
        )
        return total.success_rate


@dataclass(frozen=True, kw_only=True)
class Forecast:
    metric: Metric
    plan: Plan
    actual: float | None
    measured_on: date | None
    projected: float | None
    """The value at the plan's end at the current pace; None without a reading inside the window."""
    per_week: float | None
    """The current pace: change per week since the baseline."""
    needed_per_week: float | None
    """The pace from the latest reading that would reach the target by the plan's end."""

    @property
    def projected_attainment(self) -> float | None:
        span = self.metric.target - self.metric.baseline
        if self.projected is None or span == 0:
            return None
        return (self.projected - self.metric.baseline) / span


@dataclass(frozen=True, kw_only=True)
class Recommendation:
    """A recommended next step about one KPI, with why."""

    metric: Metric
    plan_id: int
    action: str
    rationale: str
    by: str = "rules"
    """`rules`, or `llm` when the model wrote it."""


@dataclass(frozen=True, kw_only=True)
class MeasurementReport:
    facts: MeasurementFacts
    as_of: date
    productivity: Productivity
    precision: Precision
    forecasts: tuple[Forecast, ...]
    recommendations: tuple[Recommendation, ...] = field(default=())


def _done_on(task: Task) -> date | None:
    return task.done_at.date() if task.done_at is not None else None


def _weeks(window_start: date, until: date) -> list[str]:
    weeks: list[str] = []
    day = iso_week_window(iso_week_of(window_start)).start
    while day <= until:
        weeks.append(iso_week_of(day))
        day += timedelta(days=7)
    return weeks


def productivity(facts: MeasurementFacts, as_of: date) -> Productivity:
    """Productivity figures as of the end of `as_of` (see the module docstring for each definition)."""
    on_time = judged = 0
    cycle_days: list[float] = []
    for task in facts.tasks:
        if task.done_at is not None and task.done_at.date() <= as_of:
            judged += 1
            on_time += task.done_at.date() <= task.due_on
            began = task.started_at or task.created_at
            cycle_days.append((task.done_at - began).total_seconds() / 86400)
        elif task.due_on < as_of:
            judged += 1
    until = min(as_of, facts.master.window.end)
    weeks = _weeks(facts.master.window.start, until) if until >= facts.master.window.start else []
    per_week = dict.fromkeys(weeks, 0)
    for task in facts.tasks:
        done_on = _done_on(task)
        if done_on is not None and done_on <= as_of and iso_week_of(done_on) in per_week:
            per_week[iso_week_of(done_on)] += 1
    launches = []
    for tactical in facts.tacticals:
        milestones = [t for t in facts.tasks if t.plan_id == tactical.id and t.milestone]
        done_days = [d for t in milestones if (d := _done_on(t)) is not None and d <= as_of]
        days = None
        if milestones and len(done_days) == len(milestones):
            days = (max(done_days) - tactical.window.start).days
        launches.append(
            LaunchTime(
                plan_id=tactical.id,
                title=tactical.title,
                days=days,
                milestones=len(milestones),
                milestones_done=len(done_days),
            )
        )
    completed: dict[str, int] = {}
    for delegation in facts.delegations:
        if delegation.status == "succeeded":
            completed[delegation.adapter] = completed.get(delegation.adapter, 0) + 1
    carried = sum(1 for week, _ in facts.carried_over if iso_week_window(week).start <= as_of)
    return Productivity(
        on_time=on_time,
        judged=judged,
        cycle_time_days=math.fsum(cycle_days) / len(cycle_days) if cycle_days else None,
        done=len(cycle_days),
        weekly_done=tuple(per_week.items()),
        carried_over=carried,
        launches=tuple(launches),
        delegations_completed=dict(sorted(completed.items())),
    )


def expected_value(metric: Metric, plan: Plan, as_of: date) -> float:
    """Where the straight line from baseline (at the plan's start) to target (at its end) is at the end of `as_of`."""
    return metric.baseline + (metric.target - metric.baseline) * plan.window.elapsed_fraction(as_of)


def attainment(series: MetricSeries, as_of: date) -> Attainment:
    metric = series.metric
    latest = series.latest(as_of)
    expected = expected_value(metric, series.plan, as_of)
    actual = latest.value if latest else None
    span = metric.target - metric.baseline
    against_target = against_pace = None
    if actual is not None and span != 0:
        against_target = (actual - metric.baseline) / span
        if expected != metric.baseline:
            against_pace = (actual - metric.baseline) / (expected - metric.baseline)
    return Attainment(
        metric=metric, actual=actual, expected=expected, against_target=against_target, against_pace=against_pace
    )


def _outcome(approval: ApprovalFact) -> Outcomes | None:
    if approval.status in ("approved", "resumed"):
        return Outcomes(edited=1) if approval.note else Outcomes(approved=1)
    if approval.status == "rejected":
        return Outcomes(rejected=1)
    if approval.status == "expired":
        return Outcomes(expired=1)
    return None


def precision(facts: MeasurementFacts, as_of: date) -> Precision:
    """Precision figures as of the end of `as_of` (see the module docstring for each definition)."""
    records: dict[str, DelegationRecord] = {}
    for delegation in facts.delegations:
        known = records.get(delegation.adapter, DelegationRecord())
        if delegation.status == "succeeded":
            records[delegation.adapter] = DelegationRecord(succeeded=known.succeeded + 1, failed=known.failed)
        elif delegation.status == "failed":
            records[delegation.adapter] = DelegationRecord(succeeded=known.succeeded, failed=known.failed + 1)
    by_agent: dict[str, Outcomes] = {}
    by_policy: dict[str, Outcomes] = {}
    for approval in facts.approvals:
        outcome = _outcome(approval)
        if outcome is None:
            continue
        agent = approval.agent or NO_AGENT
        by_agent[agent] = by_agent.get(agent, Outcomes()) + outcome
        for policy in approval.rules or tuple(f"gate:{c}" for c in approval.categories) or ("gate:flagged",):
            by_policy[policy] = by_policy.get(policy, Outcomes()) + outcome
    return Precision(
        attainment=tuple(attainment(s, as_of) for s in facts.series),
        delegations=dict(sorted(records.items())),
        by_agent=dict(sorted(by_agent.items())),
        by_policy=dict(sorted(by_policy.items())),
    )


def forecast(series: MetricSeries, as_of: date) -> Forecast:
    """The KPI's value at its plan's end if it keeps its pace from the baseline to its latest reading."""
    metric, window = series.metric, series.plan.window
    latest = series.latest(as_of)
    if latest is None or latest.at.date() < window.start:
        return Forecast(
            metric=metric,
            plan=series.plan,
            actual=latest.value if latest else None,
            measured_on=latest.at.date() if latest else None,
            projected=None,
            per_week=None,
            needed_per_week=None,
        )
    measured_on = min(latest.at.date(), window.end)
    days_gone = (measured_on - window.start).days + 1
    days_left = (window.end - measured_on).days
    per_day = (latest.value - metric.baseline) / days_gone
    projected = latest.value + per_day * days_left
    needed = (metric.target - latest.value) / days_left * 7 if days_left else None
    return Forecast(
        metric=metric,
        plan=series.plan,
        actual=latest.value,
        measured_on=latest.at.date(),
        projected=projected,
        per_week=per_day * 7,
        needed_per_week=needed,
    )


# ---- recommendations -----------------------------------------------------------------------------------------


class Step(StrEnum):
    """The rules' next step for one KPI (bot/text/recommendations.py words it)."""

    RECORD_FIRST = "record_first"
    """No reading yet: its pace cannot be judged."""
    HOLD = "hold"
    """A level to hold (its target is its baseline): no pace to project."""
    KEEP = "keep"
    """On course to reach its target."""
    PUSH = "push"
    """Short of its target, within its tolerance."""
    UNBLOCK = "unblock"
    """Short beyond its tolerance, with late or blocked work in its plan."""
    REPLAN = "replan"
    """Short beyond its tolerance with nothing late: the plan itself falls short."""
    FINAL = "final"
    """Its plan's window has ended: met or missed, nothing left to catch up on there."""


STUCK_SHOWN = 5
"""How many of the late or blocked tasks a step names."""


@dataclass(frozen=True, kw_only=True)
class NextStep:
    """What the rules recommend for one KPI, and the figures behind it."""

    step: Step
    forecast: Forecast
    stuck: tuple[int, ...] = ()
    """Ids of the first late or blocked open tasks in the KPI's plan (UNBLOCK), at most STUCK_SHOWN."""
    stuck_count: int = 0
    """How many tasks in its plan are late or blocked."""


def next_step(item: Forecast, facts: MeasurementFacts, as_of: date) -> NextStep:
    """The rules' next step for one KPI: keep going, push a little, unblock the work, or re-plan."""
    if as_of > item.plan.window.end:
        return NextStep(step=Step.FINAL, forecast=item)  # nothing left to push or unblock in this plan's window
    if item.projected is None or item.projected_attainment is None:
        return NextStep(step=Step.RECORD_FIRST if item.actual is None else Step.HOLD, forecast=item)
    if item.projected_attainment >= 1:
        return NextStep(step=Step.KEEP, forecast=item)
    if item.projected_attainment >= 1 - item.metric.tolerance:
        return NextStep(step=Step.PUSH, forecast=item)
    in_plan = [t for t in facts.tasks if t.plan_id == item.plan.id or item.plan.tier is Tier.MASTER]
    stuck = [t for t in in_plan if t.status.is_open and (t.due_on < as_of or t.status.value == "blocked")]
    if stuck:
        shown = tuple(t.id for t in stuck[:STUCK_SHOWN])
        return NextStep(step=Step.UNBLOCK, forecast=item, stuck=shown, stuck_count=len(stuck))
    return NextStep(step=Step.REPLAN, forecast=item)


def next_steps(report: MeasurementReport) -> list[NextStep]:
    """The rules' next step for each KPI of the report, in its order."""
    return [next_step(item, report.facts, report.as_of) for item in report.forecasts]


def measure(facts: MeasurementFacts, as_of: date) -> MeasurementReport:
    """Every figure and forecast of `facts` as of the end of `as_of` (recommendations are added by a Recommender)."""
    return MeasurementReport(
        facts=facts,
        as_of=as_of,
        productivity=productivity(facts, as_of),
        precision=precision(facts, as_of),
        forecasts=tuple(forecast(s, as_of) for s in facts.series),
    )


def series_names(items: Iterable[MetricSeries]) -> list[str]:
    """The KPI names of a plan's series, tactical ones qualified by their plan (`SQLs (P2)`)."""
    return [s.metric.name if s.plan.tier is Tier.MASTER else f"{s.metric.name} (P{s.plan.id})" for s in items]
