"""One gate in front of every agent: each place in the code that can reach an agent, found by reading the code, is
stopped by one "no delegation" rule and by an open circuit, and the agent behind it is never called.

The first test lists the call sites from the source (every `delegate`, `admit`, `build` and registry `open` call in
planner/, bot/ and adapters/): a new one fails it until it is added to `CALL_SITES` with the path that runs it
below. The next ones run each of those paths with a scripted agent that records its calls.
"""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.delegating import Delegator
from bot.operations import Caller, Context, Reply, default_registry
from bot.scheduler import pull_metric_feeds
from planner.domain.circuits import BreakerSettings, CircuitState
from planner.domain.delegations import DelegationStatus
from planner.domain.model import MetricSpec, Window
from planner.governance.gated_agent import CircuitOpen, DelegationStopped
from planner.ports import DelegationRequest
from planner.services.approvals import Approvals
from planner.services.decisions import DecisionLog
from planner.services.ingestion import MetricFeeds
from planner.services.plans import Plans
from planner.services.policy import PolicySets
from planner.services.tenants import Tenants
from planner.store import Store
from planner.store.vault import Vault
from tests.conftest import FakeClock
from tests.fakes.agents import FakeAgentFactory, ScriptedAgent

ROOT = Path(__file__).resolve().parents[2]
TENANT = "tenant-contoso"
LEAD = "aad-lead"
SETTINGS = BreakerSettings(failure_threshold=2, cool_down=timedelta(minutes=10))
FREEZE = {"id": "freeze", "description": "No agent acts during the audit", "effect": "forbid", "kinds": ["delegation"]}
CHECKED = {
    "id": "segments-checked",
    "description": "Segments are checked by a person",
    "effect": "require",
    "actions": ["create_segment"],
}

CALL_SITES = {
    # The one call of a bare agent: inside the gated agent, after the gate and the breaker let it through.
    ("planner/governance/gated_agent.py", "GatedAgent._call", "delegate"): "every path below",
    ("planner/governance/gated_agent.py", "GatedAgent.delegate", "admit"): "a caller of its own, a metric feed pull",
    # Only the registry builds bare agents, and `open` gates what it builds (the bot's pool lends them to it).
    ("planner/services/registry.py", "Registry.open", "_build"): "every path below",
    ("planner/services/registry.py", "Registry._build", "build"): "every path below",
    ("bot/delegating.py", "PooledRegistry._build", "_build"): "every path below (the bot's pool)",
    ("bot/delegating.py", "_Borrowed.delegate", "delegate"): "every path below (a pooled agent, gated by `open`)",
    # Delegations: typed or clicked `delegate`, `retry`, `adapter reset`, an approval's resume, the tick.
    ("planner/services/delegation.py", "Delegations._run_started", "open"): "delegate (started with its request)",
    (
        "planner/services/delegation.py",
        "Delegations._run",
        "open",
    ): "the tick, retry, adapter reset, an approval's resume",
    ("planner/services/delegation.py", "Delegations._admit", "admit"): "every delegation",
    # Metric feed pulls: the tick and `cos metrics pull` (both `pull_metric_feeds`).
    ("planner/services/ingestion.py", "MetricFeeds.pull", "delegate"): "pull_metric_feeds",
    ("bot/scheduler.py", "pull_metric_feeds.open_agent", "open"): "pull_metric_feeds",
    # Reads, which pass through the gated agent: `adapter test`, `cos adapters test`, the breaker's health check.
    ("bot/operations/delegation.py", "test_adapter", "open"): "adapter test",
    ("bot/cli.py", "_adapters.main.tested", "open"): "cos adapters test (as adapter test)",
    ("bot/cli.py", "_adapters.main.rehearsed", "open"): "cos adapters test --dry-run (a sandbox task)",
    ("bot/delegating.py", "Delegator.check_health", "open"): "the tick's health check",
    # A read of the bare agent's tool listing only (capabilities), closed at once: what an admin reads and pins, also
    # for an adapter switched off (`adapter tools`, `adapter enable <name> <tool>`, their `cos adapters` forms).
    ("planner/services/registry.py", "Registry._defined_now", "_build"): "adapter tools, adapter enable <name> <tool>",
}
"""Where the code reaches for an agent, and what below runs that place."""


def call_sites() -> set[tuple[str, str, str]]:
    """Every call of `delegate`, `admit`, `build` or `_build`, and of `open` on a registry, in the product code."""
    found: set[tuple[str, str, str]] = set()

    class Calls(ast.NodeVisitor):
        def __init__(self, path: str) -> None:
            self.path = path
            self.scope: list[str] = []

        def visit_ClassDef(self, node: ast.ClassDef) -> None:
            self.scope.append(node.name)
            self.generic_visit(node)
            self.scope.pop()

        def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
            self.scope.append(node.name)
            self.generic_visit(node)
            self.scope.pop()

        visit_AsyncFunctionDef = visit_FunctionDef

        def visit_Call(self, node: ast.Call) -> None:
            called = node.func
            if isinstance(called, ast.Attribute) and (
                called.attr in ("delegate", "admit", "build", "_build")
                or (called.attr == "open" and "registry" in ast.unparse(called.value))
            ):
                found.add((self.path, ".".join(self.scope), called.attr))
            self.generic_visit(node)

    for package in ("planner", "bot", "adapters"):
        for path in sorted((ROOT / package).rglob("*.py")):
            Calls(str(path.relative_to(ROOT))).visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def test_every_place_that_reaches_an_agent_is_listed_with_the_path_that_runs_it() -> None:
    assert call_sites() == set(CALL_SITES)


