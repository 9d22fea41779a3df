"""The adapter registry: which vendor agents a tenant has connected, of which kind, configured how.

Kinds are plugged in by the caller, one `AdapterFactory` per kind (the bot passes `{"mcp": ..., "browser": ...}`),
so the planner never imports `adapters/`. An adapter is addressed by its name, unique in the tenant, or by
`kind:name`.

Secrets never rest in the clear: the fields a factory declares secret (and any field whose name says it is a
token, password, cookie…) are encrypted together with the `Vault` and stored apart from the public config. A
secret inside a public value (a URL's `?api_key=…` or userinfo, a `--token X` argument, an `Authorization` header:
see `planner.domain.redaction`) is masked in the public config, and the whole original value is sealed with the secrets.
Records, listings and events only say which secret fields are set, and show masked values; the decrypted values
exist only inside `Registry.open`, on their way into the factory that builds the agent. A browser agent's signed-in
session is kept with its adapter too (`Registry.session_store`), encrypted by the agent with the same vault.

An MCP server's tools are off until an admin enables them, one by one, and each is pinned then (its factory says
`tools_need_enabling`; see planner/services/tools.py): `tools` lists them with their state, `enable_tool` and
`disable_tool` switch them, and every agent whose tools need enabling is handed out with the check of its tools.

An admin classifies each capability (an MCP tool, an A2A skill, a browser recipe's capability) under the approval
gates its calls fall under (`classify`); the gate (planner/governance/guard.py) holds every call of it for their
approvers, whatever the call's input says.

The registry hands out no bare agent: `open` wraps every agent it builds in a `GatedAgent`
(planner/governance/gated_agent.py), behind the registry's policy gate and circuit breakers, so whoever calls an agent
(a delegation, a metric feed pull, a caller to come) passes both. Building the bare agent stays inside the registry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from planner.domain.adapters import (
    AdapterTool,
    CapabilityGates,
    RegisteredAdapter,
    ToolState,
    gate_categories,
    is_destructive,
)
from planner.domain.errors import Expected, Field, InvalidValue, PlannerError, TenantMismatch
from planner.domain.redaction import MASK, looks_secret, redacted, secrets_in
from planner.domain.snapshots import snapshot
from planner.governance.gated_agent import DEFAULT_GRACE, Gate, GatedAgent
from planner.governance.guard import PolicyGuard
from planner.ports import Agent, AgentConfigInvalid, Capability, UnknownCapability
from planner.services.breaker import Breakers
from planner.services.decisions import DecisionLog
from planner.services.tools import PinnedTools, Validators, hold, pinned, record_tool
from planner.store import Connection, Store
from planner.store import delegations as stored_delegations
from planner.store import events as event_log
from planner.store import oauth as oauth_store
from planner.store.adapters import (
    adapter_names,
    classification_of,
    classifications_of,
    delete_adapter,
    delete_tool,
    find_adapter,
    insert_adapter,
    list_adapters,
    load_session,
    put_classification,
    put_tool,
    reseal_adapter,
    save_session,
    sealed_adapters,
    sealed_secrets,
    tool_of,
    tools_of,
    update_adapter,
)
from planner.store.vault import Vault, VaultError

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")


class AdapterFactory(Protocol):
    """How the registry checks and builds the agents of one kind. `adapters/` provides one per kind.

    A factory whose agents' tools an admin must enable one by one (an MCP server's, whose tools the vendor defines)
    says so with a class attribute `tools_need_enabling = True`; without it, every capability may be called.
    """

    @property
    def secret_fields(self) -> Collection[str]:
        """The config fields that are secrets (credentials, tokens, a saved browser session): stored encrypted."""
        ...

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The config (public and secret fields together), checked and normalised.

        Raises:
            AgentConfigInvalid: naming each wrong field and what it should be, never echoing a secret's value.
        """
        ...

    def build(self, name: str, config: Mapping[str, Any]) -> Agent:
        """An agent named `name` from a validated config whose secrets are decrypted.

        It must not connect yet: agents connect on their first call, so building one cannot fail on the network.

        Raises:
            AgentConfigInvalid: the stored config no longer suits this kind (its schema moved on).
        """
        ...


