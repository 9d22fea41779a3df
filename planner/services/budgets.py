"""Budgets of one tenant: a master plan's budget, its tactical plans' allocations, and spend.

The rules are in planner/domain/budgets.py.

Every change is written in one transaction with its event (subject: the plan), so `why P2` and the plan's history
show it. Allocations under one master plan are checked against its budget with the master's budget row locked, so
two allocations at once cannot together exceed it.

Spend comes from chat (`record_spend`) and from connected systems (`post`): signed like metric events
(planner/services/ingestion.py), with the same registered sources and the same replay guard (an event id seen before
refuses the whole post) and freshness check (`sent_at` within 5 minutes of the bot's clock).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from planner.domain.budgets import (
    Budget,
    BudgetStatus,
    NoBudget,
    NotEnoughAllocated,
    Spend,
    SpendEvent,
    currency_of,
    headroom,
    is_shift,
    require_allocation,
    require_budget_covers,
    require_currency,
    require_spend_day,
    status_of,
)
from planner.domain.context import SKEW, ReplayedContextEvent, StaleContextEvent
from planner.domain.errors import Expected, Field, InvalidValue, PlanNotFound
from planner.domain.model import Plan, Tier
from planner.store import Connection, Store
from planner.store import budgets as budget_rows
from planner.store import events as event_log
from planner.store import feeds as feeds_store
from planner.store import plans as plan_rows


class StaleSpendEvent(StaleContextEvent):
    """Spend events whose `sent_at` is too far from the bot's clock to be told apart from a replay."""


class ReplayedSpendEvent(ReplayedContextEvent):
    """A spend event id this source posted before: nothing of the post is stored."""


SPEND_EVENT_SOURCE = "spend:"
"""Prefix of the source under which spend event ids are remembered (apart from the same source's metric events)."""


@dataclass(frozen=True, kw_only=True)
class Allocation:
    """A tactical plan's allocation change: before (None for a first), after, and what is left of the budget."""

    plan: Plan
    master: Plan
    before: Budget | None
    after: Budget
    headroom: int


@dataclass(frozen=True, kw_only=True)
class AllocationChange:
    """What setting a tactical plan's allocation would be (read for the budget gate before it runs)."""

    plan: Plan
    master: Plan
    current: Budget | None


