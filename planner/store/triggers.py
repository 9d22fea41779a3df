"""The triggers' reads (what is due, what fired, who is told) and each plan's last judged health.

The one writer of `plan_health`; the other tables are read here and written by their own store modules.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import date, datetime

from sqlalchemy import and_, func, select

from planner.domain.model import Health, TaskStatus, Tier
from planner.domain.triggers import DoneMilestone, DueTask
from planner.store import Connection, upsert
from planner.store.schema import conversations, firings, outbox, people, plan_health, plans, tasks


async def due_tasks(conn: Connection, first: date, last: date) -> list[DueTask]:
    """Every tenant's open tasks due from `first` to `last`, with the time zone of whom to tell."""
    query = (
        select(
            tasks.c.id,
            tasks.c.tenant_id,
            tasks.c.title,
            tasks.c.owner,
            tasks.c.due_on,
            tasks.c.snoozed_until,
            plans.c.owner.label("plan_owner"),
            people.c.time_zone,
        )
        .join(plans, plans.c.id == tasks.c.plan_id)
        .outerjoin(
            people,
            and_(
                people.c.tenant_id == tasks.c.tenant_id,
                people.c.user_id == func.coalesce(tasks.c.owner, plans.c.owner),
            ),
        )
        .where(tasks.c.due_on >= first, tasks.c.due_on <= last, tasks.c.status != TaskStatus.DONE.value)
    )
    return [
        DueTask(
            id=row.id,
            tenant_id=row.tenant_id,
            title=row.title,
            owner=row.owner,
            due_on=row.due_on,
            snoozed_until=row.snoozed_until,
            plan_owner=row.plan_owner,
            time_zone=row.time_zone,
        )
        for row in await conn.execute(query)
    ]


async def messages_queued_since(conn: Connection, since: datetime, kinds: Iterable[str]) -> dict[tuple[str, str], int]:
    """How many messages of `kinds` were queued for each (tenant, recipient) since `since`."""
    query = (
        select(outbox.c.tenant_id, outbox.c.recipient, func.count().label("queued"))
        .where(outbox.c.created_at >= since, outbox.c.kind.in_(list(kinds)))
        .group_by(outbox.c.tenant_id, outbox.c.recipient)
    )
    return {(row.tenant_id, row.recipient): row.queued for row in await conn.execute(query)}


async def fired_at(conn: Connection, keys: Collection[str]) -> dict[str, datetime]:
    """When each of `keys` fired, for those that did."""
    if not keys:
        return {}
    rows = await conn.execute(select(firings.c.key, firings.c.fired_at).where(firings.c.key.in_(list(keys))))
    return {row.key: row.fired_at for row in rows}


async def milestones_done(conn: Connection, since: datetime, until: datetime) -> list[DoneMilestone]:
    """Every tenant's milestones done from `since` to `until`, with their leader's time zone."""
    master = plans.alias("master")
    query = (
        select(
            tasks.c.id,
            tasks.c.tenant_id,
            tasks.c.title,
            tasks.c.owner,
            tasks.c.done_at,
            master.c.owner.label("leader"),
            people.c.time_zone,
        )
        .join(master, master.c.id == tasks.c.master_id)
        .outerjoin(people, and_(people.c.tenant_id == tasks.c.tenant_id, people.c.user_id == master.c.owner))
        .where(
            tasks.c.milestone.is_(True),
            tasks.c.done_at >= since,
            tasks.c.done_at <= until,
            tasks.c.status == TaskStatus.DONE.value,
        )
    )
    return [
        DoneMilestone(
            id=row.id,
            tenant_id=row.tenant_id,
            title=row.title,
            owner=row.owner,
            done_at=row.done_at,
            leader=row.leader,
            time_zone=row.time_zone,
        )
        for row in await conn.execute(query)
    ]


async def tenants_with_active_master(conn: Connection, start: date, end: date) -> set[str]:
    """The tenants with a master plan whose window meets `start`..`end`."""
    query = (
        select(plans.c.tenant_id)
        .where(plans.c.tier == Tier.MASTER.value, plans.c.starts_on <= end, plans.c.ends_on >= start)
        .distinct()
    )
    return set((await conn.execute(query)).scalars())


async def tenants_fired(conn: Connection, key: str, tenant_ids: Collection[str]) -> set[str]:
    """Those of `tenant_ids` for which `key` fired."""
    query = select(firings.c.tenant_id).where(firings.c.key == key, firings.c.tenant_id.in_(list(tenant_ids)))
    return set((await conn.execute(query)).scalars())


async def owners_with_open_tasks(conn: Connection, tenant_id: str, first: date, last: date) -> set[str]:
    """The people who own an open task of the tenant due from `first` to `last`."""
    query = (
        select(tasks.c.owner)
        .where(
            tasks.c.tenant_id == tenant_id,
            tasks.c.owner.is_not(None),
            tasks.c.status != TaskStatus.DONE.value,
            tasks.c.due_on <= last,
            tasks.c.due_on >= first,
        )
        .distinct()
    )
    return set((await conn.execute(query)).scalars())


async def leaders(conn: Connection, tenant_id: str, start: date, end: date) -> set[str]:
    """The owners of the tenant's master plans whose window meets `start`..`end`."""
    query = (
        select(plans.c.owner)
        .where(
            plans.c.tenant_id == tenant_id,
            plans.c.tier == Tier.MASTER.value,
            plans.c.starts_on <= end,
            plans.c.ends_on >= start,
        )
        .distinct()
    )
    return set((await conn.execute(query)).scalars())


async def time_zones(conn: Connection, tenant_id: str, user_ids: Collection[str]) -> dict[str, str | None]:
    """The time zone of each of `user_ids` the tenant knows."""
    query = select(people.c.user_id, people.c.time_zone).where(
        people.c.tenant_id == tenant_id, people.c.user_id.in_(list(user_ids))
    )
    return {row.user_id: row.time_zone for row in await conn.execute(query)}


async def channel_ids(conn: Connection, tenant_id: str) -> list[str]:
    """The tenant's channel conversations, sorted."""
    query = select(conversations.c.conversation_id).where(
        conversations.c.tenant_id == tenant_id, conversations.c.kind == "channel"
    )
    return sorted((await conn.execute(query)).scalars())


async def active_masters(conn: Connection, day: date) -> list[tuple[int, str]]:
    """(plan id, tenant id) of every tenant's master plan whose window holds `day`."""
    query = select(plans.c.id, plans.c.tenant_id).where(
        plans.c.tier == Tier.MASTER.value, plans.c.starts_on <= day, plans.c.ends_on >= day
    )
    return [(row.id, row.tenant_id) for row in await conn.execute(query)]


async def known_health(conn: Connection, plan_ids: Collection[int]) -> dict[int, str]:
    """The health last judged of each of `plan_ids` that was judged before."""
    query = select(plan_health.c.plan_id, plan_health.c.health).where(plan_health.c.plan_id.in_(list(plan_ids)))
    return {row.plan_id: row.health for row in await conn.execute(query)}


async def remember_health(conn: Connection, tenant_id: str, plan_id: int, health: Health, at: datetime) -> None:
    """Keep `health` as the plan's last judged health."""
    await upsert(
        conn,
        plan_health,
        plan_health.c.plan_id == plan_id,
        dict(health=health.value, checked_at=at),
        dict(plan_id=plan_id, tenant_id=tenant_id, health=health.value, checked_at=at),
    )