class UnknownAdapterKind(PlannerError, LookupError):
    """No factory is plugged in for this kind."""

    def __init__(self, kind: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.known = tuple(sorted(known))
        super().__init__(f"no adapter kind {kind!r}")


class AdapterNotFound(PlannerError, LookupError):
    """No adapter of this name is registered in the tenant."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = tuple(sorted(known))
        super().__init__(f"no adapter named {name!r}")


class AdapterExists(PlannerError, ValueError):
    """The name is taken in this tenant."""

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind
        super().__init__(f"adapter {name!r} ({kind}) exists already")


@dataclass(frozen=True, kw_only=True)
class ToolListing:
    """One tool of an adapter: as the server defines it now (None: gone from the server) and as an admin left it."""

    capability: str
    now: Capability | None
    stored: AdapterTool | None

    @property
    def state(self) -> str:
        """`on`, `off`, `held` or `gone` (enabled, but its server no longer has it)."""
        if self.stored is None:
            return "off"
        if self.stored.state is ToolState.HELD:
            return "held"
        return "gone" if self.now is None else "on"

    @property
    def destructive(self) -> bool:
        definition = self.now.definition if self.now is not None else None
        return bool(self.stored and self.stored.destructive) or (definition is not None and is_destructive(definition))


class ToolsNotSwitched(PlannerError, ValueError):
    """The adapter's capabilities are the admin's own (a browser recipe): there are no tools to switch."""

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind
        super().__init__(f"adapter {name!r} is a {kind} adapter: it has no tools to switch one by one")


class AdapterDisabled(PlannerError, RuntimeError):
    """The adapter is registered but switched off: it takes no delegations."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"adapter {name!r} is disabled")


def _looks_secret(field_name: str) -> bool:
    return looks_secret(field_name)


class AdapterSessionStore:
    """Where a browser agent keeps its signed-in session between delegations: vault-encrypted bytes, beside its adapter.

    Matches the browser adapter's `StorageStateStore`. A session saved after its adapter was removed is dropped.
    Saves are not events: a session changes with every sign-in and says nothing an admin decided.
    """

    def __init__(self, store: Store, tenant_id: str, adapter: str) -> None:
        self._store = store
        self._tenant_id = tenant_id
        self._adapter = adapter

    async def load_state(self) -> bytes | None:
        """The saved (encrypted) session, or None when there is none."""
        async with self._store.read() as conn:
            return await load_session(conn, self._tenant_id, self._adapter)

    async def save_state(self, state: bytes) -> None:
        """Keep `state` (encrypted by the agent) in place of the previous session."""
        async with self._store.transaction() as conn:
            await save_session(conn, self._tenant_id, self._adapter, state)


class Registry:
    """The adapters of one tenant, with the kinds the caller plugged in, handing out agents behind its gate."""

    def __init__(
        self,
        store: Store,
        tenant_id: str,
        *,
        vault: Vault,
        kinds: Mapping[str, AdapterFactory],
        gate: Gate | None = None,
        breakers: Breakers | None = None,
        grace: timedelta = DEFAULT_GRACE,
    ) -> None:
        """`gate`: the policy gate every agent call passes (the tenant's policy engine, approvals and decision log
        when not given); `breakers`: the tenant's circuit breakers; `grace`: how much longer than its timeout a call
        may take before it is cut."""
        breakers = breakers or Breakers(store, tenant_id)
        if breakers.tenant_id != tenant_id:
            raise TenantMismatch(tenant_id, breakers.tenant_id)
        self._store = store
        self.tenant_id = tenant_id
        self.vault = vault
        """What seals the adapters' secrets and sessions, and the delegations' evidence."""
        self._kinds = dict(kinds)
        self.gate: Gate = gate or PolicyGuard(store, tenant_id, record=DecisionLog(store, tenant_id).record)
        self.breakers = breakers
        self.grace = grace
        self.validators = Validators()
        """The validators of the input schemas its adapters' tools pinned, built once for every call and request."""

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(sorted(self._kinds))

    def tools_need_enabling(self, kind: str) -> bool:
        """Whether an admin enables the tools of adapters of `kind` one by one (see `AdapterFactory`)."""
        factory = self._kinds.get(kind)
        return bool(getattr(factory, "tools_need_enabling", False)) if factory is not None else False

    def _factory(self, kind: str) -> AdapterFactory:
        try:
            return self._kinds[kind]
        except KeyError:
            raise UnknownAdapterKind(kind, self._kinds) from None

    # ---- reading ---------------------------------------------------------------------------------------------

    async def list_adapters(self, *, kind: str | None = None) -> list[RegisteredAdapter]:
        """The tenant's adapters by name; secrets show only as the names of the fields that are set."""
        async with self._store.read() as conn:
            return await list_adapters(conn, self.tenant_id, kind=kind)

    async def get(self, name: str) -> RegisteredAdapter:
        """The adapter called `name` (or `kind:name`). Raises AdapterNotFound suggesting the closest name."""
        async with self._store.read() as conn:
            return await self._row(conn, name)

    async def _row(self, conn: Connection, name: str) -> RegisteredAdapter:
        kind, _, bare = name.strip().lower().rpartition(":")
        entry = await find_adapter(conn, self.tenant_id, bare)
        if entry is None or (kind and entry.kind != kind):
            raise AdapterNotFound(name, await adapter_names(conn, self.tenant_id))
        return entry

    async def open(self, adapter: str | RegisteredAdapter) -> GatedAgent:
        """A ready agent for the adapter `adapter`, behind the registry's gate and the adapter's circuit breaker.

        `adapter`: its name, or its entry as the caller has just read it (not read again then).
        Raises AdapterNotFound, AdapterDisabled, UnknownAdapterKind (its kind is no longer plugged in),
        UndecryptableSecret (its key was dropped before rotation) or AgentConfigInvalid.
        """
        entry = adapter if isinstance(adapter, RegisteredAdapter) else await self.get(adapter)
        if not entry.enabled:
            raise AdapterDisabled(entry.name)
        return GatedAgent(
            await self._build(entry),
            tenant_id=self.tenant_id,
            adapter=entry.name,
            kind=entry.kind,
            gate=self.gate,
            breakers=self.breakers,
            grace=self.grace,
            tools=PinnedTools(self._store, entry, self.validators) if self.tools_need_enabling(entry.kind) else None,
        )

    async def _build(self, entry: RegisteredAdapter) -> Agent:
        """The bare agent of `entry`, built by its kind's factory from the config and decrypted secrets.

        Only `open` calls it, to wrap what it builds; a subclass may override it to reuse open agents (the bot's
        pool), never to hand them out.
        """
        factory = self._factory(entry.kind)
        async with self._store.read() as conn:
            token = await sealed_secrets(conn, entry.id)
        secrets = json.loads(self.vault.decrypt(token)) if token is not None else {}
        return factory.build(entry.name, {**entry.config, **secrets})

    def session_store(self, name: str) -> AdapterSessionStore:
        """Where the adapter `name` keeps its signed-in session (the bot hands it to the browser kind's factory)."""
        return AdapterSessionStore(self._store, self.tenant_id, name.strip().lower().rpartition(":")[2])

    # ---- changing --------------------------------------------------------------------------------------------

    def _split(self, factory: AdapterFactory, config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Validate a whole config and split it into its public part and its secrets."""
        if not isinstance(config, Mapping):
            raise InvalidValue(Field.ADAPTER_CONFIG, type(config).__name__, Expected.JSON_OBJECT)
        secret_names = set(factory.secret_fields)
        secret_values = [str(v) for k, v in config.items() if (k in secret_names or _looks_secret(k)) and v]
        secret_values += [text for k, v in config.items() if k not in secret_names for text in secrets_in(v)]
        try:
            valid = factory.validate(config)
        except AgentConfigInvalid as error:
            scrubbed = [_scrub(problem, secret_values) for problem in error.problems]
            raise AgentConfigInvalid(scrubbed) from None
        public: dict[str, Any] = {}
        secrets: dict[str, Any] = {}
        for key, value in valid.items():
            if key in secret_names or _looks_secret(key):
                if value is not None:
                    secrets[key] = value
                continue
            public[key] = shown = redacted(value)
            if shown != value:
                secrets[key] = value  # the original, sealed; `open` puts it back over the masked copy
        for key, value in {**public, **secrets}.items():
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                raise InvalidValue(Field.ADAPTER_CONFIG, key, Expected.JSON_OBJECT) from None
        return public, secrets

    def _seal(self, secrets: Mapping[str, Any]) -> bytes | None:
        return self.vault.encrypt(json.dumps(dict(secrets), sort_keys=True).encode()) if secrets else None

    async def _record(
        self,
        conn: Connection,
        *,
        actor: str,
        kind: str,
        after: RegisteredAdapter | None,
        before: RegisteredAdapter | None,
    ) -> None:
        subject = after or before
        assert subject is not None
        await event_log.record(
            conn,
            tenant_id=self.tenant_id,
            at=self._store.clock(),
            actor=actor,
            kind=kind,
            subject_type="adapter",
            subject_id=subject.id,
            before=snapshot(before) if before is not None else None,
            after=snapshot(after) if after is not None else None,
        )

    async def register(
        self, kind: str, name: str, config: Mapping[str, Any], *, actor: str, enabled: bool = True
    ) -> RegisteredAdapter:
        """Register an adapter; its config is validated by its kind and its secrets are encrypted.

        Raises UnknownAdapterKind, InvalidValue (the name; a config that is not plain JSON), AgentConfigInvalid
        (nothing is stored), AdapterExists.
        """
        factory = self._factory(kind.strip().lower())
        name = name.strip().lower()
        if not _NAME.fullmatch(name):
            raise InvalidValue(Field.ADAPTER_NAME, name, Expected.NAME_CHARACTERS, limit=100)
        public, secrets = self._split(factory, config)
        async with self._store.transaction() as conn:
            entry = await insert_adapter(
                conn,
                tenant_id=self.tenant_id,
                kind=kind.strip().lower(),
                name=name,
                config=public,
                secret_fields=_wholly_secret(public, secrets),
                secrets=self._seal(secrets),
                enabled=enabled,
                created_by=actor,
                at=self._store.clock(),
            )
            if entry is None:
                raise AdapterExists(name, (await self._row(conn, name)).kind)
            await self._record(conn, actor=actor, kind="adapter.registered", after=entry, before=None)
        return entry

    async def reconfigure(self, name: str, changes: Mapping[str, Any], *, actor: str) -> RegisteredAdapter:
        """Change some settings (public or secret); the rest are kept. A value of None removes a setting.

        Raises AdapterNotFound, UnknownAdapterKind, AgentConfigInvalid (nothing changes).
        """
        async with self._store.transaction() as conn:
            before = await self._row(conn, name)
            factory = self._factory(before.kind)
            token = await sealed_secrets(conn, before.id)
            current = {**before.config, **(json.loads(self.vault.decrypt(token)) if token is not None else {})}
            # A value given back as it was shown (masked) keeps the secret it stands for.
            kept = {
                k
                for k, v in changes.items()
                if k in current and MASK in json.dumps(v, ensure_ascii=False) and v == before.config.get(k)
            }
            merged = {k: v for k, v in {**current, **changes}.items() if v is not None and k not in kept}
            merged.update({k: current[k] for k in kept})
            public, secrets = self._split(factory, merged)
            return await self._update(
                conn,
                before,
                actor=actor,
                kind="adapter.reconfigured",
                config=public,
                secret_fields=_wholly_secret(public, secrets),
                secrets=self._seal(secrets),
            )

    async def _update(
        self, conn: Connection, before: RegisteredAdapter, *, actor: str, kind: str, **values: Any
    ) -> RegisteredAdapter:
        after = await update_adapter(conn, before.id, at=self._store.clock(), **values)
        await self._record(conn, actor=actor, kind=kind, after=after, before=before)
        return after

    async def enable(self, name: str, *, actor: str) -> RegisteredAdapter:
        """Let the adapter take delegations again. Raises AdapterNotFound."""
        return await self._switch(name, True, actor=actor)

    async def disable(self, name: str, *, actor: str) -> RegisteredAdapter:
        """Stop the adapter taking delegations (its configuration is kept). Raises AdapterNotFound."""
        return await self._switch(name, False, actor=actor)

    async def _switch(self, name: str, enabled: bool, *, actor: str) -> RegisteredAdapter:
        async with self._store.transaction() as conn:
            before = await self._row(conn, name)
            if before.enabled is enabled:
                return before
            kind = "adapter.enabled" if enabled else "adapter.disabled"
            return await self._update(conn, before, actor=actor, kind=kind, enabled=enabled)

    # ---- tools ------------------------------------------------------------------------------------------------

    async def _tools_entry(self, name: str) -> RegisteredAdapter:
        entry = await self.get(name)
        if not self.tools_need_enabling(entry.kind):
            raise ToolsNotSwitched(entry.name, entry.kind)
        return entry

    async def _defined_now(self, entry: RegisteredAdapter) -> list[Capability]:
        """The tools as the server defines them now (its bare agent, asked without a delegation: a read)."""
        agent = await self._build(entry)
        try:
            return await agent.capabilities()
        finally:
            await agent.close()

    async def tools(self, name: str) -> list[ToolListing]:
        """The adapter's tools as its server defines them now, with their state; then those an admin enabled or that
        were held and that the server no longer has. An enabled tool the server now defines otherwise is held here
        and then. Raises AdapterNotFound, ToolsNotSwitched, AgentUnavailable."""
        entry = await self._tools_entry(name)
        now = {capability.name: capability for capability in await self._defined_now(entry)}
        async with self._store.read() as conn:
            stored = {tool.capability: tool for tool in await tools_of(conn, self.tenant_id, entry.name)}
        for name, tool in list(stored.items()):
            definition = now[name].definition if name in now else None
            if tool.callable and definition is not None and not tool.matches(definition):
                stored[name] = await hold(self._store, entry, tool, definition)  # the server reported a change
        listed = [ToolListing(capability=name, now=now[name], stored=stored.get(name)) for name in sorted(now)]
        gone = [
            ToolListing(capability=name, now=None, stored=stored[name]) for name in sorted(stored) if name not in now
        ]
        return listed + gone

    async def switched_tools(self, name: str) -> list[AdapterTool]:
        """The adapter's enabled and held tools as stored (no call to the server; the others are off)."""
        async with self._store.read() as conn:
            return await tools_of(conn, self.tenant_id, (await self._row(conn, name)).name)

    async def enable_tool(self, name: str, capability: str, *, actor: str) -> AdapterTool:
        """Enable the adapter's tool `capability`, pinning its definition as the server gives it now (enabling a held
        tool again pins the new one). Raises AdapterNotFound, ToolsNotSwitched, UnknownCapability, AgentUnavailable."""
        entry = await self._tools_entry(name)
        capability = capability.strip()
        defined = await self._defined_now(entry)
        found = next((c for c in defined if c.name == capability and c.definition is not None), None)
        if found is None or found.definition is None:
            raise UnknownCapability(entry.name, capability, [c.name for c in defined])
        async with self._store.transaction() as conn:
            before = await tool_of(conn, self.tenant_id, entry.name, capability)
            after = pinned(entry, capability, found.definition, actor=actor, at=self._store.clock())
            if before is not None and before.callable and before.pin == after.pin:
                return before
            await put_tool(conn, after)
            await record_tool(
                conn,
                store=self._store,
                adapter=entry,
                actor=actor,
                kind="adapter.tool_enabled",
                before=before,
                after=after,
            )
        return after

    async def disable_tool(self, name: str, capability: str, *, actor: str) -> AdapterTool | None:
        """Switch the adapter's tool `capability` off; what it was (None: it was off). Raises AdapterNotFound,
        ToolsNotSwitched."""
        entry = await self._tools_entry(name)
        async with self._store.transaction() as conn:
            before = await tool_of(conn, self.tenant_id, entry.name, capability.strip())
            if before is None:
                return None
            await delete_tool(conn, self.tenant_id, entry.name, before.capability)
            await record_tool(
                conn,
                store=self._store,
                adapter=entry,
                actor=actor,
                kind="adapter.tool_disabled",
                before=before,
                after=None,
            )
        return before

    # ---- capability gates ---------------------------------------------------------------------------------------

    async def classify(
        self, name: str, capability: str, categories: Iterable[str], *, actor: str
    ) -> tuple[CapabilityGates | None, CapabilityGates]:
        """Classify the adapter's capability under the approval gates `categories` names (`none` alone: no gate),
        in place of its classification; what it was (None: unclassified) and what it is now. The capability must be
        one the agent offers now (it is asked: a read).

        Raises AdapterNotFound, UnknownGateCategory, UnknownCapability, AgentUnavailable.
        """
        gates = gate_categories(categories)
        entry = await self.get(name)
        capability = capability.strip()
        offered = await self._defined_now(entry)
        if capability not in {c.name for c in offered}:
            raise UnknownCapability(entry.name, capability, [c.name for c in offered])
        after = CapabilityGates(
            tenant_id=self.tenant_id,
            adapter=entry.name,
            capability=capability,
            categories=gates,
            classified_by=actor,
            classified_at=self._store.clock(),
        )
        async with self._store.transaction() as conn:
            before = await classification_of(conn, self.tenant_id, entry.name, capability)
            if (before.categories if before is not None else ()) == gates:
                return before, before or after
            await put_classification(conn, after)
            await event_log.record(
                conn,
                tenant_id=self.tenant_id,
                at=self._store.clock(),
                actor=actor,
                kind="adapter.capability_classified",
                subject_type="adapter",
                subject_id=entry.id,
                before=snapshot(before) if before is not None else None,
                after=snapshot(after),
            )
        return before, after

    async def classifications(self, name: str | None = None) -> list[CapabilityGates]:
        """The classified capabilities of the adapter `name` (of every adapter when None), by adapter and capability.
        Raises AdapterNotFound."""
        async with self._store.read() as conn:
            adapter = (await self._row(conn, name)).name if name is not None else None
            return await classifications_of(conn, self.tenant_id, adapter)

    async def remove(self, name: str, *, actor: str) -> RegisteredAdapter:
        """Forget the adapter, its secrets and its circuit; the event keeps what it was (without secrets).

        Delegations to it that have not run yet fail when they come up. Raises AdapterNotFound.
        """
        async with self._store.transaction() as conn:
            before = await self._row(conn, name)
            await delete_adapter(conn, before)
            await self._record(conn, actor=actor, kind="adapter.removed", after=None, before=before)
        return before


def _wholly_secret(public: Mapping[str, Any], secrets: Mapping[str, Any]) -> list[str]:
    """The fields that are only in the sealed part (shown as `set`); the others there are masked copies' originals."""
    return sorted(name for name in secrets if name not in public)


def _scrub(text: str, secret_values: Iterable[str]) -> str:
    for value in secret_values:
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text


async def rotate_secrets(store: Store, vault: Vault, *, actor: str) -> int:
    """Re-encrypt every tenant's stored secrets, sessions, the grants people gave OAuth adapters and delegation
    evidence with the vault's newest key; returns how many adapters'.

    Every tenant at once, because a key can only be dropped once nothing anywhere is encrypted with it. Run it
    after putting the new key first in `COS_SECRET_KEYS`; then the old key can be removed. Raises
    UndecryptableSecret if a secret is readable with none of the vault's keys (nothing is changed then).
    """
    rotated = 0
    async with store.transaction() as conn:
        for sealed in await sealed_adapters(conn):
            resealed = await reseal_adapter(
                conn,
                sealed,
                secrets=vault.rotate(sealed.secrets) if sealed.secrets is not None else None,
                session=vault.rotate(sealed.session) if sealed.session is not None else None,
            )
            if not resealed:
                continue  # changed meanwhile: sealed with the newest key already
            entry = sealed.adapter
            await event_log.record(
                conn,
                tenant_id=entry.tenant_id,
                at=store.clock(),
                actor=actor,
                kind="adapter.secrets_rotated",
                subject_type="adapter",
                subject_id=entry.id,
                before=None,
                after=snapshot(entry),
            )
            rotated += 1
        for evidence_id in await stored_delegations.kept_evidence_ids(conn):
            content = await stored_delegations.evidence_content(conn, evidence_id)
            try:
                resealed_content = vault.rotate(content)
            except VaultError:
                resealed_content = vault.encrypt(content)  # kept before evidence was encrypted
            await stored_delegations.reseal_evidence(conn, evidence_id, resealed_content)
        for tenant_id, adapter, user_id, grant in await oauth_store.all_grants(conn):
            await oauth_store.reseal_grant(conn, tenant_id, adapter, user_id, vault.rotate(grant))
    return rotated
