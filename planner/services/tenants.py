"""Each tenant's use cases, built once per process and shared by every turn, tick and delegation of that tenant.

The bot's composition root (`bot/server.py`) makes one `Tenants` and hands it to everything it wires; a use case
that needs another tenant's services asks it, never builds its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.ports import Clock
from planner.services.approvals import Approvals
from planner.services.budgets import Budgets
from planner.services.context import ContextFacts
from planner.services.decisions import DecisionLog
from planner.services.directory import Directory
from planner.services.drafts import Drafts
from planner.services.ingestion import MetricEvents
from planner.services.measurement import Measurement
from planner.services.memory import AssistantMemory
from planner.services.outbox import Outbox
from planner.services.plans import Plans
from planner.services.playbooks import Playbooks
from planner.services.policy import PolicyEngine, PolicySets
from planner.services.questions import Questions
from planner.store import Store


@dataclass(frozen=True)
class Tenant:
    """The use cases of one tenant (the Teams tenant id)."""

    tenant_id: str
    clock: Clock
    plans: Plans
    directory: Directory
    drafts: Drafts
    questions: Questions
    measurement: Measurement
    playbooks: Playbooks
    policy: PolicyEngine
    policy_sets: PolicySets
    decisions: DecisionLog
    approvals: Approvals
    """Approval requests whose decisions go to the decision log as the people who make them (an operation run for
    the model builds its own, to write them as the model's)."""
    facts: ContextFacts
    metric_events: MetricEvents
    outbox: Outbox
    """The outbox, shared by every tenant (each message names its own)."""
    memory: AssistantMemory
    """What the assistant remembers of each conversation."""
    budgets: Budgets
    """Budgets, allocations and spend."""


KEPT = 1024
"""Tenants whose services are kept at once; beyond that the least recently used are dropped (and built again when
asked for), so tenant ids arriving in requests cannot grow the process's memory without bound."""


class Tenants:
    """The composition root's services, per tenant: built on first use, then kept (up to `kept` tenants)."""

    def __init__(self, store: Store, *, kept: int = KEPT) -> None:
        self.store = store
        self.outbox = Outbox(store)
        self._kept = kept
        self._built: dict[str, Tenant] = {}

    def __call__(self, tenant_id: str) -> Tenant:
        """The services of a tenant. Raises InvalidValue for a blank tenant id."""
        found = self._built.pop(tenant_id, None) or self._make(tenant_id)
        self._built[tenant_id] = found  # the most recently used last
        if len(self._built) > self._kept:
            del self._built[next(iter(self._built))]
        return found

    def _make(self, tenant_id: str) -> Tenant:
        store = self.store
        decisions = DecisionLog(store, tenant_id)
        return Tenant(
            tenant_id=tenant_id,
            clock=store.clock,
            plans=Plans(store, tenant_id),
            directory=Directory(store, tenant_id),
            drafts=Drafts(store, tenant_id),
            questions=Questions(store, tenant_id),
            measurement=Measurement(store, tenant_id),
            playbooks=Playbooks(store, tenant_id),
            policy=PolicyEngine(store, tenant_id),
            policy_sets=PolicySets(store, tenant_id),
            decisions=decisions,
            approvals=Approvals(store, tenant_id, record=decisions.record),
            facts=ContextFacts(store, tenant_id),
            metric_events=MetricEvents(store, tenant_id),
            outbox=self.outbox,
            memory=AssistantMemory(store, tenant_id),
            budgets=Budgets(store, tenant_id),
        )