@dataclass
class Bot:
    """A tenant with two tasks and a KPI, the bot's delegator with the adapter `crm` (a scripted agent)."""

    store: Store
    clock: FakeClock
    delegator: Delegator
    agent: ScriptedAgent
    tasks: tuple[int, int]
    sqls: int

    def context(self) -> Context:
        caller = Caller(tenant_id=TENANT, user_id=LEAD, name="Lead", is_admin=True, time_zone="UTC")
        log = DecisionLog(self.store, TENANT)
        return Context(Tenants(self.store), caller, clock=self.clock, delegator=self.delegator, record=log.record)

    async def run(self, operation: str, **args: Any) -> Reply:
        reply = await default_registry().run(operation, self.context(), args)
        await self.delegator.drain()
        return reply

    async def delegate(self, capability: str = "draft_email", *, task: int = 0, start: bool = True) -> int:
        """A delegation of a task to `crm`, as `delegate T… to crm …` asks for it (`start`) or left queued."""
        if start:
            await self.run("delegate_task", task=f"T{self.tasks[task]}", adapter="crm", capability=capability)
            return (await self.delegations())[0].id
        delegations = self.delegator.delegations(TENANT)
        return (await delegations.request(self.tasks[task], adapter="crm", capability=capability, actor=LEAD)).id

    async def delegations(self) -> list[Any]:
        return await self.delegator.delegations(TENANT).list_delegations()

    async def status(self, delegation_id: int) -> tuple[DelegationStatus, str | None]:
        delegation = await self.delegator.delegations(TENANT).get(delegation_id)
        return delegation.status, delegation.error

    async def feed_error(self) -> str | None:
        [feed] = await MetricFeeds(self.store, TENANT).list_feeds()
        return feed.last_error


@pytest.fixture
async def bot(store: Store, clock: FakeClock) -> AsyncIterator[Bot]:
    clock.now = datetime(2026, 1, 5, 9, tzinfo=UTC)
    plans = Plans(store, TENANT)
    window = Window(start=date(2026, 1, 1), end=date(2026, 3, 31))
    master = await plans.create_master_plan(
        title="Q1", owner=LEAD, window=window, metrics=[MetricSpec(name="SQLs", target=500)], actor=LEAD
    )
    tactical = await plans.create_tactical_plan(master.id, title="Launch", owner=LEAD, window=window, actor=LEAD)
    email = await plans.add_task(tactical.id, title="Launch email", due_on=date(2026, 2, 9), owner=LEAD, actor=LEAD)
    segment = await plans.add_task(tactical.id, title="CFO segment", due_on=date(2026, 2, 9), owner=LEAD, actor=LEAD)
    factory = FakeAgentFactory(clock)
    delegator = Delegator(
        store, Vault([Vault.generate_key()]), kinds=lambda *_: {"fake": factory}, breaker_settings=SETTINGS
    )
    await delegator.registry(TENANT).register("fake", "crm", {"url": "https://crm.example/mcp"}, actor=LEAD)
    sqls = await plans.find_metric("SQLs")
    await MetricFeeds(store, TENANT).add(
        sqls, adapter="crm", capability="draft_email", field="sqls", unit="", every_minutes=5, actor=LEAD
    )
    agent = factory.agent("crm")
    agent.data = {"sqls": 21}
    await Approvals(store, TENANT).approvers.assign("leader", "aad-boss", actor=LEAD)
    yield Bot(store, clock, delegator, agent, (email.id, segment.id), sqls.id)
    await delegator.close()


async def held_then_approved(bot: Bot) -> int:
    """A delegation a rule flagged, held, then approved by the approver: its resume is a path to the agent."""
    await PolicySets(bot.store, TENANT).load({"rules": [CHECKED]}, actor=LEAD)
    held = await bot.delegate("create_segment", task=1)
    assert (await bot.status(held))[0] is DelegationStatus.HELD
    approvals = Approvals(bot.store, TENANT, record=DecisionLog(bot.store, TENANT).record)
    request = await approvals.for_delegation(held)
    assert request is not None
    await approvals.decide(request.id, approver="aad-boss", approve=True, authenticated=True)
    return held