class Budgets:
    """Budgets, allocations and spend of one tenant (the Teams tenant id)."""

    def __init__(self, store: Store, tenant_id: str) -> None:
        if not tenant_id or not tenant_id.strip():
            raise InvalidValue(Field.TENANT_ID, tenant_id, Expected.TEAMS_TENANT_ID)
        self._store = store
        self.tenant_id = tenant_id

    async def _plan(self, conn: Connection, plan_id: int, tier: Tier | None = None) -> Plan:
        plan = await plan_rows.get(conn, self.tenant_id, plan_id)
        if plan is None or (tier is not None and plan.tier is not tier):
            raise PlanNotFound(plan_id, tier.value if tier else None)
        return plan

    async def _master_of(self, conn: Connection, plan: Plan) -> Plan:
        if plan.tier is Tier.MASTER:
            return plan
        parent = await self._plan(conn, plan.parent_id) if plan.parent_id is not None else None
        if parent is None:
            raise PlanNotFound(plan.id, Tier.TACTICAL.value)
        return await self._master_of(conn, parent)

    async def _record(
        self, conn: Connection, *, actor: str, kind: str, plan_id: int, before: object, after: object
    ) -> None:
        await event_log.record(
            conn,
            tenant_id=self.tenant_id,
            at=self._store.clock(),
            actor=actor,
            kind=kind,
            subject_type="plan",
            subject_id=plan_id,
            before=_snapshot(before),
            after=_snapshot(after),
        )

    # ---- budgets and allocations -----------------------------------------------------------------------------

    async def set_budget(self, plan_id: int, amount: int, currency: str, *, actor: str) -> Budget:
        """A master plan's budget (`amount` in minor units). Raises PlanNotFound (also for another tier),
        InvalidValue, CurrencyMismatch (its plans are allocated in another currency) or BudgetBelowAllocations."""
        code = currency_of(currency)
        async with self._store.transaction() as conn:
            master = await self._plan(conn, plan_id, Tier.MASTER)
            found = await self._family(conn, master)
            before = found.pop(master.id, None)
            allocations = list(found.values())
            for allocation in allocations:
                require_currency(master.id, code, allocation.currency)
            require_budget_covers(master.id, amount, code, allocations)
            after = await budget_rows.put(
                conn,
                self.tenant_id,
                plan_id=master.id,
                amount=amount,
                currency=code,
                actor=actor,
                at=self._store.clock(),
                before=before,
            )
            await self._record(conn, actor=actor, kind="budget.set", plan_id=master.id, before=before, after=after)
            return after

    async def allocation_change(self, plan_id: int) -> AllocationChange:
        """What the tactical plan `plan_id` is allocated now, with its master plan. Raises PlanNotFound."""
        async with self._store.read() as conn:
            plan = await self._plan(conn, plan_id, Tier.TACTICAL)
            master = await self._master_of(conn, plan)
            current = (await budget_rows.of_plans(conn, self.tenant_id, [plan.id])).get(plan.id)
            return AllocationChange(plan=plan, master=master, current=current)

    async def is_shift(self, plan_id: int, amount: int, *, actor: str, in_person: bool) -> bool:
        """Whether allocating `amount` to plan `plan_id` is a budget shift (see planner/domain/budgets.py)."""
        change = await self.allocation_change(plan_id)
        return is_shift(change.current, amount, by_leader_in_person=in_person and change.master.owner == actor)

    async def allocate(self, plan_id: int, amount: int, currency: str | None, *, actor: str) -> Allocation:
        """Set a tactical plan's allocation of its master plan's budget (minor units). Raises PlanNotFound, NoBudget,
        CurrencyMismatch or OverAllocated (naming the headroom)."""
        async with self._store.transaction() as conn:
            plan = await self._plan(conn, plan_id, Tier.TACTICAL)
            master = await self._master_of(conn, plan)
            budget, allocations = await self._locked(conn, master, plan)
            code = require_currency(plan.id, currency, budget.currency)
            require_allocation(budget, allocations, plan_id=plan.id, amount=amount)
            before = next((a for a in allocations if a.plan_id == plan.id), None)
            after = await self._put(conn, plan.id, amount, code, actor=actor, before=before)
            await self._record(conn, actor=actor, kind="budget.allocated", plan_id=plan.id, before=before, after=after)
            left = headroom(budget, [*[a for a in allocations if a.plan_id != plan.id], after])
            return Allocation(plan=plan, master=master, before=before, after=after, headroom=left)

    async def move(
        self, amount: int, currency: str | None, *, from_plan: int, to_plan: int, actor: str
    ) -> tuple[Allocation, Allocation]:
        """Move `amount` (minor units) of allocation from one tactical plan to another under the same master plan.
        Raises PlanNotFound, InvalidValue, NoBudget, CurrencyMismatch or NotEnoughAllocated."""
        if from_plan == to_plan:
            raise InvalidValue(Field.PLANS, f"P{from_plan} to P{to_plan}", Expected.DIFFERENT_TACTICAL_PLANS)
        async with self._store.transaction() as conn:
            source = await self._plan(conn, from_plan, Tier.TACTICAL)
            target = await self._plan(conn, to_plan, Tier.TACTICAL)
            master = await self._master_of(conn, source)
            if (await self._master_of(conn, target)).id != master.id:
                raise InvalidValue(Field.PLANS, f"P{from_plan} to P{to_plan}", Expected.TACTICAL_PLANS_OF_ONE_MASTER)
            budget, allocations = await self._locked(conn, master, source)
            code = require_currency(source.id, currency, budget.currency)
            taken = {a.plan_id: a for a in allocations}
            had = taken.get(source.id)
            if had is None or had.amount < amount:
                raise NotEnoughAllocated(
                    plan_id=source.id, asked=amount, allocated=had.amount if had else 0, currency=code
                )
            lowered = await self._put(conn, source.id, had.amount - amount, code, actor=actor, before=had)
            got = taken.get(target.id)
            raised_to = (got.amount if got else 0) + amount
            raised = await self._put(conn, target.id, raised_to, code, actor=actor, before=got)
            for before, after in ((had, lowered), (got, raised)):
                await self._record(
                    conn, actor=actor, kind="budget.moved", plan_id=after.plan_id, before=before, after=after
                )
            others = [a for a in allocations if a.plan_id not in (source.id, target.id)]
            left = headroom(budget, [*others, lowered, raised])
            return (
                Allocation(plan=source, master=master, before=had, after=lowered, headroom=left),
                Allocation(plan=target, master=master, before=got, after=raised, headroom=left),
            )

    async def _locked(self, conn: Connection, master: Plan, plan: Plan) -> tuple[Budget, list[Budget]]:
        """The master's budget (locked) and every allocation of its tactical plans. Raises NoBudget."""
        found = await self._family(conn, master)
        budget = found.pop(master.id, None)
        if budget is None:
            raise NoBudget(plan.id, master.id)
        return budget, list(found.values())

    async def _family(self, conn: Connection, master: Plan) -> dict[int, Budget]:
        """The budgets of a master plan and its tactical plans, locked until the transaction ends."""
        tactical = await plan_rows.listed(conn, self.tenant_id, Tier.TACTICAL, parent_id=master.id)
        return await budget_rows.of_plans(conn, self.tenant_id, [master.id, *(p.id for p in tactical)], for_update=True)

    async def _put(
        self, conn: Connection, plan_id: int, amount: int, currency: str, *, actor: str, before: Budget | None
    ) -> Budget:
        return await budget_rows.put(
            conn,
            self.tenant_id,
            plan_id=plan_id,
            amount=amount,
            currency=currency,
            actor=actor,
            at=self._store.clock(),
            before=before,
        )

    # ---- spend -----------------------------------------------------------------------------------------------

    async def record_spend(
        self,
        plan_id: int,
        amount: int,
        currency: str | None,
        *,
        spent_on: date,
        today: date,
        source: str,
        actor: str,
        conn: Connection | None = None,
    ) -> Spend:
        """Money spent on a master or tactical plan on a day (minor units), in its master plan's currency. Raises
        PlanNotFound, InvalidValue (a weekly plan, a day to come or outside the plan's window), NoBudget or
        CurrencyMismatch."""
        if conn is None:
            async with self._store.transaction() as opened:
                return await self.record_spend(
                    plan_id,
                    amount,
                    currency,
                    spent_on=spent_on,
                    today=today,
                    source=source,
                    actor=actor,
                    conn=opened,
                )
        plan = await self._plan(conn, plan_id)
        if plan.tier is Tier.WEEKLY:
            raise InvalidValue(Field.PLAN, f"P{plan.id}", Expected.PLAN_WITH_BUDGET)
        master = await self._master_of(conn, plan)
        budget = (await budget_rows.of_plans(conn, self.tenant_id, [master.id])).get(master.id)
        if budget is None:
            raise NoBudget(plan.id, master.id)
        code = require_currency(plan.id, currency, budget.currency)
        require_spend_day(plan.id, plan.window, spent_on, today)
        recorded = await budget_rows.insert_spend(
            conn,
            self.tenant_id,
            plan_id=plan.id,
            amount=amount,
            currency=code,
            spent_on=spent_on,
            at=self._store.clock(),
            source=source,
            actor=actor,
        )
        await self._record(conn, actor=actor, kind="spend.recorded", plan_id=plan.id, before=None, after=recorded)
        return recorded

    async def post(self, source: str, events: Sequence[SpendEvent]) -> list[Spend]:
        """Store every posted spend and remember its id, in one transaction, after checking them all: none is stored
        when one is wrong. Raises StaleSpendEvent, ReplayedSpendEvent, PlanNotFound, InvalidValue, NoBudget or
        CurrencyMismatch."""
        now = self._store.clock()
        stale = [e.id for e in events if abs(e.sent_at - now) > SKEW]
        if stale:
            raise StaleSpendEvent(stale, now, sent="sent_at")
        remembered = f"{SPEND_EVENT_SOURCE}{source}"
        event_ids = [e.id for e in events]
        async with self._store.transaction() as conn:
            if not await feeds_store.remember_event_ids(conn, self.tenant_id, remembered, event_ids, received_at=now):
                replayed = await feeds_store.seen_event_ids(conn, self.tenant_id, remembered, event_ids)
                raise ReplayedSpendEvent(source, replayed)
            return [
                await self.record_spend(
                    event.plan,
                    event.amount,
                    event.currency,
                    spent_on=event.spent_on,
                    today=now.date(),
                    source=f"event:{source}",
                    actor=f"source:{source}",
                    conn=conn,
                )
                for event in events
            ]

    # ---- reading ---------------------------------------------------------------------------------------------

    async def statuses(
        self, plans: Sequence[Plan], as_of: date, *, conn: Connection | None = None
    ) -> dict[int, BudgetStatus]:
        """The budget status of each master and tactical plan among `plans` that has a budget or spend, by plan id.

        A master plan's spend is its own and its tactical plans'; its `allocated`, what they are allocated. `conn`: a
        read the caller holds."""
        shown = [p for p in plans if p.tier is not Tier.WEEKLY]
        if not shown:
            return {}
        async with self._store.reading(conn) as conn:
            children: dict[int, list[Plan]] = {}
            for plan in shown:
                if plan.tier is Tier.MASTER:
                    # The plan card passes a master plan with its tactical plans: they are read only when not given.
                    given = [p for p in shown if p.parent_id == plan.id and p.tier is Tier.TACTICAL]
                    children[plan.id] = given or await plan_rows.listed(
                        conn, self.tenant_id, Tier.TACTICAL, parent_id=plan.id
                    )
            masters = {p.parent_id for p in shown if p.tier is Tier.TACTICAL and p.parent_id is not None}
            ids = sorted({p.id for p in shown} | {c.id for kids in children.values() for c in kids} | masters)
            found, spends = await budget_rows.money_of(conn, self.tenant_id, ids)
        statuses: dict[int, BudgetStatus] = {}
        for plan in shown:
            budget = found.get(plan.id)
            kids = children.get(plan.id, [])
            own = [*spends.get(plan.id, []), *(s for kid in kids for s in spends.get(kid.id, []))]
            if budget is None and not own:
                continue
            master_budget = found.get(plan.parent_id) if plan.parent_id is not None else None
            currency = (budget or master_budget or own[0]).currency
            allocated = sum(found[k.id].amount for k in kids if k.id in found)
            statuses[plan.id] = status_of(
                plan_id=plan.id,
                window=plan.window,
                budget=budget,
                currency=currency,
                spends=own,
                as_of=as_of,
                allocated=allocated,
            )
        return statuses

    async def budget_of(self, plan_id: int) -> Budget | None:
        """A plan's budget or allocation, or None."""
        async with self._store.read() as conn:
            return (await budget_rows.of_plans(conn, self.tenant_id, [plan_id])).get(plan_id)


def _snapshot(value: object) -> dict[str, object] | None:
    if isinstance(value, Budget):
        return {"amount": value.amount, "currency": value.currency, "version": value.version}
    if isinstance(value, Spend):
        return {
            "id": value.id,
            "amount": value.amount,
            "currency": value.currency,
            "spent_on": value.spent_on.isoformat(),
            "source": value.source,
        }
    return None
