"""Progress and health, rolled up weekly -> tactical -> master.

Two signals decide a plan's health:
- **task pace**: the share of its tasks done against the share of its window gone. Falling behind by more
  than `HealthRules.at_risk_gap` makes it at risk, by more than `off_track_gap` off track; an overdue task
  makes it at least at risk.
- **metric pace**: each KPI's latest reading against the straight line from its baseline (at the window's
  start) to its target (at the window's end). The share of the expected progress not achieved is compared
  with the metric's tolerance: within it, on track; within twice it, at risk; beyond, off track.

Both paces count the day judged as gone (`Window.elapsed_fraction`, "by the end of the day"), except the day a
window opens: nobody could have done anything yet, so nothing is expected then (`expected_share`). Without that, a
window of a week expected a seventh of its work on its first morning, more than `at_risk_gap` and `metric_grace`
allow, and a plan was at risk the moment it was made.

A plan's health is the worst of its own signals; a child's trouble makes its parent at least at risk (not
off track by itself: one late tactical plan does not sink the north star). For a tactical plan, only the
weekly plan of the current week counts, since earlier weeks' unfinished work is carried into it.

A plan whose window has ended is judged **final**: *met* when each of its KPIs reached its target by the
window's end (a plan without KPIs: when all its tasks were done), *missed* otherwise. It is never at risk,
and a final child leaves its parent's health alone (the parent's own KPIs already count what it did).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import date
from typing import Any, ClassVar

from planner.domain.model import Direction, Health, Metric, Plan, Tier, Window


@dataclass(frozen=True, kw_only=True)
class HealthRules:
    at_risk_gap: float = 0.10
    off_track_gap: float = 0.25
    metric_grace: float = 0.10
    """Share of the window during which metrics are not judged yet (pace is noise in the first days)."""


@dataclass(frozen=True, kw_only=True)
class TaskCounts:
    total: int = 0
    done: int = 0
    overdue: int = 0
    blocked: int = 0

    def __add__(self, other: TaskCounts) -> TaskCounts:
        return TaskCounts(
            total=self.total + other.total,
            done=self.done + other.done,
            overdue=self.overdue + other.overdue,
            blocked=self.blocked + other.blocked,
        )

    @property
    def progress(self) -> float:
        return self.done / self.total if self.total else 0.0


@dataclass(frozen=True, kw_only=True)
class MetricFacts:
    """A KPI as one plan counts it: its latest value inside the plan's window by the day judged (see
    `planner.domain.kpis`), and the day of the reading it comes from."""

    metric: Metric
    latest: float | None
    measured_on: date | None = None


@dataclass(frozen=True, kw_only=True)
class PlanFacts:
    """What the store knows about one plan, aggregated: enough to judge it without loading its tasks."""

    plan: Plan
    counts: TaskCounts
    metrics: tuple[MetricFacts, ...] = ()


@dataclass(frozen=True, kw_only=True)
class MetricPace:
    metric: Metric
    actual: float | None
    expected: float
    behind: float
    """Share of the expected progress not achieved (negative when ahead of pace)."""
    health: Health
    measured_on: date | None = None
    """The day of the reading `actual` comes from."""


# ---- why a plan is not on track (bot/text/health.py words each) -----------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TasksBehind:
    """Fewer of its tasks done than the share of its window gone."""

    kind: ClassVar[str] = "tasks_behind"
    done: int
    total: int
    elapsed: float


@dataclass(frozen=True, kw_only=True)
class TasksOverdue:
    kind: ClassVar[str] = "tasks_overdue"
    count: int


@dataclass(frozen=True, kw_only=True)
class MetricBehind:
    """A KPI behind its pace to target beyond its tolerance, or with no reading yet (`actual` None)."""

    kind: ClassVar[str] = "metric_behind"
    metric: str
    unit: str
    actual: float | None
    expected: float
    behind: float
    tolerance: float


@dataclass(frozen=True, kw_only=True)
class ChildInTrouble:
    """One of its tactical (or this week's weekly) plans is not on track."""

    kind: ClassVar[str] = "child_in_trouble"
    tier: str
    title: str
    health: str


@dataclass(frozen=True, kw_only=True)
class MetricEnded:
    """A KPI of a plan whose window has ended: where it ended against its target (no reading: `actual` None)."""

    kind: ClassVar[str] = "metric_ended"
    metric: str
    unit: str
    actual: float | None
    target: float


@dataclass(frozen=True, kw_only=True)
class TasksEnded:
    """A plan without KPIs whose window has ended: how many of its tasks were done by then."""

    kind: ClassVar[str] = "tasks_ended"
    done: int
    total: int


HealthReason = TasksBehind | TasksOverdue | MetricBehind | ChildInTrouble | MetricEnded | TasksEnded
_REASONS: tuple[type[HealthReason], ...] = (
    TasksBehind,
    TasksOverdue,
    MetricBehind,
    ChildInTrouble,
    MetricEnded,
    TasksEnded,
)


def reason_payload(reason: HealthReason) -> dict[str, Any]:
    """A reason as JSON data, as a queued message carries it."""
    return {"kind": reason.kind, **asdict(reason)}


def reason_of_payload(data: Mapping[str, Any]) -> HealthReason | None:
    """The reason `reason_payload` wrote; None for data it did not write."""
    cls = next((cls for cls in _REASONS if cls.kind == data.get("kind")), None)
    if cls is None:
        return None
    names = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in names})
    except TypeError:
        return None


