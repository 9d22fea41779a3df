"""One KPI across tiers: defined once on the master plan, a share on each tactical plan, one set of readings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest

from bot.text.health import reason_text
from bot.text.recommendations import RuleRecommender
from planner.domain.derivation import tactical_proposals
from planner.domain.errors import Expected, InvalidValue
from planner.domain.kpis import as_counted, latest_counted, value_at
from planner.domain.messages import Envelope
from planner.domain.model import Direction, Health, Metric, MetricReading, MetricSpec, Plan, Tier, Window
from planner.domain.rollup import PlanRollup
from planner.domain.triggers import Trigger, TriggerRules
from planner.services.measurement import Measurement
from planner.services.outbox import Outbox
from planner.services.plans import Plans
from planner.services.triggers import TriggerEngine
from planner.store import Store
from tests.conftest import FakeClock

Q4 = Window(start=date(2026, 10, 1), end=date(2026, 11, 30))  # 61 days: October 31, November 30
FOLLOW_UP = TriggerRules(enabled=frozenset({Trigger.METRIC_DRIFT, Trigger.PLAN_HEALTH}))


def at(day: date, hour: int = 9) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def node(tree: PlanRollup, plan_id: int) -> PlanRollup:
    found = tree.find(plan_id)
    assert found is not None
    return found


async def delivered(store: Store) -> list[Envelope]:
    """The messages due now, as a sender takes and delivers them (so they are not handed out again)."""
    outbox = Outbox(store)
    claimed = await outbox.claim("s", limit=100)
    for envelope in claimed:
        assert await outbox.sent(envelope, "s")
    return claimed


async def quarter(store: Store, clock: FakeClock) -> tuple[Plans, Plan, Plan, Plan]:
    """A master plan with 200 SQLs over Q4's two months, and its tactical plans derived by month, each with its own
    owner and its share of the target."""
    clock.now = at(date(2026, 9, 28))
    tenant = Plans(store, "contoso")
    master = await tenant.create_master_plan(
        title="200 SQLs by November",
        owner="aad-lead",
        window=Q4,
        metrics=[MetricSpec(name="SQLs", target=200, unit="SQL", tolerance=0.1)],
        actor="aad-lead",
    )
    tacticals = []
    for proposal, owner in zip(
        tactical_proposals(master, await tenant.list_metrics(master.id), "monthly"), ["aad-oct", "aad-nov"], strict=True
    ):
        tacticals.append(
            await tenant.create_tactical_plan(
                master.id,
                title=str(proposal["title"]),
                owner=owner,
                window=Window(
                    start=date.fromisoformat(str(proposal["start"])), end=date.fromisoformat(str(proposal["end"]))
                ),
                metrics=[MetricSpec(**kpi) for kpi in proposal["kpis"]],  # type: ignore[attr-defined]
                actor="aad-lead",
            )
        )
    october, november = tacticals
    return tenant, master, october, november


async def record(
    tenant: Plans, value: float, day: date, *, plan_id: int | None = None, backdated: bool = False
) -> MetricReading:
    """A reading of SQLs as `record SQLs <value> [on <day>] [in P<plan>]` records it: by name, as of its day (a
    backdated one, at that day's end)."""
    metric = await tenant.find_metric("SQLs", plan_id=plan_id, on=day)
    moment = datetime.combine(day, time(23, 59), tzinfo=UTC) if backdated else at(day, 8)
    return await tenant.record_reading(metric.id, value, at=moment, source="chat:aad-lead", actor="aad-lead")


async def test_a_quarter_of_readings_on_the_master_plan_is_seen_and_judged_at_every_tier(
    store: Store, clock: FakeClock
) -> None:
    tenant, master, october, november = await quarter(store, clock)
    [kpi] = await tenant.list_metrics(master.id)
    [october_share] = await tenant.list_metrics(october.id)
    [november_share] = await tenant.list_metrics(november.id)
    # Defined once: each month's SQLs is a share of the master's KPI, with its share of the target by days.
    assert (october_share.kpi_id, november_share.kpi_id) == (kpi.id, kpi.id)
    assert (october_share.target, november_share.target) == (pytest.approx(101.64), pytest.approx(98.36))
    assert october_share.unit == "SQL"
    # `record SQLs …` means the KPI, whatever tiers exist; a plan named picks its share, which records on the KPI.
    assert (await tenant.find_metric("SQLs")).id == kpi.id
    assert (await tenant.find_metric("sqls", plan_id=october.id)).id == october_share.id

    engine = TriggerEngine(store, rules=FOLLOW_UP)
    # 10 October: 20 SQLs recorded on the master, 33 expected by now at either tier: both drift, each told to its
    # plan's owner once.
    clock.now = at(date(2026, 10, 10))
    await record(tenant, 20, date(2026, 10, 10))
    tree = await tenant.rollup(master.id, clock.now.date())
    assert [(p.metric.name, p.actual, p.health) for p in tree.metrics] == [("SQLs", 20, Health.OFF_TRACK)]
    assert node(tree, october.id).metrics[0].actual == 20
    assert node(tree, november.id).metrics[0].actual is None  # not begun
    await engine.evaluate(clock.now)
    drifts = sorted((m.recipient, m.payload["plan"]) for m in await delivered(store) if m.kind == "metric_drift")
    assert drifts == [("aad-lead", master.id), ("aad-oct", october.id)]

    # Two days later, the same reading, as far behind: not told again.
    clock.now = at(date(2026, 10, 12))
    await engine.evaluate(clock.now)
    assert [m for m in await delivered(store) if m.kind == "metric_drift"] == []

    # A new reading recorded on October's plan by name is a reading of the KPI: seen by the master too.
    clock.now = at(date(2026, 10, 20))
    reading = await record(tenant, 60, date(2026, 10, 20), plan_id=october.id)
    assert reading.metric_id == kpi.id
    tree = await tenant.rollup(master.id, clock.now.date())
    assert tree.metrics[0].actual == 60
    assert node(tree, october.id).metrics[0].actual == 60

    # November begins; on 3 November the month-end figure is recorded, backdated to 31 October, then today's.
    clock.now = at(date(2026, 11, 3))
    await engine.evaluate(at(date(2026, 11, 2)))  # a tick across the month end, before the backdated reading
    assert all(m.payload["plan"] != october.id for m in await delivered(store))
    await record(tenant, 110, date(2026, 10, 31), backdated=True)
    await record(tenant, 118, date(2026, 11, 3))
    tree = await tenant.rollup(master.id, clock.now.date())
    oct_node, nov_node = node(tree, october.id), node(tree, november.id)
    # October is over: judged final at its end, a minute after the reading of its last day (110 of its 101.64),
    # never "at risk".
    assert (oct_node.health, oct_node.metrics[0].health) == (Health.MET, Health.MET)
    assert oct_node.metrics[0].actual == pytest.approx(110, abs=0.01)
    assert oct_node.metrics[0].measured_on == date(2026, 10, 31)
    # November counts what was won since October closed (118 - 110), the master the running total.
    assert nov_node.metrics[0].actual == pytest.approx(8, abs=0.01)
    assert tree.metrics[0].actual == 118
    await engine.evaluate(clock.now)
    told = await delivered(store)
    assert all(m.payload["plan"] != october.id for m in told)  # no drift, no health news about an ended month
    assert [(m.recipient, m.payload["plan"]) for m in told if m.kind == "metric_drift"] == [("aad-nov", november.id)]

    # The measurement report sees the same readings at every tier, within each window.
    report = await Measurement(store, "contoso").report(master.id, clock.now.date(), RuleRecommender())
    actual = {f.plan.id: f.actual for f in report.forecasts}
    assert actual == {master.id: 118, october.id: pytest.approx(110, abs=0.01), november.id: pytest.approx(8, abs=0.01)}
    [october_advice] = [r for r in report.recommendations if r.plan_id == october.id]
    assert october_advice.action.startswith("Nothing to catch up on SQLs in 200 SQLs by November: October 2026")
    assert october_advice.rationale == "SQLs ended at 110 SQL against a target of 102 SQL on Sat 31 Oct 2026 (met)."

    # The quarter ends short: November won 72 of its 98.36, the master 182 of 200. Both are missed, final.
    clock.now = at(date(2026, 11, 30))
    await record(tenant, 182, date(2026, 11, 30))
    await engine.evaluate(clock.now)
    await delivered(store)
    clock.now = at(date(2026, 12, 2))
    tree = await tenant.rollup(master.id, clock.now.date())
    assert [(n.plan.id, n.health) for n in (tree, *tree.children)] == [
        (master.id, Health.MISSED),
        (october.id, Health.MET),
        (november.id, Health.MISSED),
    ]
    assert [reason_text(r) for r in node(tree, november.id).reasons] == [
        "SQLs ended at 72 SQL against a target of 98 SQL"
    ]
    for day in range(3):  # ticks after the end: nothing about any of the ended plans
        assert await engine.evaluate(at(date(2026, 12, 2) + timedelta(days=day))) == 0
    assert await delivered(store) == []


async def test_a_share_set_by_the_leader_is_judged_on_the_kpis_readings(store: Store, clock: FakeClock) -> None:
    clock.now = at(date(2026, 10, 16))
    tenant = Plans(store, "contoso")
    master = await tenant.create_master_plan(
        title="Q4", owner="aad-lead", window=Q4, metrics=[MetricSpec(name="SQLs", target=200)], actor="aad-lead"
    )
    launch = await tenant.create_tactical_plan(
        master.id,
        title="Launch",
        owner="aad-lead",
        window=Window(start=date(2026, 10, 15), end=date(2026, 10, 31)),
        metrics=[MetricSpec(name="sqls", target=40)],
        actor="aad-lead",
    )
    [share] = await tenant.list_metrics(launch.id)
    [master_kpi] = await tenant.list_metrics(master.id)
    assert (share.kpi_id, share.baseline) == (master_kpi.id, 0)
    await tenant.set_metric_target(share.id, 50, actor="aad-lead")  # the leader moves the share
    await record(tenant, 30, date(2026, 10, 14), backdated=True)  # the evening before the launch: opens its window
    await record(tenant, 45, date(2026, 10, 16))
    launched = node(await tenant.rollup(master.id, date(2026, 10, 16)), launch.id)
    assert (launched.metrics[0].actual, launched.metrics[0].metric.target) == (pytest.approx(15, abs=0.01), 50)


async def test_a_kpi_defined_after_its_tactical_plans_tracked_the_name_takes_their_metrics_as_shares(
    store: Store, clock: FakeClock
) -> None:
    clock.now = at(date(2026, 10, 16))
    tenant = Plans(store, "contoso")
    master = await tenant.create_master_plan(title="Q4", owner="aad-lead", window=Q4, actor="aad-lead")
    launch = await tenant.create_tactical_plan(
        master.id,
        title="Launch",
        owner="aad-lead",
        window=Window(start=date(2026, 10, 1), end=date(2026, 10, 31)),
        metrics=[MetricSpec(name="SQLs", target=90)],
        actor="aad-lead",
    )
    [own] = await tenant.list_metrics(launch.id)
    await tenant.record_reading(own.id, 35, at=at(date(2026, 10, 15)), actor="aad-lead")
    kpi = await tenant.add_metric(master.id, MetricSpec(name="sqls", target=200), actor="aad-lead")
    [share] = await tenant.list_metrics(launch.id)
    assert share.kpi_id == kpi.id
    assert [r.value for r in await tenant.readings(kpi.id)] == [35]
    tree = await tenant.rollup(master.id, date(2026, 10, 16))
    assert (tree.metrics[0].actual, node(tree, launch.id).metrics[0].actual) == (35, 35)
    [linked] = await tenant.events(subject_type="metric", subject_id=share.id, limit=1)
    assert (linked.kind, linked.after and linked.after["kpi_id"]) == ("metric.updated", kpi.id)


async def test_a_share_of_a_falling_kpi_is_a_level_judged_as_it_reads(store: Store, clock: FakeClock) -> None:
    clock.now = at(date(2026, 10, 20))
    tenant = Plans(store, "contoso")
    master = await tenant.create_master_plan(
        title="Q4",
        owner="aad-lead",
        window=Q4,
        metrics=[MetricSpec(name="Cost per lead", target=40, baseline=60, unit="EUR")],
        actor="aad-lead",
    )
    october = await tenant.create_tactical_plan(
        master.id,
        title="October",
        owner="aad-lead",
        window=Window(start=date(2026, 10, 1), end=date(2026, 10, 31)),
        metrics=[MetricSpec(name="cost per lead", target=50)],  # as a leader types it: no baseline, no direction
        actor="aad-lead",
    )
    [share] = await tenant.list_metrics(october.id)
    assert (share.direction, share.baseline, share.target, share.unit) == (Direction.DOWN, 60, 50, "EUR")
    kpi = await tenant.find_metric("Cost per lead")
    await tenant.record_reading(kpi.id, 58, at=at(date(2026, 9, 30)), actor="aad-lead")
    await tenant.record_reading(kpi.id, 52, at=at(date(2026, 10, 19)), actor="aad-lead")
    tree = await tenant.rollup(master.id, date(2026, 10, 20))
    assert (tree.metrics[0].actual, node(tree, october.id).metrics[0].actual) == (52, 52)


async def test_a_name_two_master_plans_define_means_the_one_running_on_the_readings_day(
    store: Store, clock: FakeClock
) -> None:
    clock.now = at(date(2026, 10, 16))
    tenant = Plans(store, "contoso")
    last = await tenant.create_master_plan(
        title="Q3",
        owner="aad-lead",
        window=Window(start=date(2026, 7, 1), end=date(2026, 9, 30)),
        metrics=[MetricSpec(name="SQLs", target=150)],
        actor="aad-lead",
    )
    this = await tenant.create_master_plan(
        title="Q4", owner="aad-lead", window=Q4, metrics=[MetricSpec(name="SQLs", target=200)], actor="aad-lead"
    )
    assert (await tenant.find_metric("SQLs", on=date(2026, 10, 16))).plan_id == this.id
    assert (await tenant.find_metric("SQLs", on=date(2026, 9, 15))).plan_id == last.id
    with pytest.raises(InvalidValue) as ambiguous:  # truly ambiguous: asked, nothing recorded
        await tenant.find_metric("SQLs", on=date(2026, 12, 15))
    assert ambiguous.value.expected is Expected.PLAN_ID_TOO
    assert ambiguous.value.details == {"plans": (last.id, this.id)}


def _reading(day: date, value: float, reading_id: int, *, hour: int = 9) -> MetricReading:
    return MetricReading(id=reading_id, tenant_id="t", metric_id=1, at=at(day, hour), value=value, source="chat")


def _metric(metric_id: int, plan_id: int, *, kpi_id: int | None = None, **values: float) -> Metric:
    fields = {"baseline": 0.0, "target": 100.0, "direction": Direction.UP} | values
    return Metric(
        id=metric_id,
        tenant_id="t",
        plan_id=plan_id,
        name="SQLs",
        unit="",
        tolerance=0.1,
        kpi_id=kpi_id,
        **fields,  # type: ignore[arg-type]
    )


def _plan(plan_id: int, start: date, end: date) -> Plan:
    return Plan(
        id=plan_id,
        tenant_id="t",
        tier=Tier.TACTICAL if plan_id > 1 else Tier.MASTER,
        parent_id=None if plan_id == 1 else 1,
        master_id=None if plan_id == 1 else 1,
        title=f"P{plan_id}",
        owner="lead",
        window=Window(start=start, end=end),
        created_at=at(date(2026, 1, 1)),
    )


def test_a_share_counts_the_gain_inside_its_window_and_a_falling_kpi_its_level() -> None:
    master, march = _plan(1, date(2026, 1, 1), date(2026, 3, 31)), _plan(2, date(2026, 3, 1), date(2026, 3, 31))
    kpi = _metric(1, 1, baseline=10, target=310)
    share = _metric(2, 2, kpi_id=1)
    readings = [
        _reading(date(2026, 2, 10), 150, 1, hour=0),
        _reading(date(2026, 2, 25), 190, 2, hour=0),
        _reading(date(2026, 3, 5), 230, 3, hour=0),  # 40 more in 8 days: March opened at 210, halfway through them
        _reading(date(2026, 4, 2), 300, 4, hour=0),  # after both windows: March closed at 297.5, 27 of 28 days in
    ]
    opened = master.window.start
    counted = as_counted(share, march, readings, kpi, opened=opened)
    assert [(r.at.date(), r.value) for r in counted] == [(date(2026, 3, 5), 20), (date(2026, 3, 31), 87.5)]
    assert [r.value for r in as_counted(kpi, master, readings)] == [150, 190, 230]
    # As of a day, only the readings taken by then: on 31 March the month stands at its reading of the 5th.
    assert latest_counted(share, march, readings, date(2026, 3, 31), kpi, opened=opened).value == 20  # type: ignore[union-attr]
    assert latest_counted(share, march, readings, date(2026, 4, 2), kpi, opened=opened).value == 87.5  # type: ignore[union-attr]
    # Backdated: judged at its own date, so March as of the 4th has no reading yet.
    assert latest_counted(share, march, readings, date(2026, 3, 4), kpi, opened=opened) is None
    # The first month opens where the KPI starts: at its baseline.
    first = _plan(3, date(2026, 1, 1), date(2026, 1, 31))
    assert [r.value for r in as_counted(share, first, [_reading(date(2026, 1, 20), 40, 1)], kpi, opened=opened)] == [30]
    cost = _metric(1, 1, baseline=60, target=40, direction=Direction.DOWN)
    cost_share = _metric(2, 2, kpi_id=1, baseline=60, target=40, direction=Direction.DOWN)
    assert [r.value for r in as_counted(cost_share, march, readings[:3], cost, opened=opened)] == [230]


def test_a_later_month_read_only_once_counts_its_own_part_of_the_running_total_not_the_quarters() -> None:
    # A quarter's first reading comes in its second month: 410 SQLs on 10 February, 400 won since 1 January. February
    # is judged on what it won (the 9 days of it at the quarter's pace: 90), not on the quarter's 400.
    master, february = _plan(1, date(2026, 1, 1), date(2026, 3, 31)), _plan(2, date(2026, 2, 1), date(2026, 2, 28))
    kpi, share = _metric(1, 1, baseline=10, target=610), _metric(2, 2, kpi_id=1, target=200)
    readings = [_reading(date(2026, 2, 10), 410, 1, hour=0)]
    latest = latest_counted(share, february, readings, date(2026, 2, 10), kpi, opened=master.window.start)
    assert latest is not None
    assert latest.value == 90
    assert [r.value for r in as_counted(share, february, readings, kpi, opened=master.window.start)] == [90]
    assert value_at(datetime(2026, 2, 1, tzinfo=UTC), readings, (datetime(2026, 1, 1, tzinfo=UTC), 10)) == 320


def test_the_latest_counted_reading_is_the_last_of_those_counted_whatever_the_day_asked() -> None:
    # `latest_counted` finds its answer from the end; it must agree with counting every reading and taking the last.
    master, march = _plan(1, date(2026, 1, 1), date(2026, 12, 31)), _plan(2, date(2026, 3, 1), date(2026, 3, 31))
    days = [date(2026, 2, 10), date(2026, 2, 27), date(2026, 3, 1), date(2026, 3, 9), date(2026, 3, 31)]
    readings = [_reading(day, 10.0 * (n + 1), n) for n, day in enumerate([*days, date(2026, 4, 2)])]
    rising, falling = _metric(1, 1, baseline=5, target=310), _metric(1, 1, baseline=60, target=40)
    falling = replace(falling, direction=Direction.DOWN)
    for kpi in (rising, falling):
        cases = [(kpi, master, None), (replace(kpi, id=2, plan_id=2, kpi_id=1), march, kpi)]
        for metric, plan, defined in cases:
            for offset in range(-30, 60):
                as_of = date(2026, 3, 1) + timedelta(days=offset)
                known = [r for r in readings if r.at.date() <= as_of]
                counted = [r for r in as_counted(metric, plan, known, defined) if r.at.date() <= as_of]
                expected = counted[-1] if counted else None
                assert latest_counted(metric, plan, readings, as_of, defined) == expected, (metric, as_of)
