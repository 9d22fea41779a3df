"""Drafts: proposed plans waiting for a person to save or discard them.

A draft is decided once: saving and discarding both move it out of `pending` with a compare-and-set, so a
double click (or two replicas handling the same click) cannot save it twice.
"""

from __future__ import annotations

from typing import Any

from planner.domain.drafts import Draft, DraftAlreadyDecided, DraftNotFound, check_decision
from planner.store import Store
from planner.store import drafts as draft_store


class Drafts:
    """The drafts of one tenant."""

    def __init__(self, store: Store, tenant_id: str) -> None:
        self._store = store
        self.tenant_id = tenant_id

    async def create(self, *, author: str, kind: str, payload: dict[str, Any]) -> Draft:
        async with self._store.transaction() as conn:
            return await draft_store.insert_draft(
                conn, self.tenant_id, author=author, kind=kind, payload=payload, created_at=self._store.clock()
            )

    async def get(self, draft_id: int) -> Draft:
        """Raises DraftNotFound."""
        async with self._store.read() as conn:
            draft = await draft_store.get_draft(conn, self.tenant_id, draft_id)
        if draft is None:
            raise DraftNotFound(draft_id)
        return draft

    async def decide(self, draft_id: int, status: str) -> Draft:
        """Move a pending draft to `saved` or `discarded`. Raises DraftNotFound or DraftAlreadyDecided."""
        check_decision(status)
        async with self._store.transaction() as conn:
            decided = await draft_store.decide_draft(conn, self.tenant_id, draft_id, status)
        draft = await self.get(draft_id)
        if not decided:
            raise DraftAlreadyDecided(draft_id, draft.status)
        return draft

    async def reopen(self, draft_id: int) -> None:
        """Put a draft back to pending (its saving failed half-way and nothing was kept)."""
        async with self._store.transaction() as conn:
            await draft_store.reopen_draft(conn, self.tenant_id, draft_id)