def metric_behind(pace: MetricPace) -> MetricBehind:
    return MetricBehind(
        metric=pace.metric.name,
        unit=pace.metric.unit,
        actual=pace.actual,
        expected=pace.expected,
        behind=pace.behind,
        tolerance=pace.metric.tolerance,
    )


@dataclass(frozen=True, kw_only=True)
class PlanRollup:
    plan: Plan
    counts: TaskCounts
    progress: float
    elapsed: float
    health: Health
    reasons: tuple[HealthReason, ...]
    metrics: tuple[MetricPace, ...]
    children: tuple[PlanRollup, ...]

    def find(self, plan_id: int) -> PlanRollup | None:
        """The rollup of `plan_id` in this tree, if it is in it."""
        if self.plan.id == plan_id:
            return self
        for child in self.children:
            found = child.find(plan_id)
            if found is not None:
                return found
        return None


def task_health(counts: TaskCounts, elapsed: float, rules: HealthRules) -> tuple[Health, list[HealthReason]]:
    """Judge completion against elapsed time; see the module docstring."""
    if counts.total == 0:
        return Health.ON_TRACK, []
    gap = elapsed - counts.progress
    summary = TasksBehind(done=counts.done, total=counts.total, elapsed=elapsed)
    if gap > rules.off_track_gap:
        health = Health.OFF_TRACK
    elif gap > rules.at_risk_gap:
        health = Health.AT_RISK
    else:
        health = Health.ON_TRACK
    reasons: list[HealthReason] = [summary] if health is not Health.ON_TRACK else []
    if counts.overdue:
        health = Health.worst(health, Health.AT_RISK)
        reasons.append(TasksOverdue(count=counts.overdue))
    return health, reasons


def metric_pace(facts: MetricFacts, elapsed: float, rules: HealthRules) -> MetricPace:
    """Judge a KPI's latest reading against its straight-line pace; see the module docstring."""
    metric = facts.metric
    span = metric.target - metric.baseline
    expected = metric.baseline + span * elapsed
    actual = facts.latest
    if elapsed < rules.metric_grace:
        return MetricPace(metric=metric, actual=actual, expected=expected, behind=0.0, health=Health.ON_TRACK)
    if actual is None:
        return MetricPace(metric=metric, actual=None, expected=expected, behind=1.0, health=Health.AT_RISK)
    if span == 0:
        # A metric to hold steady: judge the distance from the target on the wrong side.
        scale = abs(metric.target) or 1.0
        wrong_side = metric.target - actual if metric.direction is Direction.UP else actual - metric.target
        behind = max(wrong_side, 0.0) / scale
    else:
        behind = 1.0 - (actual - metric.baseline) / (expected - metric.baseline) if expected != metric.baseline else 0.0
    if behind > 2 * metric.tolerance:
        health = Health.OFF_TRACK
    elif behind > metric.tolerance:
        health = Health.AT_RISK
    else:
        health = Health.ON_TRACK
    return MetricPace(metric=metric, actual=actual, expected=expected, behind=behind, health=health)


def reached(metric: Metric, actual: float) -> bool:
    """Whether a value is at or beyond the KPI's target, in the KPI's direction."""
    return actual >= metric.target if metric.direction is Direction.UP else actual <= metric.target


def final_pace(facts: MetricFacts) -> MetricPace:
    """A KPI of a plan whose window has ended: met when its last value in the window reached the target."""
    metric, actual = facts.metric, facts.latest
    health = Health.MET if actual is not None and reached(metric, actual) else Health.MISSED
    span = metric.target - metric.baseline
    behind = 1.0 if actual is None or span == 0 else 1.0 - (actual - metric.baseline) / span
    return MetricPace(
        metric=metric,
        actual=actual,
        expected=metric.target,
        behind=behind,
        health=health,
        measured_on=facts.measured_on,
    )


def metric_ended(pace: MetricPace) -> MetricEnded:
    return MetricEnded(metric=pace.metric.name, unit=pace.metric.unit, actual=pace.actual, target=pace.metric.target)


