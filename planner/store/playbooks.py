"""Playbooks (the one writer of `playbooks`), and the reads that build and announce them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import String, cast, exists, insert, literal, select
from sqlalchemy.exc import IntegrityError

from planner.domain.model import Tier
from planner.store import Connection
from planner.store.schema import approval_roles, firings, plans, playbooks


@dataclass(frozen=True, kw_only=True)
class EndedPlan:
    """A tactical plan whose window has ended, with its owner and its master plan's owner."""

    tenant_id: str
    plan_id: int
    owner: str
    leader: str


async def insert_playbook(
    conn: Connection,
    *,
    tenant_id: str,
    name: str,
    source_plan_id: int,
    content: dict[str, Any],
    created_by: str,
    created_at: datetime,
) -> bool:
    """Store a playbook; False when the tenant has one of that name already (nothing is written then)."""
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(playbooks).values(
                    tenant_id=tenant_id,
                    name=name,
                    source_plan_id=source_plan_id,
                    content=content,
                    created_by=created_by,
                    created_at=created_at,
                )
            )
    except IntegrityError:
        return False
    return True


async def playbook_names(conn: Connection, tenant_id: str) -> list[str]:
    """The tenant's playbook names, sorted."""
    query = select(playbooks.c.name).where(playbooks.c.tenant_id == tenant_id).order_by(playbooks.c.name)
    return list((await conn.execute(query)).scalars())


async def playbook_contents(conn: Connection, tenant_id: str) -> dict[str, dict[str, Any]]:
    """Every playbook of the tenant: its content by name."""
    query = select(playbooks.c.name, playbooks.c.content).where(playbooks.c.tenant_id == tenant_id)
    return {row.name: dict(row.content) for row in (await conn.execute(query)).all()}


async def first_role_of_each_user(conn: Connection, tenant_id: str) -> dict[str, str]:
    """Each approver's role (the first by name when they hold several)."""
    query = (
        select(approval_roles.c.role, approval_roles.c.user_id)
        .where(approval_roles.c.tenant_id == tenant_id)
        .order_by(approval_roles.c.role)
    )
    roles: dict[str, str] = {}
    for row in (await conn.execute(query)).all():
        roles.setdefault(row.user_id, row.role)
    return roles


async def unannounced_ended_plans(conn: Connection, *, ended_before: date, ended_since: date) -> list[EndedPlan]:
    """Every tenant's tactical plans that ended in [`ended_since`, `ended_before`) and whose retrospective has not
    been fired (`retrospective:plan:<id>`)."""
    master = plans.alias("master")
    query = (
        select(plans.c.tenant_id, plans.c.id, plans.c.owner, master.c.owner.label("leader"))
        .join(master, master.c.id == plans.c.parent_id)
        .where(
            plans.c.tier == Tier.TACTICAL.value,
            plans.c.ends_on < ended_before,
            plans.c.ends_on >= ended_since,
            ~exists().where(
                firings.c.tenant_id == plans.c.tenant_id,
                firings.c.key == literal("retrospective:plan:") + cast(plans.c.id, String),
            ),
        )
        .order_by(plans.c.id)
    )
    return [
        EndedPlan(tenant_id=row.tenant_id, plan_id=row.id, owner=row.owner, leader=row.leader)
        for row in (await conn.execute(query)).all()
    ]
