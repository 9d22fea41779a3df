"""The gated agent on every backend: what the registry hands out passes the policy gate and the circuit breaker on
every call, whoever calls, and the agent behind it is untouched when either says no."""

from __future__ import annotations

from datetime import timedelta

import pytest

from planner.domain.circuits import BreakerSettings, CircuitState
from planner.domain.delegations import DelegationStatus
from planner.governance.gated_agent import CircuitOpen, DelegationStopped, GatedAgent
from planner.ports import AgentNotReached, AgentTimeout, AgentUnavailable, DelegationRequest
from planner.services.approvals import Approvals
from planner.services.breaker import Breakers
from planner.services.decisions import DecisionLog
from planner.services.policy import PolicySets
from planner.services.registry import Registry
from planner.store import Store
from planner.store.vault import Vault
from tests.conftest import FakeClock
from tests.fakes.agents import FakeAgentFactory, ScriptedAgent
from tests.saying import raises_saying

SETTINGS = BreakerSettings(failure_threshold=2, cool_down=timedelta(minutes=10))
DRAFT = DelegationRequest(capability="draft_email", input={"campaign": "spring"}, requested_by="aad-lead")


async def registry_of(store: Store, clock: FakeClock, *, grace: float = 5.0) -> tuple[Registry, ScriptedAgent]:
    factory = FakeAgentFactory(clock)
    registry = Registry(
        store,
        "contoso",
        vault=Vault([Vault.generate_key()]),
        kinds={"mcp": factory},
        breakers=Breakers(store, "contoso", SETTINGS),
        grace=timedelta(seconds=grace),
    )
    await registry.register("mcp", "hubspot", {"url": "https://crm.example/mcp"}, actor="aad-admin")
    return registry, factory.agent("hubspot")


async def test_the_registry_hands_out_only_gated_agents(store: Store, clock: FakeClock) -> None:
    registry, agent = await registry_of(store, clock)
    opened = await registry.open("hubspot")
    assert isinstance(opened, GatedAgent)
    assert (opened.kind, opened.name) == ("mcp", "hubspot")
    assert (await opened.delegate(DRAFT)).status is DelegationStatus.SUCCEEDED
    assert agent.calls == [DRAFT]
    await opened.close()
    assert agent.closed == 1


async def test_a_stop_rule_stops_a_direct_call_before_the_agent_and_the_log_says_so(
    store: Store, clock: FakeClock
) -> None:
    registry, agent = await registry_of(store, clock)
    freeze = {"id": "freeze", "description": "No agent acts during the audit", "effect": "forbid"}
    await PolicySets(store, "contoso").load({"rules": [freeze]}, actor="aad-admin")
    opened = await registry.open("hubspot")
    with pytest.raises(DelegationStopped, match="No agent acts during the audit"):
        await opened.delegate(DRAFT)
    assert agent.calls == []
    [entry] = await DecisionLog(store, "contoso").entries()
    assert (entry.action, entry.rules, entry.subject) == ("delegation.stop", ("freeze",), "agent:hubspot")
    assert entry.data["attributes"]["requested_by"] == "aad-lead"


async def test_a_flagged_call_that_carries_no_delegation_is_stopped_without_asking_anyone(
    store: Store, clock: FakeClock
) -> None:
    registry, agent = await registry_of(store, clock)
    await Approvals(store, "contoso").approvers.assign("leader", "aad-boss", actor="aad-admin")
    checked = {"id": "checked", "description": "Drafts are checked", "effect": "require", "actions": ["draft_email"]}
    await PolicySets(store, "contoso").load({"rules": [checked]}, actor="aad-admin")
    pull = DelegationRequest(capability="draft_email", requested_by="bot", subject="metric:4")
    with raises_saying(DelegationStopped, "only a delegation can wait for one"):
        await (await registry.open("hubspot")).delegate(pull)
    assert agent.calls == []
    assert await Approvals(store, "contoso").pending() == []
    [entry] = await DecisionLog(store, "contoso").entries()
    assert (entry.action, entry.subject) == ("delegation.flag", "metric:4")


async def test_an_open_circuit_refuses_at_once_without_touching_the_agent_and_a_health_check_reopens_the_way(
    store: Store, clock: FakeClock
) -> None:
    registry, agent = await registry_of(store, clock)
    agent.script = ["unavailable", "broken"]
    opened = await registry.open("hubspot")
    with pytest.raises(AgentNotReached):
        await opened.delegate(DRAFT)
    with pytest.raises(AgentUnavailable):
        await opened.delegate(DRAFT)
    assert (await registry.breakers.state("hubspot")).state is CircuitState.OPEN  # both counted
    with raises_saying(CircuitOpen, "'hubspot' failed repeatedly and is left alone for a while") as refused:
        await opened.delegate(DRAFT)
    assert isinstance(refused.value, AgentNotReached)  # it provably never left
    assert refused.value.retry_at == clock.now + SETTINGS.cool_down
    clock.advance(minutes=10)
    with pytest.raises(CircuitOpen):  # past the cool-down too: a call is never the probe
        await opened.delegate(DRAFT)
    assert len(agent.calls) == 2
    # Reads pass through, open circuit or not; the health check is the probe.
    assert [c.name for c in await opened.capabilities()] == ["draft_email", "create_segment"]
    await registry.breakers.check_health("hubspot", opened)
    assert (await opened.delegate(DRAFT)).status is DelegationStatus.SUCCEEDED
    assert len(agent.calls) == 3


async def test_any_answer_closes_the_count_of_failures(store: Store, clock: FakeClock) -> None:
    registry, agent = await registry_of(store, clock)
    agent.script = ["unavailable", "fail"]
    opened = await registry.open("hubspot")
    with pytest.raises(AgentNotReached):
        await opened.delegate(DRAFT)
    assert (await registry.breakers.state("hubspot")).failures == 1
    assert (await opened.delegate(DRAFT)).status is DelegationStatus.FAILED  # the agent said no: it is there
    assert (await registry.breakers.state("hubspot")).clean


async def test_a_call_that_hangs_is_cut_at_its_timeout_and_grace_and_counts_against_the_circuit(
    store: Store, clock: FakeClock
) -> None:
    registry, agent = await registry_of(store, clock, grace=0.0)
    agent.script = ["hang"]
    opened = await registry.open("hubspot")
    with pytest.raises(AgentTimeout, match=r"no answer within 0\.05 s"):
        await opened.delegate(DelegationRequest(capability="draft_email", timeout_seconds=0.05))
    assert (await registry.breakers.state("hubspot")).failures == 1


async def test_an_admission_lets_one_call_through(store: Store, clock: FakeClock) -> None:
    registry, agent = await registry_of(store, clock)
    admission = await (await registry.open("hubspot")).admit(DRAFT)
    assert agent.calls == []  # admitting calls nothing
    await admission.call()
    with pytest.raises(RuntimeError, match="admit the next call anew"):
        await admission.call()
    assert len(agent.calls) == 1