async def test_one_no_delegation_rule_stops_every_path_to_an_agent_before_the_agent(bot: Bot) -> None:
    held = await held_then_approved(bot)
    await PolicySets(bot.store, TENANT).load({"rules": [FREEZE]}, actor=LEAD)
    stopped = "Stopped by policy: No agent acts during the audit."

    request = await Approvals(bot.store, TENANT).for_delegation(held)  # approved before the rule: it still stops
    assert request is not None
    assert await bot.delegator.resume(TENANT, held, request)
    await bot.delegator.drain()
    assert await bot.status(held) == (DelegationStatus.FAILED, stopped)
    typed = await bot.delegate()  # `delegate T1 to crm draft_email`: stored started, run at once
    assert await bot.status(typed) == (DelegationStatus.FAILED, stopped)
    await bot.run("retry_delegation", delegation=f"D{typed}")  # a person retries it
    assert await bot.status(typed) == (DelegationStatus.FAILED, stopped)
    queued = await bot.delegate(start=False)  # the tick runs what a stopped process left queued
    await bot.delegator.run_due(bot.clock.now)
    assert await bot.status(queued) == (DelegationStatus.FAILED, stopped)
    waiting = await bot.delegate(start=False)  # `adapter reset crm` starts what waited for the agent
    await bot.run("reset_adapter", name="crm")
    assert await bot.status(waiting) == (DelegationStatus.FAILED, stopped)
    assert await pull_metric_feeds(bot.store, bot.delegator, bot.clock.now) == (0, 1)  # the tick, `cos metrics pull`
    assert stopped in (await bot.feed_error() or "")
    with pytest.raises(DelegationStopped, match="No agent acts during the audit"):  # any caller to come
        await (await bot.delegator.registry(TENANT).open("crm")).delegate(DelegationRequest(capability="draft_email"))
    tested = await bot.run("test_adapter", name="crm")  # reads pass: `adapter test`, `cos adapters test`
    assert tested.ok

    assert bot.agent.calls == []
    stops = [e for e in await DecisionLog(bot.store, TENANT).entries() if e.action == "delegation.stop"]
    assert {e.subject for e in stops} == {
        *(f"delegation:{d}" for d in (typed, queued, waiting, held)),
        f"metric:{bot.sqls}",
        "agent:crm",
    }
    assert {e.rules for e in stops} == {("freeze",)}


async def test_an_open_circuit_stops_every_path_to_an_agent_without_calling_it(bot: Bot) -> None:
    held = await held_then_approved(bot)
    await PolicySets(bot.store, TENANT).load({"rules": []}, actor=LEAD)
    breakers = bot.delegator.breakers(TENANT)
    for _ in range(SETTINGS.failure_threshold):
        await breakers.failed("crm", "connection refused")
    assert (await breakers.state("crm")).state is CircuitState.OPEN

    request = await Approvals(bot.store, TENANT).for_delegation(held)
    assert request is not None
    assert await bot.delegator.resume(TENANT, held, request)
    await bot.delegator.drain()
    assert (await bot.status(held))[0] is DelegationStatus.DEFERRED
    typed = await bot.delegate()
    assert (await bot.status(typed))[0] is DelegationStatus.DEFERRED
    queued = await bot.delegate(start=False)
    await bot.delegator.run_due(bot.clock.now)
    assert (await bot.status(queued))[0] is DelegationStatus.DEFERRED
    await bot.run("cancel_delegation", delegation=f"D{queued}")
    await bot.run("retry_delegation", delegation=f"D{queued}")
    assert (await bot.status(queued))[0] is DelegationStatus.DEFERRED
    assert await pull_metric_feeds(bot.store, bot.delegator, bot.clock.now) == (0, 1)
    assert "'crm' failed repeatedly and is left alone for a while" in (await bot.feed_error() or "")
    with pytest.raises(CircuitOpen):
        await (await bot.delegator.registry(TENANT).open("crm")).delegate(DelegationRequest(capability="draft_email"))
    await bot.delegator.run_due(bot.clock.now + timedelta(minutes=5))  # within the cool-down: nothing is probed
    assert (await bot.run("test_adapter", name="crm")).ok  # reads pass through an open circuit

    assert bot.agent.calls == []
    assert (await breakers.state("crm")).state is CircuitState.OPEN


async def test_after_the_cool_down_a_health_check_not_a_pull_or_a_delegation_lets_calls_through_again(
    bot: Bot,
) -> None:
    breakers = bot.delegator.breakers(TENANT)
    for _ in range(SETTINGS.failure_threshold):
        await breakers.failed("crm", "connection refused")
    deferred = await bot.delegate()
    bot.agent.healthy = False
    bot.clock.advance(minutes=10)
    assert await pull_metric_feeds(bot.store, bot.delegator, bot.clock.now) == (0, 1)  # checked, still down
    assert bot.agent.calls == []
    bot.agent.healthy = True
    bot.clock.advance(minutes=10)
    assert await pull_metric_feeds(bot.store, bot.delegator, bot.clock.now) == (1, 0)  # checked, back: pulled
    [reading] = await Plans(bot.store, TENANT).readings(bot.sqls)
    assert reading.value == 21
    assert await bot.delegator.run_due(bot.clock.now) == 1
    assert (await bot.status(deferred))[0] is DelegationStatus.SUCCEEDED
    assert len(bot.agent.calls) == 2
