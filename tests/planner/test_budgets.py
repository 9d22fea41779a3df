"""Budgets: a master plan's budget, its tactical plans' allocations of it, spend by day, and pace."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta

import pytest

from planner.domain.budgets import (
    BudgetBelowAllocations,
    BudgetPace,
    CurrencyMismatch,
    InvalidSpendEvent,
    NoBudget,
    NotEnoughAllocated,
    OverAllocated,
    is_shift,
    minor_units,
    pace_of,
    parse_spend_events,
)
from planner.domain.errors import InvalidValue, PlanNotFound
from planner.domain.model import Plan, Window
from planner.services.budgets import Budgets, ReplayedSpendEvent, StaleSpendEvent
from planner.services.plans import Plans
from planner.services.tenants import Tenants
from planner.store import Store
from tests.conftest import FakeClock

Q4 = Window(start=date(2026, 10, 1), end=date(2026, 12, 31))
OCTOBER = Window(start=date(2026, 10, 1), end=date(2026, 10, 31))
NOVEMBER = Window(start=date(2026, 11, 1), end=date(2026, 11, 30))
TENANT = "contoso"


def at(day: date, hour: int = 9) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


async def quarter(store: Store, clock: FakeClock) -> tuple[Budgets, Plan, Plan, Plan]:
    """A master plan over Q4 with a 250k USD budget, and two tactical plans (October and November)."""
    clock.now = at(date(2026, 9, 28))
    plans = Plans(store, TENANT)
    master = await plans.create_master_plan(title="Q4", owner="aad-lead", window=Q4, actor="aad-lead")
    october = await plans.create_tactical_plan(
        master.id, title="October", owner="aad-lead", window=OCTOBER, actor="aad-lead"
    )
    november = await plans.create_tactical_plan(
        master.id, title="November", owner="aad-lead", window=NOVEMBER, actor="aad-lead"
    )
    budgets = Tenants(store)(TENANT).budgets
    await budgets.set_budget(master.id, minor_units(250_000), "usd", actor="aad-lead")
    return budgets, master, october, november


def test_amounts_are_kept_in_cents_exactly() -> None:
    assert minor_units("12500.505") == 1_250_051
    assert minor_units(60_000) == 6_000_000
    with pytest.raises(InvalidValue):
        minor_units(-1)
    with pytest.raises(InvalidValue):
        minor_units("nan")
    with pytest.raises(InvalidValue):
        minor_units(0, allow_zero=False)
    with pytest.raises(InvalidValue):
        minor_units(1e20)


def test_pace_compares_spend_with_the_share_of_the_window_gone() -> None:
    # 31 days; by 17 October 55 % of the window is gone.
    assert pace_of(60_000, 42_000, OCTOBER, date(2026, 10, 17)) is BudgetPace.AHEAD
    assert pace_of(60_000, 33_000, OCTOBER, date(2026, 10, 17)) is BudgetPace.ON_PACE
    assert pace_of(60_000, 10_000, OCTOBER, date(2026, 10, 17)) is BudgetPace.BEHIND
    assert pace_of(60_000, 0, OCTOBER, date(2026, 10, 17)) is BudgetPace.NO_SPEND
    assert pace_of(60_000, 61_000, OCTOBER, date(2026, 10, 17)) is BudgetPace.OVER
    assert pace_of(60_000, 59_000, OCTOBER, date(2026, 11, 2)) is BudgetPace.ENDED_WITHIN
    assert pace_of(60_000, 61_000, OCTOBER, date(2026, 11, 2)) is BudgetPace.ENDED_OVER


def test_raising_an_allocation_is_a_shift_lowering_it_is_not() -> None:
    assert not is_shift(None, 100, by_leader_in_person=True)
    assert is_shift(None, 100, by_leader_in_person=False)


async def test_allocations_cannot_exceed_the_budget_and_the_error_names_the_headroom(
    store: Store, clock: FakeClock
) -> None:
    budgets, _, october, november = await quarter(store, clock)
    first = await budgets.allocate(october.id, minor_units(200_000), None, actor="aad-lead")
    assert first.headroom == minor_units(50_000)
    with pytest.raises(OverAllocated) as refused:
        await budgets.allocate(november.id, minor_units(60_000), "USD", actor="aad-lead")
    assert refused.value.headroom == minor_units(50_000)
    assert (await budgets.budget_of(november.id)) is None  # nothing written
    # Lowering one allocation makes room for another.
    await budgets.allocate(october.id, minor_units(150_000), None, actor="aad-lead")
    second = await budgets.allocate(november.id, minor_units(100_000), None, actor="aad-lead")
    assert second.headroom == 0


async def test_a_budget_cannot_drop_below_what_is_allocated_nor_change_currency_under_allocations(
    store: Store, clock: FakeClock
) -> None:
    budgets, master, october, _ = await quarter(store, clock)
    await budgets.allocate(october.id, minor_units(100_000), None, actor="aad-lead")
    with pytest.raises(BudgetBelowAllocations):
        await budgets.set_budget(master.id, minor_units(90_000), "USD", actor="aad-lead")
    with pytest.raises(CurrencyMismatch):
        await budgets.set_budget(master.id, minor_units(300_000), "EUR", actor="aad-lead")
    raised = await budgets.set_budget(master.id, minor_units(300_000), "USD", actor="aad-lead")
    assert (raised.amount, raised.version) == (minor_units(300_000), 2)


async def test_a_budget_is_a_master_plans_and_an_allocation_a_tactical_plans(store: Store, clock: FakeClock) -> None:
    budgets, master, october, _ = await quarter(store, clock)
    with pytest.raises(PlanNotFound):
        await budgets.set_budget(october.id, 100, "USD", actor="aad-lead")
    with pytest.raises(PlanNotFound):
        await budgets.allocate(master.id, 100, None, actor="aad-lead")
    with pytest.raises(CurrencyMismatch):
        await budgets.allocate(october.id, 100, "EUR", actor="aad-lead")


async def test_allocating_without_a_budget_says_to_set_one(store: Store, clock: FakeClock) -> None:
    plans = Plans(store, TENANT)
    master = await plans.create_master_plan(title="Q4", owner="aad-lead", window=Q4, actor="aad-lead")
    tactical = await plans.create_tactical_plan(
        master.id, title="October", owner="aad-lead", window=OCTOBER, actor="aad-lead"
    )
    with pytest.raises(NoBudget):
        await Budgets(store, TENANT).allocate(tactical.id, 100, None, actor="aad-lead")


async def test_moving_money_lowers_one_allocation_and_raises_the_other(store: Store, clock: FakeClock) -> None:
    budgets, _, october, november = await quarter(store, clock)
    await budgets.allocate(october.id, minor_units(100_000), None, actor="aad-lead")
    lowered, raised = await budgets.move(
        minor_units(30_000), "USD", from_plan=october.id, to_plan=november.id, actor="aad-lead"
    )
    assert (lowered.after.amount, raised.after.amount) == (minor_units(70_000), minor_units(30_000))
    with pytest.raises(NotEnoughAllocated):
        await budgets.move(minor_units(80_000), None, from_plan=october.id, to_plan=november.id, actor="aad-lead")
    events = await Plans(store, TENANT).events(subject_type="plan", subject_id=november.id)
    assert [e.kind for e in events][:1] == ["budget.moved"]


async def test_backdated_spend_counts_at_its_own_day_on_the_plan_and_its_master(store: Store, clock: FakeClock) -> None:
    budgets, master, october, november = await quarter(store, clock)
    await budgets.allocate(october.id, minor_units(60_000), None, actor="aad-lead")
    clock.now = at(date(2026, 10, 17))
    today = clock.now.date()
    await budgets.record_spend(
        october.id, minor_units(30_000), None, spent_on=date(2026, 10, 5), today=today, source="chat:x", actor="x"
    )
    await budgets.record_spend(
        october.id, minor_units(12_000), "USD", spent_on=today, today=today, source="chat:x", actor="x"
    )
    statuses = await budgets.statuses([master, october, november], today)
    assert statuses[october.id].spent == minor_units(42_000)
    assert statuses[october.id].pace is BudgetPace.AHEAD
    assert statuses[master.id].spent == minor_units(42_000)
    assert statuses[master.id].allocated == minor_units(60_000)
    assert november.id not in statuses  # no allocation, no spend
    # As of 10 October only the backdated spend had happened.
    earlier = await budgets.statuses([october], date(2026, 10, 10))
    assert earlier[october.id].spent == minor_units(30_000)


async def test_spend_must_be_of_a_past_day_inside_the_plans_window(store: Store, clock: FakeClock) -> None:
    budgets, _, october, _ = await quarter(store, clock)
    clock.now = at(date(2026, 10, 17))
    today = clock.now.date()
    for day in (date(2026, 10, 18), date(2026, 9, 30)):
        with pytest.raises(InvalidValue):
            await budgets.record_spend(october.id, 100, None, spent_on=day, today=today, source="chat:x", actor="x")


async def test_signed_spend_events_are_stored_once_and_checked_whole(store: Store, clock: FakeClock) -> None:
    budgets, _, october, _ = await quarter(store, clock)
    clock.now = at(date(2026, 10, 17))
    body = [
        {
            "id": "s-1",
            "sent_at": clock.now.isoformat(),
            "plan": october.id,
            "amount": 12500,
            "currency": "USD",
            "on": "2026-10-15",
        },
    ]
    [stored] = await budgets.post("finance", parse_spend_events(body))
    assert (stored.amount, stored.spent_on, stored.source) == (1_250_000, date(2026, 10, 15), "event:finance")
    with pytest.raises(ReplayedSpendEvent):
        await budgets.post("finance", parse_spend_events(body))
    stale = [dict(body[0], id="s-2", sent_at=(clock.now - timedelta(hours=1)).isoformat())]
    with pytest.raises(StaleSpendEvent):
        await budgets.post("finance", parse_spend_events(stale))
    with pytest.raises(InvalidSpendEvent) as invalid:
        parse_spend_events({"id": "s-3", "plan": "P2", "amount": -5, "currency": "dollars"})
    assert len(invalid.value.problems) >= 4


async def test_two_allocations_at_once_cannot_together_exceed_the_budget(store: Store, clock: FakeClock) -> None:
    budgets, _, october, november = await quarter(store, clock)
    results = await asyncio.gather(
        budgets.allocate(october.id, minor_units(150_000), None, actor="aad-lead"),
        budgets.allocate(november.id, minor_units(150_000), None, actor="aad-lead"),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["Allocation", "OverAllocated"]
    allocated = [await budgets.budget_of(plan.id) for plan in (october, november)]
    assert sum(b.amount for b in allocated if b is not None) == minor_units(150_000)
