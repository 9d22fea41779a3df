"""Measurement's reads: what a master plan's figures need beyond its plans, tasks and KPIs (read through the plans).

Read-only: every table read here is written by its own store module.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from planner.domain.measurement import ApprovalFact, DelegationFact, approval_fact
from planner.store import Connection
from planner.store.schema import approval_requests, delegations, plans, tasks, weekly_items


async def carried_over(conn: Connection, tenant_id: str, master_id: int) -> list[tuple[str, int]]:
    """(ISO week, task id) for each task a weekly plan of the master plan carried over from the week before."""
    rows = await conn.execute(
        select(plans.c.iso_week, weekly_items.c.task_id)
        .join(plans, plans.c.id == weekly_items.c.weekly_plan_id)
        .where(
            weekly_items.c.tenant_id == tenant_id,
            plans.c.master_id == master_id,
            weekly_items.c.carried_over.is_(True),
        )
        .order_by(plans.c.iso_week, weekly_items.c.task_id)
    )
    return [(row.iso_week, row.task_id) for row in rows]


async def delegation_facts(conn: Connection, tenant_id: str, master_id: int) -> list[DelegationFact]:
    """The delegations of the master plan's tasks, oldest first."""
    task_ids = select(tasks.c.id).where(tasks.c.tenant_id == tenant_id, tasks.c.master_id == master_id)
    rows = await conn.execute(
        select(delegations.c.task_id, delegations.c.adapter, delegations.c.status, delegations.c.seconds)
        .where(delegations.c.tenant_id == tenant_id, delegations.c.task_id.in_(task_ids))
        .order_by(delegations.c.id)
    )
    return [DelegationFact(task_id=r.task_id, adapter=r.adapter, status=r.status, seconds=r.seconds) for r in rows]


async def approval_facts(conn: Connection, tenant_id: str, since: datetime) -> list[ApprovalFact]:
    """The tenant's approval requests made since `since`, oldest first."""
    rows = await conn.execute(
        select(approval_requests)
        .where(approval_requests.c.tenant_id == tenant_id, approval_requests.c.created_at >= since)
        .order_by(approval_requests.c.id)
    )
    return [
        approval_fact(id=r.id, action=r.action, requester=r.requester, policy=r.policy, status=r.status, note=r.note)
        for r in rows
    ]
