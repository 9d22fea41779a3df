"""Many members at once, written in bulk: each with a personal chat with the bot and a task that slipped.

For fan-out tests and benchmarks, where adding thousands of people one conversation at a time through the bot
would take longer than what is measured. The rows are the ones the bot itself would have stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from planner.domain.messages import Message, MessageKind
from planner.domain.model import Tier
from planner.services.outbox import Outbox
from planner.store import Store
from planner.store.schema import conversations, plans, tasks

CHUNK = 5_000
LEADER = "aad-lead"


@dataclass(frozen=True, kw_only=True)
class Member:
    user_id: str
    conversation_id: str
    task_id: int


def member_id(n: int) -> str:
    return f"aad-member-{n}"


async def add_members(
    engine: AsyncEngine, *, tenant: str, count: int, service_url: str, at: datetime, first: int = 0
) -> list[Member]:
    """`count` members (numbered from `first`), each with a personal chat reachable at `service_url` and an
    open task due the day before `at`, in a tactical plan of their own tenant's."""
    async with engine.begin() as conn:
        master = await _plan(conn, tenant, Tier.MASTER, "Fan-out", at, parent=None)
        tactical = await _plan(conn, tenant, Tier.TACTICAL, "Fan-out tasks", at, parent=master)
    numbers = range(first, first + count)
    due = at.date() - timedelta(days=1)
    await insert_chunks(
        engine,
        tasks,
        [
            dict(
                tenant_id=tenant,
                plan_id=tactical,
                master_id=master,
                title=f"Task {n}",
                owner=member_id(n),
                due_on=due,
                status="todo",
                milestone=False,
                created_at=at - timedelta(days=30),
                version=1,
            )
            for n in numbers
        ],
    )
    await insert_chunks(
        engine,
        conversations,
        [
            dict(
                tenant_id=tenant,
                conversation_id=f"a:member-{n}",
                kind="personal",
                user_id=member_id(n),
                address={
                    "serviceUrl": service_url,
                    "channelId": "msteams",
                    "conversation": {"id": f"a:member-{n}", "conversationType": "personal", "tenantId": tenant},
                    "bot": {"id": "28:bot"},
                    "user": {"id": f"29:member-{n}", "aadObjectId": member_id(n)},
                },
                updated_at=at - timedelta(days=1),
            )
            for n in numbers
        ],
    )
    async with engine.connect() as conn:
        rows = await conn.execute(select(tasks.c.owner, tasks.c.id).where(tasks.c.plan_id == tactical))
        ids = {owner: task_id for owner, task_id in rows}
    return [Member(user_id=member_id(n), conversation_id=f"a:member-{n}", task_id=ids[member_id(n)]) for n in numbers]


async def nudge(store: Store, tenant: str, members: list[Member], *, at: datetime, key: str = "fan-out") -> None:
    """One slipped-deadline nudge to each member, written to the outbox as the trigger engine writes them
    (without the engine's other triggers of the day, so the count is exactly one each)."""
    due = (at.date() - timedelta(days=1)).isoformat()
    messages = [
        Message(
            recipient=m.user_id,
            kind=MessageKind.DEADLINE_SLIPPED,
            payload={"task": m.task_id, "title": f"Task {m.user_id}", "due_on": due},
            not_before=at,
        )
        for m in members
    ]
    assert await Outbox(store).fire(tenant, key, messages)


async def insert_chunks(engine: AsyncEngine, table: Any, rows: list[dict[str, Any]]) -> None:
    async with engine.begin() as conn:
        for i in range(0, len(rows), CHUNK):
            await conn.execute(insert(table), rows[i : i + CHUNK])


async def _plan(conn: Any, tenant: str, tier: Tier, title: str, at: datetime, *, parent: int | None) -> int:
    start = at.date().replace(month=1, day=1)
    row: dict[str, Any] = dict(
        tenant_id=tenant,
        tier=tier.value,
        parent_id=parent,
        master_id=parent,
        title=title,
        owner=LEADER,
        starts_on=start,
        ends_on=start.replace(month=12, day=31),
        constraints=[],
        created_at=at - timedelta(days=60),
        version=1,
    )
    return int((await conn.execute(insert(plans).values(**row).returning(plans.c.id))).scalar_one())
