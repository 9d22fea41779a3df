"""What the database holds sealed with the vault's key, counted across every tenant.

Adapter secrets and browser sessions (planner/services/registry.py) and context sources' secrets
(planner/services/context.py) are the values only the key opens, and decision log entries signed with a key derived
from it (planner/services/decisions.py) verify only with it: while any is stored, a new key would leave them unreadable
or unverifiable.
"""

from __future__ import annotations

from sqlalchemy import func, select

from planner.store import Store
from planner.store.schema import adapters, context_sources, decisions


async def count_sealed_secrets(store: Store) -> int:
    """How many stored values the vault's key sealed or signed (a secret and a session of one adapter count as two)."""
    count = select(func.count())
    async with store.engine.connect() as conn:
        adapter_secrets = await conn.scalar(count.select_from(adapters).where(adapters.c.secrets.is_not(None)))
        sessions = await conn.scalar(count.select_from(adapters).where(adapters.c.session.is_not(None)))
        sources = await conn.scalar(count.select_from(context_sources))
        signed = await conn.scalar(count.select_from(decisions).where(decisions.c.key_id.is_not(None)))
    return sum(int(n or 0) for n in (adapter_secrets, sessions, sources, signed))
