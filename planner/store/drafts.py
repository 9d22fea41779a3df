"""The drafts table: the one module that writes it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row

from planner.domain.drafts import PENDING, Draft
from planner.store import Connection
from planner.store.schema import drafts


def _draft(row: Row[Any]) -> Draft:
    return Draft(
        id=row.id,
        tenant_id=row.tenant_id,
        author=row.author,
        kind=row.kind,
        payload=row.payload,
        status=row.status,
        created_at=row.created_at,
    )


async def insert_draft(
    conn: Connection, tenant_id: str, *, author: str, kind: str, payload: dict[str, Any], created_at: datetime
) -> Draft:
    """Store a pending draft."""
    row = (
        await conn.execute(
            insert(drafts)
            .values(
                tenant_id=tenant_id, author=author, kind=kind, payload=payload, status=PENDING, created_at=created_at
            )
            .returning(drafts)
        )
    ).one()
    return _draft(row)


async def get_draft(conn: Connection, tenant_id: str, draft_id: int) -> Draft | None:
    """The draft, or None (drafts of other tenants are invisible)."""
    row = (await conn.execute(select(drafts).where(drafts.c.id == draft_id, drafts.c.tenant_id == tenant_id))).first()
    return None if row is None else _draft(row)


async def decide_draft(conn: Connection, tenant_id: str, draft_id: int, status: str) -> bool:
    """Move a pending draft to `status`; False when it was not pending."""
    result = await conn.execute(
        update(drafts)
        .where(drafts.c.id == draft_id, drafts.c.tenant_id == tenant_id, drafts.c.status == PENDING)
        .values(status=status)
    )
    return result.rowcount == 1


async def reopen_draft(conn: Connection, tenant_id: str, draft_id: int) -> None:
    """Put a draft back to pending, whatever it was."""
    await conn.execute(
        update(drafts).where(drafts.c.id == draft_id, drafts.c.tenant_id == tenant_id).values(status=PENDING)
    )
