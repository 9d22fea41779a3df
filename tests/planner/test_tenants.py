"""Each tenant's services are built once and shared; the ids kept at once are bounded."""

from __future__ import annotations

from planner.services.tenants import Tenants
from planner.store import Store


async def test_a_tenants_services_are_built_once_and_shared(store: Store) -> None:
    tenants = Tenants(store)
    first = tenants("contoso")
    assert tenants("contoso") is first
    assert first.plans.tenant_id == first.directory.tenant_id == "contoso"
    other = tenants("fabrikam")
    assert other is not first
    assert other.plans.tenant_id == "fabrikam"
    assert other.outbox is first.outbox  # one outbox; each message names its tenant


async def test_only_the_most_recently_used_tenants_are_kept(store: Store) -> None:
    tenants = Tenants(store, kept=2)
    a, b = tenants("a"), tenants("b")
    assert tenants("a") is a  # "a" is now the most recent
    tenants("c")  # drops "b", the least recently used
    assert tenants("a") is a
    assert tenants("b") is not b
