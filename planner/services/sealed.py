"""What the database holds sealed with the vault's key, counted across every tenant.

Adapter secrets and browser sessions (planner/services/registry.py), the grants people gave OAuth MCP adapters
(planner/services/oauth.py) and context sources' secrets (planner/services/context.py) are the values only the key
opens, and decision log entries signed with a key derived
from it (planner/services/decisions.py) verify only with it: while any is stored, a new key would leave them unreadable
or unverifiable.
"""

from __future__ import annotations

from planner.store import Store
from planner.store.sealed import sealed_counts


async def count_sealed_secrets(store: Store) -> int:
    """How many stored values the vault's key sealed or signed (a secret and a session of one adapter count as two)."""
    async with store.read() as conn:
        counts = await sealed_counts(conn)
    return (
        counts.adapter_secrets
        + counts.adapter_sessions
        + counts.context_sources
        + counts.signed_decisions
        + counts.oauth_grants
    )
