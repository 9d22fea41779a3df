"""Every figure of planner/domain/measurement.py on one constructed dataset, against values worked out by hand.

The master plan P1 runs four ISO weeks, Monday 5 January to Sunday 1 February 2026; the figures are taken as of
Sunday 18 January, the end of its second week (half of its 28 days gone).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import insert

from planner.domain.measurement import (
    NO_AGENT,
    ApprovalFact,
    DelegationFact,
    MeasurementFacts,
    MetricSeries,
    Outcomes,
    Step,
    forecast,
    measure,
    next_steps,
    precision,
    productivity,
)
from planner.domain.model import (
    Direction,
    Metric,
    MetricReading,
    MetricSpec,
    Plan,
    Task,
    TaskChanges,
    TaskStatus,
    Tier,
    Window,
)
from planner.services.measurement import Measurement
from planner.services.plans import Plans
from planner.store import Store
from planner.store.schema import approval_requests, delegations
from tests.conftest import FakeClock

TENANT = "tenant-contoso"
AS_OF = date(2026, 1, 18)
CREATED = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def at(day: int, hour: int = 9, month: int = 1) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


def plan(plan_id: int, tier: Tier, start: date, end: date, title: str) -> Plan:
    return Plan(
        id=plan_id,
        tenant_id=TENANT,
        tier=tier,
        parent_id=None if tier is Tier.MASTER else 1,
        master_id=None if tier is Tier.MASTER else 1,
        title=title,
        owner="aad-lead",
        window=Window(start=start, end=end),
        created_at=CREATED,
    )


MASTER = plan(1, Tier.MASTER, date(2026, 1, 5), date(2026, 2, 1), "280 SQLs by February")
LAUNCH = plan(2, Tier.TACTICAL, date(2026, 1, 5), date(2026, 1, 25), "Launch")
ABM = plan(3, Tier.TACTICAL, date(2026, 1, 12), date(2026, 2, 1), "ABM")


def task(
    task_id: int,
    plan_id: int,
    due: date,
    *,
    status: TaskStatus = TaskStatus.TODO,
    started: datetime | None = None,
    done: datetime | None = None,
    milestone: bool = False,
) -> Task:
    return Task(
        id=task_id,
        tenant_id=TENANT,
        plan_id=plan_id,
        master_id=1,
        title=f"Task {task_id}",
        owner="aad-member",
        due_on=due,
        status=TaskStatus.DONE if done else status,
        milestone=milestone,
        created_at=CREATED,
        started_at=started,
        done_at=done,
    )


TASKS = (
    task(1, 2, date(2026, 1, 7), started=at(5), done=at(7)),  # on time, 2 days
    task(2, 2, date(2026, 1, 9), done=at(12)),  # late; never started: 7 days from its creation
    task(3, 2, date(2026, 1, 16), started=at(13), done=at(16, 21), milestone=True),  # on time, 3.5 days: the launch
    task(4, 2, date(2026, 1, 14)),  # open after its due day: judged, and late
    task(5, 3, date(2026, 1, 20)),  # due after the day measured: not judged yet
    task(6, 3, date(2026, 1, 30), milestone=True),  # ABM's milestone, open: not launched
    task(7, 3, date(2026, 1, 15), started=at(13, 12), done=at(14, 12)),  # on time, 1 day
    task(8, 2, date(2026, 1, 18), done=at(19)),  # done after the day measured: neither done nor judged yet
)


def metric(metric_id: int, plan_id: int, name: str, baseline: float, target: float, tolerance: float) -> Metric:
    return Metric(
        id=metric_id,
        tenant_id=TENANT,
        plan_id=plan_id,
        name=name,
        unit="",
        direction=Direction.UP if target >= baseline else Direction.DOWN,
        baseline=baseline,
        target=target,
        tolerance=tolerance,
    )


SQLS = metric(1, 1, "SQLs", 0, 280, 0.1)
COST = metric(2, 3, "Cost per lead", 100, 80, 0.3)
SIGNUPS = metric(3, 2, "Launch signups", 0, 100, 0.1)


def reading(metric_id: int, when: datetime, value: float) -> MetricReading:
    return MetricReading(id=0, tenant_id=TENANT, metric_id=metric_id, at=when, value=value, source="chat:aad-lead")


SERIES = (
    MetricSeries(metric=SQLS, plan=MASTER, readings=(reading(1, at(11), 60), reading(1, at(18, 12), 120))),
    MetricSeries(metric=COST, plan=ABM, readings=(reading(2, at(18, 12), 95), reading(2, at(25), 70))),
    MetricSeries(metric=SIGNUPS, plan=LAUNCH),
)

DELEGATIONS = (
    DelegationFact(task_id=1, adapter="hubspot", status="succeeded"),
    DelegationFact(task_id=2, adapter="hubspot", status="failed"),
    DelegationFact(task_id=3, adapter="hubspot", status="succeeded"),
    DelegationFact(task_id=7, adapter="copilot", status="succeeded"),
    DelegationFact(task_id=4, adapter="copilot", status="deferred"),
    DelegationFact(task_id=5, adapter="copilot", status="failed"),
)


def approval(
    approval_id: int,
    status: str,
    *,
    agent: str | None,
    rules: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    note: str | None = None,
) -> ApprovalFact:
    return ApprovalFact(id=approval_id, agent=agent, rules=rules, categories=categories, status=status, note=note)


APPROVALS = (
    approval(1, "approved", agent="hubspot", rules=("discount-cap",)),
    approval(2, "resumed", agent="hubspot", rules=("discount-cap",), note="cut the discount to 10 %"),
    approval(3, "rejected", agent="hubspot", categories=("audience",)),
    approval(4, "expired", agent=None, categories=("budget",)),
    approval(5, "rejected", agent="copilot", rules=("renewal-flag", "discount-cap")),
    approval(6, "pending", agent="copilot", rules=("discount-cap",)),
)

FACTS = MeasurementFacts(
    master=MASTER,
    tacticals=(LAUNCH, ABM),
    tasks=TASKS,
    carried_over=(("2026-W03", 4), ("2026-W04", 4)),
    series=SERIES,
    delegations=DELEGATIONS,
    approvals=APPROVALS,
)


def test_on_time_rate_counts_late_done_and_overdue_open_tasks_against_it() -> None:
    figures = productivity(FACTS, AS_OF)
    # judged: T1 (on time), T2 (late), T3 (on time), T4 (open, overdue), T7 (on time)
    assert (figures.on_time, figures.judged) == (3, 5)
    assert figures.on_time_rate == pytest.approx(0.6)


def test_cycle_time_is_the_mean_days_from_start_or_creation_to_done() -> None:
    figures = productivity(FACTS, AS_OF)
    # T1 2.0, T2 7.0 (from creation), T3 3.5, T7 1.0
    assert figures.done == 4
    assert figures.cycle_time_days == pytest.approx((2.0 + 7.0 + 3.5 + 1.0) / 4)


def test_throughput_counts_tasks_done_in_each_week_begun() -> None:
    figures = productivity(FACTS, AS_OF)
    assert figures.weekly_done == (("2026-W02", 1), ("2026-W03", 3))
    assert figures.throughput == pytest.approx(2.0)


def test_carried_over_tasks_count_only_weeks_begun() -> None:
    assert productivity(FACTS, AS_OF).carried_over == 1
    assert productivity(FACTS, date(2026, 1, 19)).carried_over == 2


def test_time_to_launch_is_days_to_the_last_milestone_and_none_before_it() -> None:
    launch, abm = productivity(FACTS, AS_OF).launches
    assert (launch.plan_id, launch.days, launch.milestones, launch.milestones_done) == (2, 11, 1, 1)
    assert (abm.plan_id, abm.days, abm.milestones, abm.milestones_done) == (3, None, 1, 0)


def test_delegations_completed_are_counted_per_agent() -> None:
    figures = productivity(FACTS, AS_OF)
    assert figures.delegations_completed == {"copilot": 1, "hubspot": 2}
    assert figures.delegations_completed_total == 3


def test_kpi_attainment_against_target_and_against_pace() -> None:
    sqls, cost, signups = precision(FACTS, AS_OF).attainment
    # SQLs: 120 of 280; half the window gone, so 140 expected
    assert (sqls.actual, sqls.expected) == (120, pytest.approx(140))
    assert sqls.against_target == pytest.approx(120 / 280)
    assert sqls.against_pace == pytest.approx(120 / 140)
    # Cost per lead goes down, 100 -> 80 over ABM's 21 days, a third gone: 93.33 expected; 95 read (the 70 is later)
    assert cost.actual == 95
    assert cost.expected == pytest.approx(100 - 20 / 3)
    assert cost.against_target == pytest.approx(0.25)
    assert cost.against_pace == pytest.approx(0.75)
    assert (signups.actual, signups.against_target, signups.against_pace) == (None, None, None)


def test_delegation_success_rate_per_agent_and_overall() -> None:
    figures = precision(FACTS, AS_OF)
    assert figures.delegations["hubspot"].success_rate == pytest.approx(2 / 3)
    assert figures.delegations["copilot"].success_rate == pytest.approx(1 / 2)
    assert figures.delegation_success_rate == pytest.approx(3 / 5)


def test_approval_outcomes_per_agent() -> None:
    by_agent = precision(FACTS, AS_OF).by_agent
    assert by_agent == {
        "copilot": Outcomes(rejected=1),
        "hubspot": Outcomes(approved=1, edited=1, rejected=1),
        NO_AGENT: Outcomes(expired=1),  # the bot words it
    }
    hubspot = by_agent["hubspot"]
    assert [hubspot.rate(o) for o in ("approved", "edited", "rejected")] == [pytest.approx(1 / 3)] * 3


def test_approval_outcomes_per_policy_file_unflagged_requests_under_their_gate() -> None:
    by_policy = precision(FACTS, AS_OF).by_policy
    assert by_policy == {
        "discount-cap": Outcomes(approved=1, edited=1, rejected=1),
        "gate:audience": Outcomes(rejected=1),
        "gate:budget": Outcomes(expired=1),
        "renewal-flag": Outcomes(rejected=1),
    }
    assert by_policy["discount-cap"].rate("rejected") == pytest.approx(1 / 3)


def test_forecast_extends_the_pace_since_the_baseline_to_the_plans_end() -> None:
    sqls = forecast(SERIES[0], AS_OF)
    # 120 in the first 14 days; 14 days left at the same pace: 240; 160 more in 2 weeks needs 80 a week
    assert sqls.projected == pytest.approx(240)
    assert sqls.per_week == pytest.approx(60)
    assert sqls.needed_per_week == pytest.approx(80)
    assert sqls.projected_attainment == pytest.approx(240 / 280)
    cost = forecast(SERIES[1], AS_OF)
    # -5 in ABM's first 7 days, 14 left: 85, three quarters of the way to 80
    assert cost.projected == pytest.approx(85)
    assert cost.projected_attainment == pytest.approx(0.75)
    assert cost.needed_per_week == pytest.approx(-7.5)
    assert forecast(SERIES[2], AS_OF).projected is None


def test_rules_recommend_unblocking_pushing_or_a_first_reading() -> None:
    sqls, cost, signups = next_steps(measure(FACTS, AS_OF))
    assert (sqls.step, sqls.stuck, sqls.stuck_count) == (Step.UNBLOCK, (4,), 1)
    assert sqls.forecast.projected == pytest.approx(240)
    assert cost.step is Step.PUSH
    assert signups.step is Step.RECORD_FIRST


def test_a_kpi_on_course_is_told_to_keep_it() -> None:
    ahead = MetricSeries(metric=SQLS, plan=MASTER, readings=(reading(1, at(18), 150),))
    [step] = next_steps(measure(MeasurementFacts(master=MASTER, series=(ahead,)), AS_OF))
    assert step.step is Step.KEEP


def test_a_kpi_behind_with_nothing_late_is_told_to_re_plan() -> None:
    behind = MetricSeries(metric=SQLS, plan=MASTER, readings=(reading(1, at(18), 50),))
    [step] = next_steps(measure(MeasurementFacts(master=MASTER, series=(behind,)), AS_OF))
    assert (step.step, step.stuck) == (Step.REPLAN, ())


# ---- reading the facts from the store ----------------------------------------------------------------------------


async def test_the_facts_of_a_plan_are_read_from_every_table_they_live_in(store: Store, clock: FakeClock) -> None:
    clock.now = datetime(2026, 1, 5, 9, tzinfo=UTC)
    plans = Plans(store, TENANT)
    window = Window(start=date(2026, 1, 5), end=date(2026, 1, 18))
    master = await plans.create_master_plan(
        title="Two weeks", owner="aad-lead", window=window, metrics=[MetricSpec(name="SQLs", target=50)], actor="x"
    )
    tactical = await plans.create_tactical_plan(master.id, title="Sprint", owner="aad-lead", window=window, actor="x")
    late = await plans.add_task(tactical.id, title="Late", due_on=date(2026, 1, 7), actor="x")
    done = await plans.add_task(tactical.id, title="Done", due_on=date(2026, 1, 8), actor="x")
    await plans.derive_weekly_plan(tactical.id, "2026-W02", actor="x")
    clock.now = datetime(2026, 1, 8, 9, tzinfo=UTC)
    await plans.update_task(done.id, TaskChanges(status=TaskStatus.DONE), actor="x")
    sqls = await plans.find_metric("SQLs")
    await plans.record_reading(sqls.id, 20, actor="x")
    clock.now = datetime(2026, 1, 12, 9, tzinfo=UTC)
    await plans.derive_weekly_plan(tactical.id, "2026-W03", actor="x")
    async with store.transaction() as conn:
        for task_id, status in ((late.id, "failed"), (done.id, "succeeded")):
            await conn.execute(
                insert(delegations).values(
                    tenant_id=TENANT,
                    task_id=task_id,
                    adapter="hubspot",
                    adapter_kind="mcp",
                    capability="draft_email",
                    input={},
                    timeout_seconds=60,
                    actor="x",
                    status=status,
                    queued_at=clock.now,
                    attempts=1,
                )
            )
        for created, note in ((datetime(2026, 1, 6, tzinfo=UTC), "shorter"), (datetime(2025, 12, 1, tzinfo=UTC), None)):
            await conn.execute(
                insert(approval_requests).values(
                    tenant_id=TENANT,
                    action={"kind": "delegation", "actor": "agent:hubspot", "agent": "hubspot", "categories": []},
                    requester="aad-member",
                    reason="r",
                    policy={"verdict": "flag", "rules": ["discount-cap"], "reasons": [], "facts": []},
                    resume={"delegation": 1},
                    roles=["leader"],
                    approvers=["aad-lead"],
                    status="approved",
                    created_at=created,
                    expires_at=created,
                    note=note,
                )
            )
    facts = await Measurement(store, TENANT).facts(tactical.id)
    assert facts.master.id == master.id
    assert [p.id for p in facts.tacticals] == [tactical.id]
    assert [t.id for t in facts.tasks] == [late.id, done.id]
    assert facts.carried_over == (("2026-W03", late.id),)
    assert [(d.task_id, d.status) for d in facts.delegations] == [(late.id, "failed"), (done.id, "succeeded")]
    [approval] = facts.approvals  # the one from before the plan started is not the plan's
    assert (approval.agent, approval.rules, approval.note) == ("hubspot", ("discount-cap",), "shorter")
    [series] = facts.series
    assert [r.value for r in series.readings] == [20]
    report = measure(facts, date(2026, 1, 12))
    assert (report.productivity.on_time, report.productivity.judged) == (1, 2)
    assert report.productivity.carried_over == 1
    assert report.precision.by_agent == {"hubspot": Outcomes(edited=1)}
    assert report.precision.delegation_success_rate == pytest.approx(0.5)
