"""The oauth_grants and oauth_sign_ins tables: the one module that writes them.

Both hold only what the vault sealed; a sign-in is found by the SHA-256 of its state, never by the state itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select, update

from planner.store import Connection
from planner.store.schema import oauth_grants, oauth_sign_ins

OPEN, ANSWERED, CONSUMED, EXPIRED = "open", "answered", "consumed", "expired"


async def load_grant(conn: Connection, tenant_id: str, adapter: str, user_id: str) -> bytes | None:
    """The sealed grant of `user_id` at `adapter`, or None."""
    query = select(oauth_grants.c.sealed).where(
        oauth_grants.c.tenant_id == tenant_id, oauth_grants.c.adapter == adapter, oauth_grants.c.user_id == user_id
    )
    return (await conn.execute(query)).scalar()


async def save_grant(
    conn: Connection, tenant_id: str, adapter: str, user_id: str, sealed: bytes, *, at: datetime
) -> None:
    """Keep `sealed` as the grant of `user_id` at `adapter`, in place of the one before."""
    await forget_grant(conn, tenant_id, adapter, user_id)
    await conn.execute(
        insert(oauth_grants).values(tenant_id=tenant_id, adapter=adapter, user_id=user_id, sealed=sealed, updated_at=at)
    )


async def forget_grant(conn: Connection, tenant_id: str, adapter: str, user_id: str) -> None:
    await conn.execute(
        delete(oauth_grants).where(
            oauth_grants.c.tenant_id == tenant_id, oauth_grants.c.adapter == adapter, oauth_grants.c.user_id == user_id
        )
    )


async def insert_sign_in(
    conn: Connection,
    *,
    tenant_id: str,
    user_id: str,
    adapter: str,
    delegation_id: int | None,
    state_hash: str,
    authorization: bytes,
    asked_at: datetime,
    expires_at: datetime,
) -> int:
    """Store an open sign-in; its id."""
    values = dict(
        tenant_id=tenant_id,
        user_id=user_id,
        adapter=adapter,
        delegation_id=delegation_id,
        state_hash=state_hash,
        authorization=authorization,
        status=OPEN,
        asked_at=asked_at,
        expires_at=expires_at,
    )
    return int(
        (await conn.execute(insert(oauth_sign_ins).values(**values).returning(oauth_sign_ins.c.id))).scalar_one()
    )


async def take_authorization(conn: Connection, sign_in_id: int, *, at: datetime) -> bytes | None:
    """The sealed authorization URL of the open, unexpired sign-in `sign_in_id`, wiped as it is taken; None when there
    is none (unknown, taken already, ended, or expired)."""
    is_open = (
        oauth_sign_ins.c.id == sign_in_id,
        oauth_sign_ins.c.status == OPEN,
        oauth_sign_ins.c.expires_at > at,
        oauth_sign_ins.c.authorization.is_not(None),
    )
    sealed = (await conn.execute(select(oauth_sign_ins.c.authorization).where(*is_open))).scalar()
    if sealed is None:
        return None
    taken = await conn.execute(update(oauth_sign_ins).where(*is_open).values(authorization=None))
    return bytes(sealed) if taken.rowcount else None


async def answer_sign_in(conn: Connection, state_hash: str, answer: bytes, *, at: datetime) -> bool:
    """Record the sealed callback of the open, unexpired sign-in whose state hashes to `state_hash`; False when there
    is none (unknown, answered already, or expired)."""
    result = await conn.execute(
        update(oauth_sign_ins)
        .where(
            oauth_sign_ins.c.state_hash == state_hash,
            oauth_sign_ins.c.status == OPEN,
            oauth_sign_ins.c.expires_at > at,
        )
        .values(status=ANSWERED, answer=answer, answered_at=at)
    )
    return bool(result.rowcount)


async def sign_in_state(conn: Connection, sign_in_id: int) -> tuple[str, bytes | None]:
    """(status, sealed answer) of a sign-in; one that is no longer kept reads as expired."""
    row = (
        await conn.execute(
            select(oauth_sign_ins.c.status, oauth_sign_ins.c.answer).where(oauth_sign_ins.c.id == sign_in_id)
        )
    ).one_or_none()
    if row is None:
        return EXPIRED, None
    return str(row.status), row.answer


async def set_sign_in_card(conn: Connection, tenant_id: str, sign_in_id: int, card: dict[str, Any]) -> None:
    """Keep where the card of the sign-in `sign_in_id` lies (what the bot wrote of it)."""
    await conn.execute(
        update(oauth_sign_ins)
        .where(oauth_sign_ins.c.id == sign_in_id, oauth_sign_ins.c.tenant_id == tenant_id)
        .values(card=card)
    )


async def sign_in_card(conn: Connection, sign_in_id: int) -> dict[str, Any] | None:
    """Where the card of the sign-in `sign_in_id` lies; None when it was not kept (or the sign-in is gone)."""
    card = (await conn.execute(select(oauth_sign_ins.c.card).where(oauth_sign_ins.c.id == sign_in_id))).scalar()
    return dict(card) if isinstance(card, dict) else None


async def forget_sign_ins(conn: Connection, *, expired_before: datetime) -> int:
    """Delete every tenant's ended sign-ins (consumed or expired) and those that expired before `expired_before`;
    returns how many."""
    result = await conn.execute(
        delete(oauth_sign_ins).where(
            or_(oauth_sign_ins.c.status.in_((CONSUMED, EXPIRED)), oauth_sign_ins.c.expires_at < expired_before)
        )
    )
    return int(result.rowcount or 0)


async def close_sign_in(conn: Connection, sign_in_id: int, status: str) -> None:
    """End a sign-in (`consumed` or `expired`), wiping its answer and its authorization URL."""
    await conn.execute(
        update(oauth_sign_ins)
        .where(oauth_sign_ins.c.id == sign_in_id)
        .values(status=status, answer=None, authorization=None)
    )


async def all_grants(conn: Connection) -> list[tuple[str, str, str, bytes]]:
    """(tenant, adapter, person, sealed grant) of every tenant, for re-sealing them with a new key."""
    query = select(oauth_grants.c.tenant_id, oauth_grants.c.adapter, oauth_grants.c.user_id, oauth_grants.c.sealed)
    return [(row.tenant_id, row.adapter, row.user_id, bytes(row.sealed)) for row in await conn.execute(query)]


async def reseal_grant(conn: Connection, tenant_id: str, adapter: str, user_id: str, sealed: bytes) -> None:
    """Replace a grant's sealed bytes (the same grant, sealed with another key), keeping when it changed."""
    await conn.execute(
        update(oauth_grants)
        .where(
            oauth_grants.c.tenant_id == tenant_id, oauth_grants.c.adapter == adapter, oauth_grants.c.user_id == user_id
        )
        .values(sealed=sealed)
    )
