"""Vendor agent adapters, implementing the agent interface the planner declares: one module per kind."""

from __future__ import annotations

from planner.registry import AdapterFactory, AdapterSessionStore
from planner.store import Store
from planner.vault import Vault


def adapter_kinds(store: Store, tenant_id: str, vault: Vault) -> dict[str, AdapterFactory]:
    """Every kind of adapter, for one tenant's registry (a browser agent keeps its session beside its adapter)."""
    from adapters.browser import BrowserAdapterFactory
    from adapters.mcp import MCPAdapterFactory

    return {
        "mcp": MCPAdapterFactory(),
        "browser": BrowserAdapterFactory(
            vault=vault, sessions=lambda name: AdapterSessionStore(store, tenant_id, name)
        ),
    }
