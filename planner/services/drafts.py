"""Drafts: proposed plans waiting for a person to save or discard them.

A draft is decided once: saving and discarding both move it out of `pending` with a compare-and-set, so a
double click (or two replicas handling the same click) cannot save it twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from planner.domain.errors import PlannerError
from planner.store import Store
from planner.store.schema import drafts

PENDING, SAVED, DISCARDED = "pending", "saved", "discarded"


class DraftNotFound(PlannerError, LookupError):
    def __init__(self, draft_id: int) -> None:
        super().__init__(f"No draft with id {draft_id}.")


class DraftAlreadyDecided(PlannerError, RuntimeError):
    def __init__(self, draft_id: int, status: str) -> None:
        self.status = status
        super().__init__(f"Draft {draft_id} was already {status}.")


@dataclass(frozen=True, kw_only=True)
class Draft:
    id: int
    tenant_id: str
    author: str
    kind: str
    payload: dict[str, Any]
    status: str
    created_at: datetime


class Drafts:
    """The drafts of one tenant."""

    def __init__(self, store: Store, tenant_id: str) -> None:
        self._store = store
        self.tenant_id = tenant_id

    async def create(self, *, author: str, kind: str, payload: dict[str, Any]) -> Draft:
        async with self._store.transaction() as conn:
            row = (
                await conn.execute(
                    insert(drafts)
                    .values(
                        tenant_id=self.tenant_id,
                        author=author,
                        kind=kind,
                        payload=payload,
                        status=PENDING,
                        created_at=self._store.clock(),
                    )
                    .returning(drafts)
                )
            ).one()
        return _draft(row)

    async def get(self, draft_id: int) -> Draft:
        """Raises DraftNotFound."""
        async with self._store.engine.connect() as conn:
            row = (
                await conn.execute(select(drafts).where(drafts.c.id == draft_id, drafts.c.tenant_id == self.tenant_id))
            ).first()
        if row is None:
            raise DraftNotFound(draft_id)
        return _draft(row)

    async def decide(self, draft_id: int, status: str) -> Draft:
        """Move a pending draft to `saved` or `discarded`. Raises DraftNotFound or DraftAlreadyDecided."""
        if status not in (SAVED, DISCARDED):
            raise ValueError(f"a draft is decided as {SAVED} or {DISCARDED}, not {status}")
        async with self._store.transaction() as conn:
            result = await conn.execute(
                update(drafts)
                .where(drafts.c.id == draft_id, drafts.c.tenant_id == self.tenant_id, drafts.c.status == PENDING)
                .values(status=status)
            )
        draft = await self.get(draft_id)
        if result.rowcount != 1:
            raise DraftAlreadyDecided(draft_id, draft.status)
        return draft

    async def reopen(self, draft_id: int) -> None:
        """Put a draft back to pending (its saving failed half-way and nothing was kept)."""
        async with self._store.transaction() as conn:
            await conn.execute(
                update(drafts)
                .where(drafts.c.id == draft_id, drafts.c.tenant_id == self.tenant_id)
                .values(status=PENDING)
            )


def _draft(row: Any) -> Draft:
    return Draft(
        id=row.id,
        tenant_id=row.tenant_id,
        author=row.author,
        kind=row.kind,
        payload=row.payload,
        status=row.status,
        created_at=row.created_at,
    )
