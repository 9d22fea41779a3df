"""Each tenant's trigger rules: its stored overrides on top of the engine's defaults (the rules themselves are in
`planner.domain.triggers`)."""

from __future__ import annotations

import dataclasses

from planner.domain.errors import Expected, Field, InvalidValue
from planner.domain.triggers import SETTINGS_BY_NAME, TriggerRules, overrides, trigger_named, with_overrides
from planner.store import Store
from planner.store import settings as settings_store


class TenantTriggerRules:
    """The rules of every tenant: their stored overrides on top of the engine's defaults."""

    def __init__(self, store: Store, defaults: TriggerRules | None = None) -> None:
        self._store = store
        self.defaults = defaults or TriggerRules()

    async def all(self) -> dict[str, TriggerRules]:
        """Every tenant that changed something, with its rules (others use the defaults)."""
        async with self._store.read() as conn:
            stored = await settings_store.all_overrides(conn)
        return {tenant: with_overrides(changed, self.defaults) for tenant, changed in stored.items()}

    async def of(self, tenant_id: str) -> TriggerRules:
        async with self._store.read() as conn:
            changed = await settings_store.overrides_of(conn, tenant_id)
        return with_overrides(changed, self.defaults)

    async def _save(self, tenant_id: str, rules: TriggerRules, actor: str) -> TriggerRules:
        now = self._store.clock()
        async with self._store.transaction() as conn:
            await settings_store.save_overrides(conn, tenant_id, overrides(rules, self.defaults), actor=actor, at=now)
        return rules

    async def change(self, tenant_id: str, name: str, value: str, *, actor: str) -> TriggerRules:
        """Set one rule from its Teams name and text value. Raises InvalidValue saying what is accepted."""
        setting = SETTINGS_BY_NAME.get(name.strip().lower())
        if setting is None:
            raise InvalidValue(Field.SETTING, name, Expected.ONE_OF, choices=tuple(SETTINGS_BY_NAME))
        rules = dataclasses.replace(await self.of(tenant_id), **{setting.field: setting.parse(value.strip())})
        return await self._save(tenant_id, rules, actor)

    async def switch(self, tenant_id: str, trigger: str, *, on: bool, actor: str) -> TriggerRules:
        """Turn one trigger on or off for the tenant."""
        name = trigger_named(trigger)
        rules = await self.of(tenant_id)
        enabled = rules.enabled | {name} if on else rules.enabled - {name}
        return await self._save(tenant_id, dataclasses.replace(rules, enabled=frozenset(enabled)), actor)

    async def reset(self, tenant_id: str, *, actor: str) -> TriggerRules:
        return await self._save(tenant_id, self.defaults, actor)
