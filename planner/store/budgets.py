"""Budgets, allocations and spend: the one writer of `budgets` and `spend`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import CompoundSelect, bindparam, func, insert, literal, null, select, type_coerce, union_all, update
from sqlalchemy.engine import Row

from planner.domain.budgets import Budget, Spend
from planner.store import Connection
from planner.store.schema import budgets, spend


def budget_from(row: Row[Any]) -> Budget:
    """The budget in a row of `budgets`."""
    return Budget(
        id=row.id,
        tenant_id=row.tenant_id,
        plan_id=row.plan_id,
        amount=row.amount,
        currency=row.currency,
        version=row.version,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


def spend_from(row: Row[Any]) -> Spend:
    """The spend in a row of `spend`."""
    return Spend(
        id=row.id,
        tenant_id=row.tenant_id,
        plan_id=row.plan_id,
        amount=row.amount,
        currency=row.currency,
        spent_on=row.spent_on,
        at=row.at,
        source=row.source,
        actor=row.actor,
    )


async def of_plans(
    conn: Connection, tenant_id: str, plan_ids: Sequence[int], *, for_update: bool = False
) -> dict[int, Budget]:
    """The budgets of these plans, by plan id (a plan without one is left out); `for_update` locks the rows (on
    PostgreSQL) until the transaction ends, so allocations under one master plan are checked one at a time."""
    query = select(budgets).where(budgets.c.tenant_id == tenant_id, budgets.c.plan_id.in_(list(plan_ids)))
    if for_update:
        query = query.with_for_update()
    return {row.plan_id: budget_from(row) for row in (await conn.execute(query)).all()}


async def put(
    conn: Connection,
    tenant_id: str,
    *,
    plan_id: int,
    amount: int,
    currency: str,
    actor: str,
    at: datetime,
    before: Budget | None,
) -> Budget:
    """Write a plan's budget: a new row at version 1, or `before`'s next version."""
    values = dict(amount=amount, currency=currency, updated_by=actor, updated_at=at)
    if before is None:
        result = await conn.execute(
            insert(budgets).values(tenant_id=tenant_id, plan_id=plan_id, version=1, **values).returning(budgets)
        )
    else:
        result = await conn.execute(
            update(budgets)
            .where(budgets.c.id == before.id, budgets.c.tenant_id == tenant_id)
            .values(version=before.version + 1, **values)
            .returning(budgets)
        )
    return budget_from(result.one())


async def insert_spend(
    conn: Connection,
    tenant_id: str,
    *,
    plan_id: int,
    amount: int,
    currency: str,
    spent_on: date,
    at: datetime,
    source: str,
    actor: str,
) -> Spend:
    """A new spend."""
    result = await conn.execute(
        insert(spend)
        .values(
            tenant_id=tenant_id,
            plan_id=plan_id,
            amount=amount,
            currency=currency,
            spent_on=spent_on,
            at=at,
            source=source,
            actor=actor,
        )
        .returning(spend)
    )
    return spend_from(result.one())


def _money_statement() -> CompoundSelect:
    """Plans' budgets and spend in one statement (the plan card reads both): a row per budget and per spend, told
    apart by `kind`, each kind's columns empty in the other's rows. Parameters: tenant_id, plan_ids."""
    nothing = null()
    budget_rows = select(
        literal("budget").label("kind"),
        budgets.c.id,
        budgets.c.tenant_id,
        budgets.c.plan_id,
        budgets.c.amount,
        budgets.c.currency,
        budgets.c.version,
        budgets.c.updated_by,
        budgets.c.updated_at,
        type_coerce(nothing, spend.c.spent_on.type).label("spent_on"),
        type_coerce(nothing, spend.c.at.type).label("at"),
        type_coerce(nothing, spend.c.source.type).label("source"),
        type_coerce(nothing, spend.c.actor.type).label("actor"),
    ).where(budgets.c.tenant_id == bindparam("tenant_id"), budgets.c.plan_id.in_(bindparam("plan_ids", expanding=True)))
    spend_rows = select(
        literal("spend").label("kind"),
        spend.c.id,
        spend.c.tenant_id,
        spend.c.plan_id,
        spend.c.amount,
        spend.c.currency,
        nothing,
        nothing,
        nothing,
        spend.c.spent_on,
        spend.c.at,
        spend.c.source,
        spend.c.actor,
    ).where(spend.c.tenant_id == bindparam("tenant_id"), spend.c.plan_id.in_(bindparam("plan_ids", expanding=True)))
    return union_all(budget_rows, spend_rows).order_by("plan_id", "spent_on", "id")


# Built once, with bound parameters: every plan card reads its plans' money.
_MONEY = _money_statement()


async def money_of(
    conn: Connection, tenant_id: str, plan_ids: Sequence[int]
) -> tuple[dict[int, Budget], dict[int, list[Spend]]]:
    """The budgets of these plans by plan id (as `of_plans`) and their spend, each plan's oldest day first (an empty
    list for a plan without), in one statement."""
    found: dict[int, Budget] = {}
    spent: dict[int, list[Spend]] = {plan_id: [] for plan_id in plan_ids}
    rows = await conn.execute(_MONEY, {"tenant_id": tenant_id, "plan_ids": list(plan_ids)})
    for row in rows.all():
        if row.kind == "budget":
            found[row.plan_id] = budget_from(row)
        else:
            spent[row.plan_id].append(spend_from(row))
    return found, spent


async def spent_total(conn: Connection, tenant_id: str, plan_ids: Sequence[int], *, through: date) -> int:
    """What was spent on these plans by the end of `through`, minor units."""
    query = select(func.coalesce(func.sum(spend.c.amount), 0)).where(
        spend.c.tenant_id == tenant_id, spend.c.plan_id.in_(list(plan_ids)), spend.c.spent_on <= through
    )
    return int((await conn.execute(query)).scalar_one())


async def spent_from(conn: Connection, tenant_id: str, plan_id: int, source: str) -> int:
    """What was recorded as spent on a plan from one source, minor units."""
    query = select(func.coalesce(func.sum(spend.c.amount), 0)).where(
        spend.c.tenant_id == tenant_id, spend.c.plan_id == plan_id, spend.c.source == source
    )
    return int((await conn.execute(query)).scalar_one())
