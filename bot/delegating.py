"""Delegation, wired for the bot: the adapter kinds, the vault, a pool of open agents, runs in the background.

A delegation asked for in Teams is queued at once and run in the background; its result (or the news that the
agent is down and the delegation waits) reaches the task's owner through the outbox. The scheduler's tick runs
what is due again: queued delegations whose process stopped, and deferred ones whose agent's circuit closed.

Every agent the registries hand out is gated (`planner/governance/gated_agent.py`): the policy gate
(`planner/governance/guard.py`) and the adapter's circuit breaker stand before every call, a delegation's or a metric
feed pull's alike. A stopped delegation fails with its reasons, a flagged one is held until its approval is decided. An
approval in Teams releases it at once (the approval's resume hook); a rejection fails it; the tick settles whatever a
restart or an expiry left held.

Agents stay open between delegations (an MCP session takes a round trip or a process start to open), keyed by
the adapter's version, so a reconfigured adapter is reopened and a removed one closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from adapters import AdapterLimits, adapter_kinds
from bot.relay import TeamsHumanChannel
from bot.text.errors import describe_plain
from bot.text.gates import approval_outcome_text
from planner.domain.adapters import RegisteredAdapter
from planner.domain.approvals import DEFAULT_EXPIRY, ApprovalRequest
from planner.domain.delegations import Delegation, DelegationStatus
from planner.domain.errors import TaskNotFound
from planner.domain.messages import Message, MessageKind
from planner.governance.guard import PolicyGuard, approval_outcome
from planner.governance.sampling import GatedSampler
from planner.ports import (
    Agent,
    AgentHealth,
    Capability,
    DelegationRequest,
    DelegationResult,
    HumanChannel,
    Sampler,
    acting_for,
)
from planner.services.breaker import Breakers
from planner.services.delegation import (
    Delegations,
    RunOutcome,
    keep_live_card,
    tenants_with_delegations_to_run,
    tenants_with_held_delegations,
)
from planner.services.oauth import SignIns
from planner.services.registry import AdapterFactory, Registry
from planner.services.tenants import Tenants

if TYPE_CHECKING:
    from adapters.a2a import A2APush
    from bot.progress import LiveCard, LiveCards
from planner.store import Store
from planner.store.vault import Vault

logger = logging.getLogger(__name__)


class _Borrowed(Agent):
    """A pooled agent lent to one delegation: closing it returns it to the pool instead."""

    def __init__(self, agent: Agent) -> None:
        self._agent = agent
        self.kind = agent.kind
        self.name = agent.name

    async def capabilities(self) -> list[Capability]:
        return await self._agent.capabilities()

    async def capability(self, name: str) -> Capability | None:
        return await self._agent.capability(name)

    async def delegate(self, request: DelegationRequest, *, human: HumanChannel | None = None) -> DelegationResult:
        return await self._agent.delegate(request, human=human)

    async def health(self) -> AgentHealth:
        return await self._agent.health()

    async def rehearse(self, request: DelegationRequest, *, human: HumanChannel | None = None) -> DelegationResult:
        return await self._agent.rehearse(request, human=human)

    async def close(self) -> None:
        """Kept open for the next delegation; the pool closes it."""


class AgentPool:
    """Open agents of every tenant, by adapter and version."""

    def __init__(self) -> None:
        self._agents: dict[tuple[str, str], tuple[int, Agent]] = {}
        self._lock = asyncio.Lock()

    async def lend(self, entry: RegisteredAdapter, build: Callable[[], Awaitable[Agent]]) -> Agent:
        """The open agent of `entry`'s adapter at `entry`'s version, built (and kept) if there is none."""
        key = (entry.tenant_id, entry.name)
        async with self._lock:
            held = self._agents.get(key)
            if held is not None and held[0] == entry.version:
                return _Borrowed(held[1])
            if held is not None:
                await _close_quietly(held[1])
            agent = await build()
            self._agents[key] = (entry.version, agent)
            return _Borrowed(agent)

    async def forget(self, tenant_id: str, name: str) -> None:
        held = self._agents.pop((tenant_id, name), None)
        if held is not None:
            await _close_quietly(held[1])

    async def close(self) -> None:
        held, self._agents = list(self._agents.values()), {}
        for _version, agent in held:
            await _close_quietly(agent)


async def _close_quietly(agent: Agent) -> None:
    try:
        await agent.close()
    except Exception:
        logger.exception("closing agent %s failed", agent.name)


class PooledRegistry(Registry):
    """The registry, building the agents it gates through the pool: `open` gates a borrowed one."""

    def __init__(
        self,
        store: Store,
        tenant_id: str,
        *,
        vault: Vault,
        kinds: Mapping[str, AdapterFactory],
        pool: AgentPool,
        gate: PolicyGuard,
        breakers: Breakers,
    ):
        super().__init__(store, tenant_id, vault=vault, kinds=kinds, gate=gate, breakers=breakers)
        self._pool = pool

    async def _build(self, entry: RegisteredAdapter) -> Agent:
        return await self._pool.lend(entry, lambda: Registry._build(self, entry))


class Delegator:
    """Registries and delegations per tenant, and the runs that post their results to Teams."""

    def __init__(
        self,
        store: Store,
        vault: Vault,
        *,
        kinds: Callable[[Store, str, Vault], Mapping[str, AdapterFactory]] | None = None,
        deliver_now: Callable[[], Awaitable[object]] | None = None,
        breaker_settings: Any = None,
        approval_expiry: timedelta = DEFAULT_EXPIRY,
        limits: AdapterLimits | None = None,
        tenants: Tenants | None = None,
        a2a_push: A2APush | None = None,
        live_cards: LiveCards | None = None,
        sampler: Sampler | None = None,
        oauth_callback: str = "",
    ) -> None:
        """`limits`: what the operator lets the adapter kinds run and reach (the strict defaults when not given);
        `tenants`: each tenant's services (the composition root's; a delegator made alone makes its own);
        `a2a_push`: where A2A agents may post task updates (None: their tasks are polled);
        `live_cards`: who follows a delegation started from chat in a card updated as it progresses (None: nobody);
        `sampler`: the bot's model, lent to MCP servers that ask behind each tenant's gate (None: sampling is off);
        `oauth_callback`: the bot's OAuth callback URL, where people's sign-ins return."""
        self.live_cards = live_cards
        self._sampler = sampler
        self.store = store
        self.tenants = tenants or Tenants(store)
        self.vault = vault
        self._kinds = kinds or functools.partial(
            self._adapter_kinds, limits=limits, a2a_push=a2a_push, oauth_callback=oauth_callback
        )
        self.deliver_now = deliver_now
        self.pool = AgentPool()
        self._breaker_settings = breaker_settings
        self.approval_expiry = approval_expiry
        self._background: set[asyncio.Task[Any]] = set()
        self._registries: dict[str, PooledRegistry] = {}

    def registry(self, tenant_id: str) -> Registry:
        """The tenant's registry, with its policy gate and circuit breakers, made once: they keep nothing of one
        delegation (what they know is in the store, or in caches of their own that check it), so one of each serves
        every request."""
        registry = self._registries.get(tenant_id)
        if registry is None:
            kinds = self._kinds(self.store, tenant_id, self.vault)
            services = self.tenants(tenant_id)
            gate = PolicyGuard(
                self.store,
                tenant_id,
                record=services.decisions.record,
                engine=services.policy,
                approval_expiry=self.approval_expiry,
            )
            breakers = Breakers(self.store, tenant_id, self._breaker_settings)
            registry = PooledRegistry(
                self.store, tenant_id, vault=self.vault, kinds=kinds, pool=self.pool, gate=gate, breakers=breakers
            )
            self._registries[tenant_id] = registry
        return registry

    def _adapter_kinds(
        self,
        store: Store,
        tenant_id: str,
        vault: Vault,
        *,
        limits: AdapterLimits | None,
        a2a_push: A2APush | None,
        oauth_callback: str,
    ) -> Mapping[str, AdapterFactory]:
        sampler = None
        if self._sampler is not None:
            services = self.tenants(tenant_id)
            sampler = GatedSampler(
                self._sampler, tenant_id=tenant_id, engine=services.policy, record=services.decisions.record
            )
        return adapter_kinds(
            store, tenant_id, vault, limits=limits, a2a_push=a2a_push, sampler=sampler, oauth_callback=oauth_callback
        )

    def breakers(self, tenant_id: str) -> Breakers:
        return self.registry(tenant_id).breakers

    def delegations(self, tenant_id: str) -> Delegations:
        """A runner of the tenant's delegations: a new one each time, with a name of its own (a lease names its
        holder), on the tenant's registry (its gate and breakers)."""
        return Delegations(self.store, tenant_id, registry=self.registry(tenant_id), explain=describe_plain)

    def start(
        self,
        tenant_id: str,
        delegation_id: int,
        *,
        ask: str | None,
        delegations: Delegations | None = None,
        follow: bool = False,
    ) -> None:
        """Run a delegation in the background; `ask` is who answers the agent's questions (a 2FA code), by default who
        delegated.

        `delegations`: the object that requested it, so one it stored started is run without claiming it again.
        `follow`: send the task's owner a card of the delegation, updated as it progresses (one started from chat).
        """
        task = asyncio.create_task(self.run(tenant_id, delegation_id, ask=ask, delegations=delegations, follow=follow))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for the background runs (tests and shutdown)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    def acting_for(
        self, tenant_id: str, user_id: str, *, agent: str, on_sign_in: Callable[[], None] | None = None
    ) -> contextlib.AbstractContextManager[None]:
        """Calls in this block act for `user_id` (an admin listing or enabling an adapter's tools): an agent that acts
        as each person uses their grant, or sends them a sign-in card (then tells `on_sign_in`) and waits for it."""
        if self.deliver_now is None:
            return contextlib.nullcontext()
        person = TeamsHumanChannel(
            self.tenants(tenant_id),
            user_id,
            agent=agent,
            deliver_now=self.deliver_now,
            sign_ins=SignIns(self.store, tenant_id, self.vault),
            on_sign_in=on_sign_in,
        )
        return acting_for(person)

    def in_background(self, work: Awaitable[object]) -> None:
        """Finish `work` after the chat turn that began it answered (drained like the delegations' runs)."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def run(
        self,
        tenant_id: str,
        delegation_id: int,
        *,
        ask: str | None,
        delegations: Delegations | None = None,
        follow: bool = False,
    ) -> RunOutcome | None:
        """Run one delegation and tell its task's owner how it went; never raises (the plan degrades, not the bot).

        `delegations`, `follow`: as for `start`.
        """
        with self.store.background():  # its bookkeeping leaves people's turns a connection
            return await self._run(tenant_id, delegation_id, ask=ask, delegations=delegations, follow=follow)

    async def _run(
        self,
        tenant_id: str,
        delegation_id: int,
        *,
        ask: str | None,
        delegations: Delegations | None,
        follow: bool,
    ) -> RunOutcome | None:
        delegations = delegations or self.delegations(tenant_id)
        human = None
        live: LiveCard | None = None
        if self.deliver_now is not None:
            delegation = await delegations.get(delegation_id)
            if delegation.live_card is not None:  # an earlier run's card: this run's result is a message of its own
                await keep_live_card(self.store, tenant_id, delegation_id, None)
            if follow and self.live_cards is not None:
                owner, title = await self._owner_and_title(tenant_id, delegation)
                live = self.live_cards.follow(delegation, owner, title=title)
            # A run nobody started in chat (a deferred one run again, an approved one) asks who delegated.
            human = TeamsHumanChannel(
                self.tenants(tenant_id),
                ask or delegation.actor,
                agent=delegation.adapter,
                deliver_now=self.deliver_now,
                on_progress=live.progressed if live is not None else None,
                sign_ins=SignIns(self.store, tenant_id, self.vault),
                delegation_id=delegation_id,
            )
        try:
            # The run acts for the person asked: an agent that acts as them uses their grant, or has them sign in.
            with acting_for(human) if human is not None else contextlib.nullcontext():
                outcome = await delegations.run(delegation_id, human=human)
        except Exception:
            logger.exception("delegation %s of tenant %s failed unexpectedly", delegation_id, tenant_id)
            if live is not None:
                await live.finish(await self._as_it_stands(delegations, delegation_id))
            return None
        if live is not None:
            await live.finish(outcome.delegation)
        await self._tell(tenant_id, outcome)
        return outcome

    @staticmethod
    async def _as_it_stands(delegations: Delegations, delegation_id: int) -> Delegation | None:
        """The delegation as stored now, or None when it cannot be read (after an unexpected failure)."""
        try:
            return await delegations.get(delegation_id)
        except Exception:  # within the top of the run's job, which must not raise
            logger.exception("delegation %s could not be read after it failed", delegation_id)
            return None

    async def _owner_and_title(self, tenant_id: str, delegation: Delegation) -> tuple[str, str | None]:
        """Who follows a delegation (as `_owner`) and its task's title (None when the task is gone)."""
        try:
            task = await self.tenants(tenant_id).plans.get_task(delegation.task_id)
        except TaskNotFound:
            return delegation.actor, None
        return task.owner or delegation.actor, task.title

    async def _owner(self, tenant_id: str, delegation: Delegation) -> str:
        """Who hears how a delegation went: its task's owner, or who delegated when the task has none."""
        try:
            task = await self.tenants(tenant_id).plans.get_task(delegation.task_id)
        except TaskNotFound:
            return delegation.actor
        return task.owner or delegation.actor

    async def _tell(self, tenant_id: str, outcome: RunOutcome) -> None:
        delegation = outcome.delegation
        if outcome.told:  # written with the result
            if self.deliver_now is not None:
                await self.deliver_now()
            return
        if delegation.finished:
            kind = MessageKind.DELEGATION_RESULT
        elif delegation.status is DelegationStatus.UNKNOWN and outcome.tell_owner:
            kind = MessageKind.DELEGATION_UNKNOWN
        elif outcome.tell_owner:
            held = delegation.status is DelegationStatus.HELD
            kind = MessageKind.DELEGATION_HELD if held else MessageKind.DELEGATION_DEFERRED
        else:
            return
        recipient = outcome.owner or await self._owner(tenant_id, delegation)
        message = Message(recipient=recipient, kind=kind, payload={"delegation": delegation.id})
        key = f"{kind}:{delegation.id}:{delegation.attempts}"
        if await self.tenants.outbox.fire(tenant_id, key, [message]) and self.deliver_now is not None:
            await self.deliver_now()

    async def resume(self, tenant_id: str, delegation_id: int, approval: ApprovalRequest) -> bool:
        """Release a held delegation its approval let through and run it in the background; False if it was not
        held (released already, by another replica or an earlier click)."""
        outcome = approval_outcome(approval)
        if outcome is None or not outcome.approved:
            return False
        actor = approval.decided_by or "policy"
        released = await self.delegations(tenant_id).release_hold(
            delegation_id, approved=True, actor=actor, reason=approval_outcome_text(outcome)
        )
        if released is not None:
            self.start(tenant_id, delegation_id, ask=None)
        return released is not None

    async def settle(self, tenant_id: str, delegation: Delegation) -> bool:
        """Act on the decided approval of a held delegation: run it once approved, fail it when rejected or expired.
        False while nobody decided."""
        approvals = self.tenants(tenant_id).approvals
        request = await approvals.for_delegation(delegation.id)
        if request is None:
            # Held without a request on record: queue it, and the gate asks again.
            delegations = self.delegations(tenant_id)
            return (
                await delegations.release_hold(
                    delegation.id, approved=True, actor="policy", reason="no approval on record; asking again"
                )
                is not None
            )
        outcome = approval_outcome(request)
        if outcome is None:
            return False
        if outcome.approved:
            await approvals.claim_resume(request.id)  # whoever claimed it, releasing the hold is done once
            return await self.resume(tenant_id, delegation.id, request)
        failed = await self.delegations(tenant_id).release_hold(
            delegation.id, approved=False, actor=request.decided_by or "policy", reason=approval_outcome_text(outcome)
        )
        if failed is not None:
            await self._tell(tenant_id, RunOutcome(delegation=failed, ran=False))
        return failed is not None

    async def settle_held(self) -> int:
        """Settle every tenant's held delegations whose approval was decided (a restart, an expiry, a rejection)."""
        settled = 0
        for tenant_id in await tenants_with_held_delegations(self.store):
            for delegation in await self.delegations(tenant_id).held():
                settled += await self.settle(tenant_id, delegation)
        return settled

    async def run_due(self, at: datetime) -> int:
        """Run every tenant's due delegations: queued ones, and deferred ones whose agent passed a health check.

        Running ones whose runner stopped (their lease ran out) are marked of unknown outcome and their owners told:
        they are never sent again by themselves.
        """
        await self.settle_held()
        ran = 0
        for tenant_id in await tenants_with_delegations_to_run(self.store):
            delegations = self.delegations(tenant_id)
            for lapsed in await delegations.lapse(at):
                await self._tell(tenant_id, RunOutcome(delegation=lapsed, ran=False, tell_owner=True))
            for adapter in await delegations.awaiting_health_check(at):
                await self.check_health(tenant_id, adapter)
            for delegation in await delegations.due_for_retry(at):
                outcome = await self.run(tenant_id, delegation.id, ask=None)
                ran += bool(outcome and outcome.ran)
        return ran

    async def check_health_if_due(self, tenant_id: str, adapter: str, at: datetime) -> None:
        """Probe an agent with a health check if its circuit waits for one at `at` (open, past its cool-down)."""
        breakers = self.breakers(tenant_id)
        if (await breakers.state(adapter)).awaits_health_check(at, breakers.settings):
            await self.check_health(tenant_id, adapter)

    async def check_health(self, tenant_id: str, adapter: str) -> None:
        """Probe an agent whose circuit is open with a health check; a healthy one closes it (never raises)."""
        registry = self.registry(tenant_id)
        try:
            agent = await registry.open(adapter)
        except Exception as error:
            await registry.breakers.failed(adapter, f"it could not be opened: {error}")
            return
        try:
            circuit = await registry.breakers.check_health(adapter, agent)
        finally:
            await agent.close()
        logger.info("health check of %r (tenant %s): circuit %s", adapter, tenant_id, circuit.state.value)

    async def close(self) -> None:
        await self.drain()
        await self.pool.close()
