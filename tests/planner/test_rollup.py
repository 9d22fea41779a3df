"""Rollup on constructed facts, every expectation computed by hand in the comments."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.text.health import reason_text
from planner.domain.model import Direction, Health, Metric, Plan, Tier, Window
from planner.domain.rollup import (
    HealthRules,
    MetricFacts,
    PlanFacts,
    TaskCounts,
    metric_behind,
    metric_pace,
    roll_up,
    task_health,
)

AS_OF = date(2026, 2, 14)
RULES = HealthRules()


def plan(plan_id: int, tier: Tier, start: date, end: date, parent: int | None = None, title: str = "") -> Plan:
    return Plan(
        id=plan_id,
        tenant_id="t",
        tier=tier,
        parent_id=parent,
        master_id=None if parent is None else 1,
        title=title or f"plan {plan_id}",
        owner="leader",
        window=Window(start=start, end=end),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def metric(
    name: str, baseline: float, target: float, tolerance: float = 0.1, direction: Direction | None = None
) -> Metric:
    return Metric(
        id=1,
        tenant_id="t",
        plan_id=1,
        name=name,
        unit="",
        baseline=baseline,
        target=target,
        tolerance=tolerance,
        direction=direction or (Direction.UP if target >= baseline else Direction.DOWN),
    )


@pytest.mark.parametrize(
    ("done", "overdue", "expected"),
    [
        (5, 0, Health.ON_TRACK),  # 50% done, 50% gone: gap 0
        (4, 0, Health.ON_TRACK),  # gap 0.1: not beyond 0.10
        (3, 0, Health.AT_RISK),  # gap 0.2
        (2, 0, Health.OFF_TRACK),  # gap 0.3
        (6, 1, Health.AT_RISK),  # ahead, but a task is overdue
    ],
)
def test_task_health_compares_completion_with_elapsed_time(done: int, overdue: int, expected: Health) -> None:
    health, _ = task_health(TaskCounts(total=10, done=done, overdue=overdue), 0.5, RULES)
    assert health is expected


def test_task_health_says_why() -> None:
    _, reasons = task_health(TaskCounts(total=10, done=2, overdue=3), 0.5, RULES)
    assert [reason_text(reason) for reason in reasons] == [
        "2 of 10 tasks done (20 %) with 50 % of the window gone",
        "3 tasks overdue",
    ]


@pytest.mark.parametrize(
    ("latest", "behind", "expected"),
    [
        (240.0, 0.04, Health.ON_TRACK),  # expected 250 by half-time: 1 - 240/250
        (210.0, 0.16, Health.AT_RISK),  # beyond 10%, within 20%
        (150.0, 0.40, Health.OFF_TRACK),
        (300.0, -0.20, Health.ON_TRACK),  # ahead of pace
    ],
)
def test_metric_pace_against_the_straight_line_to_target(latest: float, behind: float, expected: Health) -> None:
    pace = metric_pace(MetricFacts(metric=metric("SQLs", 0, 500), latest=latest), 0.5, RULES)
    assert pace.expected == pytest.approx(250)
    assert pace.behind == pytest.approx(behind)
    assert pace.health is expected


def test_metric_going_down_is_judged_the_same_way() -> None:
    # cost per lead from 100 to 60: 80 expected at half-time.
    cpl = metric("CPL", 100, 60)
    assert metric_pace(MetricFacts(metric=cpl, latest=83), 0.5, RULES).health is Health.AT_RISK  # 15% behind
    assert metric_pace(MetricFacts(metric=cpl, latest=90), 0.5, RULES).health is Health.OFF_TRACK  # 50% behind
    assert metric_pace(MetricFacts(metric=cpl, latest=78), 0.5, RULES).health is Health.ON_TRACK  # ahead


def test_metric_held_steady_is_judged_by_distance_on_the_wrong_side() -> None:
    churn = metric("churn", 2, 2, direction=Direction.DOWN)
    assert metric_pace(MetricFacts(metric=churn, latest=2.1), 0.5, RULES).health is Health.ON_TRACK  # 5% over
    assert metric_pace(MetricFacts(metric=churn, latest=2.3), 0.5, RULES).health is Health.AT_RISK  # 15% over
    assert metric_pace(MetricFacts(metric=churn, latest=1.0), 0.5, RULES).health is Health.ON_TRACK


def test_metrics_are_not_judged_in_the_first_days_and_a_missing_reading_is_a_risk_after() -> None:
    sqls = metric("SQLs", 0, 500)
    assert metric_pace(MetricFacts(metric=sqls, latest=None), 0.05, RULES).health is Health.ON_TRACK
    late = metric_pace(MetricFacts(metric=sqls, latest=None), 0.5, RULES)
    assert late.health is Health.AT_RISK
    assert reason_text(metric_behind(late)) == "no reading of SQLs yet (250 expected by now)"


def test_nothing_is_expected_on_the_day_a_window_opens_even_a_week_long_one() -> None:
    master = PlanFacts(
        plan=plan(1, Tier.MASTER, date(2026, 1, 5), date(2026, 1, 11), title="50 MQLs this week"),
        counts=TaskCounts(),
        metrics=(MetricFacts(metric=metric("MQLs", 0, 50), latest=None),),
    )
    push = PlanFacts(
        plan=plan(2, Tier.TACTICAL, date(2026, 1, 5), date(2026, 1, 11), parent=1, title="Push"),
        counts=TaskCounts(total=3),
    )
    # Monday, the day it opens: a seventh of the week is gone by its end, but nobody could have done anything yet.
    first_day = roll_up(master, [push], [], date(2026, 1, 5))
    assert (first_day.health, first_day.reasons) == (Health.ON_TRACK, ())
    assert (first_day.children[0].health, first_day.children[0].reasons) == (Health.ON_TRACK, ())
    assert first_day.elapsed == pytest.approx(1 / 7)  # the window gone is still shown as it is
    assert first_day.metrics[0].expected == 0
    # Tuesday: a day has passed; no reading and no task done count again, as they always did.
    second_day = roll_up(master, [push], [], date(2026, 1, 6))
    assert second_day.health is Health.OFF_TRACK  # 0 of 3 tasks with 29 % gone: beyond 0.25
    assert [reason_text(r) for r in second_day.reasons] == [
        "0 of 3 tasks done (0 %) with 29 % of the window gone",
        "no reading of MQLs yet (14 expected by now)",
        "tactical plan 'Push' is off track",
    ]


def test_rollup_weekly_to_tactical_to_master() -> None:
    master = PlanFacts(
        plan=plan(1, Tier.MASTER, date(2026, 1, 1), date(2026, 3, 31), title="500 SQLs"),  # 45 of 90 days gone
        counts=TaskCounts(),
        metrics=(MetricFacts(metric=metric("SQLs", 0, 500), latest=240),),  # 4% behind: on track
    )
    january = PlanFacts(  # ended: 100% gone, all 4 tasks done
        plan=plan(2, Tier.TACTICAL, date(2026, 1, 1), date(2026, 1, 31), parent=1, title="January"),
        counts=TaskCounts(total=4, done=4),
    )
    february = PlanFacts(  # 14 of 28 days gone, 2 of 10 done: gap 0.3, off track
        plan=plan(3, Tier.TACTICAL, date(2026, 2, 1), date(2026, 2, 28), parent=1, title="February"),
        counts=TaskCounts(total=10, done=2, overdue=1),
    )
    january_week = PlanFacts(  # a past week left unfinished: its work was carried over, so it does not count
        plan=plan(4, Tier.WEEKLY, date(2026, 1, 26), date(2026, 2, 1), parent=2),
        counts=TaskCounts(total=3, done=1),
    )
    this_week = PlanFacts(  # 6 of 7 days gone, 2 of 4 done: gap 0.36, off track
        plan=plan(5, Tier.WEEKLY, date(2026, 2, 9), date(2026, 2, 15), parent=3),
        counts=TaskCounts(total=4, done=2),
    )
    tree = roll_up(master, [february, january], [this_week, january_week], AS_OF)

    assert [c.plan.title for c in tree.children] == ["January", "February"]
    jan, feb = tree.children
    assert jan.health is Health.MET  # ended with every task done: final, never "at risk"
    assert jan.children[0].health is Health.MISSED  # ended unfinished: shown, but not held against January
    assert [reason_text(r) for r in jan.children[0].reasons] == ["1 of 3 tasks done by the end of its window"]
    assert feb.children[0].health is Health.OFF_TRACK
    assert feb.children[0].elapsed == pytest.approx(6 / 7)
    assert feb.health is Health.OFF_TRACK
    assert feb.progress == pytest.approx(0.2)

    # Master: 6 of 14 tasks done (0.43) with half the window gone: gap 0.07, fine by pace;
    # but one task is overdue and February is off track: at risk, not off track.
    assert tree.counts == TaskCounts(total=14, done=6, overdue=1)
    assert tree.progress == pytest.approx(6 / 14)
    assert tree.elapsed == pytest.approx(0.5)
    assert tree.health is Health.AT_RISK
    assert [reason_text(reason) for reason in tree.reasons] == [
        "1 task overdue",
        "tactical plan 'February' is off track",
    ]
    assert tree.find(5) is feb.children[0]
    assert tree.find(99) is None


def test_a_plan_whose_window_has_ended_is_met_or_missed_on_its_kpis_never_at_risk() -> None:
    master = PlanFacts(
        plan=plan(1, Tier.MASTER, date(2026, 1, 1), date(2026, 3, 31)),
        metrics=(MetricFacts(metric=metric("SQLs", 0, 500), latest=240),),
        counts=TaskCounts(),
    )
    january = PlanFacts(  # its share reached, though a task was left open: met on its KPI
        plan=plan(2, Tier.TACTICAL, date(2026, 1, 1), date(2026, 1, 31), parent=1, title="January"),
        metrics=(MetricFacts(metric=metric("SQLs", 0, 170), latest=175, measured_on=date(2026, 1, 31)),),
        counts=TaskCounts(total=4, done=3, overdue=1),
    )
    december_like = PlanFacts(  # ended with no reading inside its window: missed, not "no reading yet"
        plan=plan(3, Tier.TACTICAL, date(2026, 2, 1), date(2026, 2, 10), parent=1, title="Early February"),
        metrics=(MetricFacts(metric=metric("SQLs", 0, 50), latest=None),),
        counts=TaskCounts(),
    )
    tree = roll_up(master, [january, december_like], [], AS_OF)
    jan, early = tree.children
    assert (jan.health, jan.metrics[0].health) == (Health.MET, Health.MET)
    assert [reason_text(r) for r in jan.reasons] == ["SQLs ended at 175 against a target of 170"]
    assert (early.health, early.metrics[0].health) == (Health.MISSED, Health.MISSED)
    assert [reason_text(r) for r in early.reasons] == ["no reading of SQLs in its window (target 50)"]
    # A missed month is not held against the running master (its own SQLs, 240 of 250 by now, are on pace);
    # only January's task still open counts, as any overdue task does.
    assert tree.health is Health.AT_RISK
    assert [reason_text(r) for r in tree.reasons] == ["1 task overdue"]
    # The day the window ends it is still running, and judged on pace.
    last_day = roll_up(master, [december_like], [], date(2026, 2, 10)).children[0]
    assert last_day.health is Health.AT_RISK
    assert not any(h.is_final for h in (Health.ON_TRACK, Health.AT_RISK, Health.OFF_TRACK))


def test_a_kpi_going_down_is_met_at_or_below_its_target() -> None:
    cost = metric("Cost per lead", 60, 40, direction=Direction.DOWN)
    ended = plan(2, Tier.TACTICAL, date(2026, 1, 1), date(2026, 1, 31), parent=1)
    met = roll_up(
        PlanFacts(plan=plan(1, Tier.MASTER, date(2026, 1, 1), date(2026, 1, 31)), counts=TaskCounts()),
        [PlanFacts(plan=ended, counts=TaskCounts(), metrics=(MetricFacts(metric=cost, latest=39),))],
        [],
        AS_OF,
    )
    assert met.health is Health.MET  # the master has no KPI and no task: nothing was missed
    assert met.children[0].health is Health.MET
    missed = roll_up(
        PlanFacts(plan=plan(1, Tier.MASTER, date(2026, 1, 1), date(2026, 1, 31)), counts=TaskCounts()),
        [PlanFacts(plan=ended, counts=TaskCounts(), metrics=(MetricFacts(metric=cost, latest=41),))],
        [],
        AS_OF,
    )
    assert missed.children[0].health is Health.MISSED
