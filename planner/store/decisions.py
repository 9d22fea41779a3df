"""The decision log's tables: `decisions` (the entries), `decision_refs` (what each entry is about), `decision_heads`
(each tenant's last entry, the row an appender locks).

Nothing here changes or removes an entry: the log only grows (on PostgreSQL a trigger refuses UPDATE, DELETE and
TRUNCATE on `decisions`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from planner.domain.decisions import GENESIS, ChainLinks, Decision
from planner.store import Connection
from planner.store.schema import decision_heads, decision_refs, decisions, delegations, plans, tasks, weekly_items


class EntryTaken(RuntimeError):
    """Another process appended an entry with the same number first: read the head again and retry."""

    def __init__(self, tenant_id: str, seq: int) -> None:
        self.tenant_id, self.seq = tenant_id, seq
        super().__init__(f"entry {seq} of tenant {tenant_id}'s decision log was appended by another process")


def _decision(row: Row[Any]) -> Decision:
    return Decision(
        tenant_id=row.tenant_id,
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        verdict=row.verdict,
        rationale=row.rationale,
        data=row.data,
        data_hash=row.data_hash,
        refs=tuple(row.refs),
        rules=tuple(row.rules),
        approval_id=row.approval_id,
        prev_hash=row.prev_hash,
        hash=row.hash,
        key_id=row.key_id,
    )


# ---- appending -------------------------------------------------------------------------------------------------


async def lock_head(conn: Connection, tenant_id: str) -> tuple[int, str, str | None]:
    """The (seq, hash, key id) of the chain's last entry, locked until the caller's transaction ends (on SQLite the
    store's write lock serialises writers)."""
    query = select(decision_heads.c.seq, decision_heads.c.hash, decision_heads.c.key_id).where(
        decision_heads.c.tenant_id == tenant_id
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    head = (await conn.execute(query)).first()
    if head is None:
        # The tenant's first entry (or a head row someone removed: carry on from the last entry there is).
        last = (
            await conn.execute(
                select(decisions.c.seq, decisions.c.hash, decisions.c.key_id)
                .where(decisions.c.tenant_id == tenant_id)
                .order_by(decisions.c.seq.desc())
                .limit(1)
            )
        ).first()
        try:
            async with conn.begin_nested():
                await conn.execute(
                    insert(decision_heads).values(
                        tenant_id=tenant_id,
                        seq=last.seq if last else 0,
                        hash=last.hash if last else GENESIS,
                        key_id=last.key_id if last else None,
                    )
                )
        except IntegrityError:
            pass  # another replica created it first; its row is locked below
        head = (await conn.execute(query)).one()
    return head.seq, head.hash, head.key_id


async def append(conn: Connection, entry: Decision) -> None:
    """Write `entry`, what it is about, and make it the tenant's head.

    Raises EntryTaken when another process appended an entry with its number first.
    """
    try:
        await conn.execute(
            insert(decisions).values(
                **entry.hashed_fields()
                | {"at": entry.at, "data": entry.data, "hash": entry.hash, "key_id": entry.key_id}
            )
        )
    except IntegrityError:
        raise EntryTaken(entry.tenant_id, entry.seq) from None
    await conn.execute(
        insert(decision_refs),
        [{"tenant_id": entry.tenant_id, "ref": ref, "seq": entry.seq} for ref in {entry.subject, *entry.refs}],
    )
    await conn.execute(
        update(decision_heads)
        .where(decision_heads.c.tenant_id == entry.tenant_id)
        .values(seq=entry.seq, hash=entry.hash, key_id=entry.key_id)
    )


async def tasks_of_delegations(conn: Connection, tenant_id: str, delegation_ids: Iterable[int]) -> set[int]:
    """The tasks these delegations were made for."""
    rows = await conn.execute(
        select(delegations.c.task_id).where(delegations.c.tenant_id == tenant_id, delegations.c.id.in_(delegation_ids))
    )
    return {task_id for (task_id,) in rows}


async def plans_of_tasks(conn: Connection, tenant_id: str, task_ids: Iterable[int]) -> set[int]:
    """The plans these tasks belong to: their tactical and master plans, and the weekly plans that hold them."""
    task_ids = list(task_ids)
    rows = await conn.execute(
        select(tasks.c.plan_id, tasks.c.master_id).where(tasks.c.tenant_id == tenant_id, tasks.c.id.in_(task_ids))
    )
    found = {plan_id for row in rows for plan_id in (row.plan_id, row.master_id)}
    rows = await conn.execute(
        select(weekly_items.c.weekly_plan_id).where(
            weekly_items.c.tenant_id == tenant_id, weekly_items.c.task_id.in_(task_ids)
        )
    )
    return found | {row.weekly_plan_id for row in rows}


async def parents_of_plans(conn: Connection, tenant_id: str, plan_ids: Iterable[int]) -> set[int]:
    """The parent and master plans of these plans."""
    rows = await conn.execute(
        select(plans.c.parent_id, plans.c.master_id).where(plans.c.tenant_id == tenant_id, plans.c.id.in_(plan_ids))
    )
    return {plan_id for row in rows for plan_id in (row.parent_id, row.master_id) if plan_id is not None}


# ---- reading ---------------------------------------------------------------------------------------------------


def _query(
    tenant_id: str,
    *,
    since: datetime | None,
    until: datetime | None,
    actor: str | None,
    subject_prefix: str | None,
    verdict: str | None,
    refs: Sequence[str],
) -> Select[Any]:
    query = select(decisions).where(decisions.c.tenant_id == tenant_id)
    if since is not None:
        query = query.where(decisions.c.at >= since)
    if until is not None:
        query = query.where(decisions.c.at < until)
    if actor:
        query = query.where(decisions.c.actor == actor)
    if subject_prefix:
        query = query.where(decisions.c.subject.startswith(subject_prefix, autoescape=True))
    if verdict:
        query = query.where(decisions.c.verdict == verdict)
    for ref in refs:
        query = query.where(
            decisions.c.seq.in_(
                select(decision_refs.c.seq).where(decision_refs.c.tenant_id == tenant_id, decision_refs.c.ref == ref)
            )
        )
    return query


async def entries(
    conn: Connection,
    tenant_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str | None = None,
    subject_prefix: str | None = None,
    verdict: str | None = None,
    refs: Sequence[str] = (),
    after: int | None = None,
    newest_first: bool = False,
    limit: int | None = None,
) -> list[Decision]:
    """The tenant's entries that match, in log order (or newest first): `since` inclusive, `until` exclusive, `actor`
    and `verdict` exact, every one of `refs` among what they are about, numbered past `after`."""
    query = _query(
        tenant_id, since=since, until=until, actor=actor, subject_prefix=subject_prefix, verdict=verdict, refs=refs
    )
    if after is not None:
        query = query.where(decisions.c.seq > after)
    query = query.order_by(decisions.c.seq.desc() if newest_first else decisions.c.seq)
    if limit is not None:
        query = query.limit(limit)
    return [_decision(row) for row in await conn.execute(query)]


async def entry(conn: Connection, tenant_id: str, seq: int) -> Decision | None:
    """Entry `seq` of the tenant's log, or None."""
    query = select(decisions).where(decisions.c.tenant_id == tenant_id, decisions.c.seq == seq)
    row = (await conn.execute(query)).first()
    return _decision(row) if row is not None else None


async def tenants(conn: Connection) -> set[str]:
    """Every tenant with entries or a head."""
    found = await conn.execute(select(decisions.c.tenant_id).distinct().union(select(decision_heads.c.tenant_id)))
    return {row.tenant_id for row in found}


async def links(conn: Connection, tenant_id: str) -> ChainLinks:
    """How the tenant's stored entries link: each one's seq, hash and previous hash."""
    query = select(decisions.c.seq, decisions.c.hash, decisions.c.prev_hash).where(decisions.c.tenant_id == tenant_id)
    return ChainLinks((row.seq, row.hash, row.prev_hash) for row in await conn.execute(query))


async def head(conn: Connection, tenant_id: str) -> tuple[int, str] | None:
    """The (seq, hash) the log recorded as the tenant's last entry; None when it has no head."""
    row = (
        await conn.execute(
            select(decision_heads.c.seq, decision_heads.c.hash).where(decision_heads.c.tenant_id == tenant_id)
        )
    ).first()
    return (row.seq, row.hash) if row is not None else None


async def heads(conn: Connection) -> dict[str, tuple[int, str]]:
    """Each tenant's recorded (seq, hash) of its last entry."""
    query = select(decision_heads.c.tenant_id, decision_heads.c.seq, decision_heads.c.hash)
    return {row.tenant_id: (row.seq, row.hash) for row in await conn.execute(query)}


async def hash_of(conn: Connection, tenant_id: str, seq: int) -> str | None:
    """The hash stored for entry `seq` of the tenant's log, or None when there is none."""
    found: str | None = await conn.scalar(
        select(decisions.c.hash).where(decisions.c.tenant_id == tenant_id, decisions.c.seq == seq)
    )
    return found


async def counts(conn: Connection) -> dict[str, int]:
    """How many entries each tenant's log holds."""
    query = select(decisions.c.tenant_id, func.count().label("entries")).group_by(decisions.c.tenant_id)
    return {row.tenant_id: row.entries for row in await conn.execute(query)}
