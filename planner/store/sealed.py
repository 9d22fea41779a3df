"""Counts of what the database holds sealed or signed with the vault's key, across every tenant (reads only)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from planner.store import Connection
from planner.store.schema import adapters, context_sources, decisions, oauth_grants


@dataclass(frozen=True, kw_only=True)
class SealedCounts:
    """How many stored values of each kind only the vault's key opens or verifies."""

    adapter_secrets: int
    adapter_sessions: int
    context_sources: int
    signed_decisions: int
    oauth_grants: int


async def sealed_counts(conn: Connection) -> SealedCounts:
    """The stored values the vault's key sealed or signed, by kind."""
    count = select(func.count())
    adapter_secrets = await conn.scalar(count.select_from(adapters).where(adapters.c.secrets.is_not(None)))
    sessions = await conn.scalar(count.select_from(adapters).where(adapters.c.session.is_not(None)))
    sources = await conn.scalar(count.select_from(context_sources))
    signed = await conn.scalar(count.select_from(decisions).where(decisions.c.key_id.is_not(None)))
    grants = await conn.scalar(count.select_from(oauth_grants))
    return SealedCounts(
        adapter_secrets=int(adapter_secrets or 0),
        adapter_sessions=int(sessions or 0),
        context_sources=int(sources or 0),
        signed_decisions=int(signed or 0),
        oauth_grants=int(grants or 0),
    )