def _judge_final(facts: PlanFacts, counts: TaskCounts, children: Sequence[PlanRollup]) -> PlanRollup:
    paces = tuple(final_pace(m) for m in facts.metrics)
    reasons: list[HealthReason]
    if paces:
        health = Health.MET if all(p.health is Health.MET for p in paces) else Health.MISSED
        reasons = [metric_ended(p) for p in paces if p.health is Health.MISSED] or [metric_ended(p) for p in paces]
    else:
        health = Health.MET if counts.done == counts.total else Health.MISSED
        reasons = [TasksEnded(done=counts.done, total=counts.total)] if counts.total else []
    return PlanRollup(
        plan=facts.plan,
        counts=counts,
        progress=counts.progress,
        elapsed=1.0,
        health=health,
        reasons=tuple(reasons),
        metrics=paces,
        children=tuple(children),
    )


def expected_share(window: Window, as_of: date) -> float:
    """The share of the way to done (tasks) and to target (KPIs) a plan should have come by the end of `as_of`:
    the share of its window gone, but nothing on the day the window opens, before anyone could have done anything."""
    return 0.0 if as_of <= window.start else window.elapsed_fraction(as_of)


def _judge(
    facts: PlanFacts, counts: TaskCounts, as_of: date, rules: HealthRules, children: Sequence[PlanRollup]
) -> PlanRollup:
    if as_of > facts.plan.window.end:
        return _judge_final(facts, counts, children)
    elapsed = facts.plan.window.elapsed_fraction(as_of)
    expected = expected_share(facts.plan.window, as_of)
    health, reasons = task_health(counts, expected, rules)
    paces = tuple(replace(metric_pace(m, expected, rules), measured_on=m.measured_on) for m in facts.metrics)
    for pace in paces:
        health = Health.worst(health, pace.health)
        if pace.health is not Health.ON_TRACK:
            reasons.append(metric_behind(pace))
    for child in children:
        if child.health is not Health.ON_TRACK and _counts_for_parent(child, as_of):
            health = Health.worst(health, Health.AT_RISK)
            reasons.append(
                ChildInTrouble(tier=child.plan.tier.value, title=child.plan.title, health=child.health.value)
            )
    return PlanRollup(
        plan=facts.plan,
        counts=counts,
        progress=counts.progress,
        elapsed=elapsed,
        health=health,
        reasons=tuple(reasons),
        metrics=paces,
        children=tuple(children),
    )


def _counts_for_parent(child: PlanRollup, as_of: date) -> bool:
    if child.health.is_final:
        return False
    return child.plan.tier is not Tier.WEEKLY or child.plan.window.includes(as_of)


def roll_up(
    master: PlanFacts,
    tacticals: Sequence[PlanFacts],
    weeklies: Sequence[PlanFacts],
    as_of: date,
    rules: HealthRules | None = None,
) -> PlanRollup:
    """Roll a master plan's tree up: weekly plans judged first, then their tactical plans, then the master.

    The master's task counts are the sum of its tactical plans' (tasks live in tactical plans).
    """
    rules = rules or HealthRules()
    by_parent: dict[int, list[PlanFacts]] = {}
    for weekly in weeklies:
        by_parent.setdefault(weekly.plan.parent_id or 0, []).append(weekly)
    tactical_rollups = []
    total = TaskCounts()
    for tactical in sorted(tacticals, key=lambda f: (f.plan.window.start, f.plan.id)):
        weekly_rollups = [
            _judge(w, w.counts, as_of, rules, ())
            for w in sorted(by_parent.get(tactical.plan.id, []), key=lambda f: f.plan.window.start)
        ]
        tactical_rollups.append(_judge(tactical, tactical.counts, as_of, rules, weekly_rollups))
        total = total + tactical.counts
    return _judge(master, total, as_of, rules, tactical_rollups)


@dataclass(frozen=True, kw_only=True)
class OwnedRollup:
    """A rollup, with the display names of its plans' owners as the directory knows them (unknown owners left out)."""

    rollup: PlanRollup
    owner_names: dict[str, str]


def roll_up_tree(facts: Sequence[PlanFacts], as_of: date, rules: HealthRules | None = None) -> PlanRollup | None:
    """`roll_up` of a master plan's tree given as the facts of all its plans, any order; None without its master."""
    by_tier: dict[Tier, list[PlanFacts]] = {tier: [] for tier in Tier}
    for f in facts:
        by_tier[f.plan.tier].append(f)
    if not by_tier[Tier.MASTER]:
        return None
    return roll_up(by_tier[Tier.MASTER][0], by_tier[Tier.TACTICAL], by_tier[Tier.WEEKLY], as_of, rules)
