"""KPI readings from outside the chat: units checked, events validated whole, feeds pulled from an agent on their
schedule, and every reading idempotent by (metric, time, source)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from adapters import adapter_kinds
from bot.text.errors import describe_plain
from bot.text.problems import describe_problem
from planner.domain.circuits import BreakerSettings, CircuitState
from planner.domain.delegations import DelegationStatus
from planner.domain.errors import MetricNotFound
from planner.domain.ingestion import InvalidMetricEvent, UnitMismatch, check_unit, parse_metric_events
from planner.domain.model import MetricSpec, Window
from planner.domain.problems import Problem, ProblemCode
from planner.governance.gated_agent import GatedAgent
from planner.ports import (
    Agent,
    AgentHealth,
    AgentUnavailable,
    Capability,
    DelegationRequest,
    DelegationResult,
    HumanChannel,
)
from planner.services.approvals import Approvals
from planner.services.breaker import Breakers
from planner.services.budgets import Budgets
from planner.services.decisions import DecisionLog
from planner.services.ingestion import (
    MetricEvents,
    MetricFeeds,
    ReplayedMetricEvent,
    StaleMetricEvent,
    pull_due,
    purge_event_ids,
)
from planner.services.plans import Plans
from planner.services.policy import PolicySets
from planner.services.registry import Registry
from planner.store import Store
from planner.store.budgets import money_of
from planner.store.vault import Vault
from tests.adapters import vendor_agent
from tests.adapters.operator import LIMITS
from tests.adapters.vendor_agent import serve_in_process
from tests.conftest import FakeClock

TENANT = "tenant-contoso"


class CampaignMetrics(Agent):
    """A vendor agent answering `get_campaign_metrics` with the figures the test sets."""

    kind = "fake"

    def __init__(self, data: dict[str, Any]) -> None:
        self.name = "hubspot"
        self.data = data
        self.down = False
        self.calls: list[DelegationRequest] = []

    async def capabilities(self) -> list[Capability]:
        return [Capability(name="get_campaign_metrics")]

    async def delegate(self, request: DelegationRequest, *, human: HumanChannel | None = None) -> DelegationResult:
        self.calls.append(request)
        if self.down:
            raise AgentUnavailable(self.name, "connection refused")
        now = datetime(2026, 2, 15, tzinfo=UTC)
        return DelegationResult(status=DelegationStatus.SUCCEEDED, data=self.data, started_at=now, finished_at=now)

    async def health(self) -> AgentHealth:
        return AgentHealth(ok=not self.down)


class Serving:
    """The `fake` adapter kind, whose agent is the test's."""

    secret_fields = frozenset[str]()

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return dict(config)

    def build(self, name: str, config: Mapping[str, Any]) -> Agent:
        return self.agent


async def hubspot_serving(store: Store, agent: Agent, breakers: Breakers | None = None) -> Registry:
    """The tenant's registry with the adapter `hubspot`, whose agent is `agent` (handed out gated, as every agent)."""
    registry = Registry(
        store, TENANT, vault=Vault([Vault.generate_key()]), kinds={"fake": Serving(agent)}, breakers=breakers
    )
    await registry.register("fake", "hubspot", {}, actor="aad-admin")
    return registry


async def plan_with_kpis(store: Store) -> None:
    await Plans(store, TENANT).create_master_plan(
        title="Q1 pipeline",
        owner="aad-lead",
        window=Window(start=date(2026, 1, 1), end=date(2026, 3, 31)),
        metrics=[MetricSpec(name="SQLs", target=500), MetricSpec(name="Win rate", target=30, unit="%", baseline=20)],
        actor="aad-lead",
    )


def test_units_are_compared_loosely_but_never_ignored() -> None:
    from tests.planner.test_measurement import COST, SQLS

    check_unit(SQLS, "SQL")  # a unitless metric takes its own name
    check_unit(SQLS, "")
    percent = COST.__class__(**{**COST.__dict__, "unit": "%"})
    check_unit(percent, "percent")
    with pytest.raises(UnitMismatch, match="Cost per lead is counted in %, not 'EUR'"):
        check_unit(percent, "EUR")
    with pytest.raises(UnitMismatch):
        check_unit(SQLS, "MQL")


def test_a_bad_event_is_refused_with_every_problem_named() -> None:
    with pytest.raises(InvalidMetricEvent) as refused:
        parse_metric_events([{"metric": "", "value": "many", "at": "yesterday", "colour": "red"}])
    problems = [describe_problem(problem) for problem in refused.value.problems]
    assert any(p.startswith("[0].id: the event's id") for p in problems)
    assert any(p.startswith("[0].sent_at: expected an ISO 8601 time") for p in problems)
    with pytest.raises(InvalidMetricEvent) as twice:
        parse_metric_events([posted(metric="SQLs", value=1, unit="", at="2026-02-15T12:00:00Z", id="a")] * 2)
    assert twice.value.problems == [Problem(ProblemCode.GIVEN_TWICE, "[1].id", value="a")]
    assert "[0].colour: not a field here; fields: id, sent_at, metric, value, unit, at, plan" in problems
    assert "[0].metric: the KPI's name, such as SQLs" in problems
    assert "[0].value: a finite number" in problems
    assert any(p.startswith("[0].unit:") for p in problems)
    assert '[0].at: "yesterday" is not an ISO 8601 time such as 2026-01-05T09:00:00Z' in problems


_ids = iter(range(1, 1000))


def posted(**reading: Any) -> dict[str, Any]:
    """A metric event as a source sends it: a new id, sent now (the test clock's), and the reading."""
    return {"id": f"evt-{next(_ids)}", "sent_at": "2026-01-05T09:00:00+00:00", **reading}


async def test_posted_events_are_stored_once_and_a_wrong_unit_stores_nothing(store: Store, clock: FakeClock) -> None:
    await plan_with_kpis(store)
    events = MetricEvents(store, TENANT)
    body = [
        posted(metric="SQLs", value=140, unit="SQL", at="2026-02-15T12:00:00Z"),
        posted(metric="win rate", value=24.5, unit="%", at="2026-02-15T12:00:00Z"),
    ]
    stored = await events.post("crm", parse_metric_events(body))
    # The same readings again under new ids (a source resending its figures) are stored once.
    again = await events.post("crm", parse_metric_events([{**e, "id": e["id"] + "-resent"} for e in body]))
    assert [r.id for r in stored] == [r.id for r in again]
    sqls = await Plans(store, TENANT).find_metric("SQLs")
    [reading] = await Plans(store, TENANT).readings(sqls.id)
    assert (reading.value, reading.source, reading.at) == (140, "event:crm", datetime(2026, 2, 15, 12, tzinfo=UTC))
    with pytest.raises(UnitMismatch):
        await events.post(
            "crm",
            parse_metric_events(
                [
                    posted(metric="SQLs", value=150, unit="SQL", at="2026-02-16T12:00:00Z"),
                    posted(metric="Win rate", value=0.25, unit="ratio", at="2026-02-16T12:00:00Z"),
                ]
            ),
        )
    with pytest.raises(MetricNotFound):
        await events.post(
            "crm", parse_metric_events(posted(metric="MQLs", value=1, unit="", at="2026-02-16T12:00:00Z"))
        )
    assert len(await Plans(store, TENANT).readings(sqls.id)) == 1


async def test_an_event_for_a_kpi_tactical_plans_share_is_one_reading_of_it(store: Store, clock: FakeClock) -> None:
    await plan_with_kpis(store)
    plans = Plans(store, TENANT)
    [master] = await plans.list_plans()
    february = await plans.create_tactical_plan(
        master.id,
        title="February",
        owner="aad-lead",
        window=Window(start=date(2026, 2, 1), end=date(2026, 2, 28)),
        metrics=[MetricSpec(name="SQLs", target=170)],
        actor="aad-lead",
    )
    events = MetricEvents(store, TENANT)
    by_name = posted(metric="SQLs", value=140, unit="SQL", at="2026-02-15T12:00:00Z")
    in_plan = posted(metric="SQLs", value=150, unit="SQL", at="2026-02-16T12:00:00Z", plan=february.id)
    stored = await events.post("crm", parse_metric_events([by_name, in_plan]))
    kpi = await plans.find_metric("SQLs")
    assert kpi.plan_id == master.id
    assert [r.metric_id for r in stored] == [kpi.id, kpi.id]
    node = (await plans.rollup(master.id, date(2026, 2, 16))).find(february.id)
    assert node is not None
    # February counts what came in since it opened: the KPI's value on 1 February lies on the line from its baseline
    # (0 on the master's first day, 1 January) to the 140 read on 15 February at noon.
    opened = 140 * 31 / 45.5
    assert node.metrics[0].actual == pytest.approx(150 - opened)


async def test_a_replayed_event_cannot_undo_a_correction_and_a_stale_one_is_refused(
    store: Store, clock: FakeClock
) -> None:
    await plan_with_kpis(store)
    events = MetricEvents(store, TENANT)
    first = posted(metric="SQLs", value=140, unit="SQL", at="2026-02-15T12:00:00Z")
    correction = posted(metric="SQLs", value=145, unit="SQL", at="2026-02-15T12:00:00Z")
    await events.post("crm", parse_metric_events(first))
    await events.post("crm", parse_metric_events(correction))
    # Someone who captured the first signed body posts it again, alone or with a new event: nothing is stored.
    with pytest.raises(ReplayedMetricEvent, match="evt-"):
        await events.post("crm", parse_metric_events(first))
    fresh = posted(metric="SQLs", value=150, unit="SQL", at="2026-02-16T12:00:00Z")
    with pytest.raises(ReplayedMetricEvent):
        await events.post("crm", parse_metric_events([fresh, first]))
    sqls = await Plans(store, TENANT).find_metric("SQLs")
    assert [r.value for r in await Plans(store, TENANT).readings(sqls.id)] == [145]
    # Another source may use the same id; an event sent long ago is refused whatever its id.
    await events.post("web", parse_metric_events({**first, "value": 141}))
    clock.advance(minutes=6)
    with pytest.raises(StaleMetricEvent, match="more than 5 minutes"):
        await events.post(
            "crm", parse_metric_events(posted(metric="SQLs", value=1, unit="SQL", at="2026-02-17T00:00:00Z"))
        )
    # Ids are kept only while they could pass the freshness check.
    assert await purge_event_ids(store, clock.now) == 0
    clock.advance(minutes=5)
    assert await purge_event_ids(store, clock.now) == 3


async def test_a_feed_is_pulled_on_its_schedule_and_keeps_its_error_when_the_agent_is_down(
    store: Store, clock: FakeClock
) -> None:
    await plan_with_kpis(store)
    plans = Plans(store, TENANT)
    sqls = await plans.find_metric("SQLs")
    agent = CampaignMetrics({"campaign": "abm-q1", "sqls": 21, "as_of": "2026-02-15T00:00:00Z"})
    feeds = MetricFeeds(store, TENANT)
    with pytest.raises(UnitMismatch):
        await feeds.add(sqls, adapter="hubspot", capability="get_campaign_metrics", field="sqls", unit="€", actor="a")
    feed = await feeds.add(
        sqls,
        adapter="hubspot",
        capability="get_campaign_metrics",
        input={"campaign": "abm-q1"},
        field="sqls",
        unit="SQLs",
        every_minutes=60,
        actor="aad-admin",
    )
    opened: list[tuple[str, str]] = []
    registry = await hubspot_serving(store, agent)

    async def open_agent(tenant_id: str, name: str) -> GatedAgent:
        opened.append((tenant_id, name))
        return await registry.open(name)

    clock.now = datetime(2026, 2, 15, 9, tzinfo=UTC)
    assert await pull_due(store, open_agent, clock.now) == (1, 0)
    assert await pull_due(store, open_agent, clock.now) == (0, 0)  # not due again for an hour
    assert opened == [(TENANT, "hubspot")]
    assert agent.calls[0].input == {"campaign": "abm-q1"}
    [reading] = await plans.readings(sqls.id)
    assert (reading.value, reading.source, reading.at) == (21, "adapter:hubspot", datetime(2026, 2, 15, tzinfo=UTC))
    clock.advance(hours=1)
    assert await pull_due(store, open_agent, clock.now) == (1, 0)  # the same figure as of the same time: stored once
    assert len(await plans.readings(sqls.id)) == 1
    agent.down = True
    clock.advance(hours=1)
    assert await pull_due(store, open_agent, clock.now) == (0, 1)
    [listed] = await feeds.list_feeds()
    assert listed.id == feed.id
    assert listed.last_error == "agent 'hubspot' is unavailable: connection refused"
    assert listed.last_pulled_at == clock.now
    agent.down = False
    agent.data = {"sqls": 30}
    clock.advance(hours=1)
    assert await pull_due(store, open_agent, clock.now) == (1, 0)
    latest = (await plans.readings(sqls.id))[-1]
    assert (latest.value, latest.at) == (30, clock.now)
    assert (await feeds.list_feeds())[0].last_error is None


async def test_a_pull_the_policy_forbids_is_not_made_and_the_log_says_which_rule(
    store: Store, clock: FakeClock
) -> None:
    await plan_with_kpis(store)
    rules = """
rules:
  - id: no-hubspot-reads
    description: HubSpot's reporting API is off limits during the migration.
    effect: forbid
    agents: [hubspot]
    actions: [get_campaign_metrics]
"""
    await PolicySets(store, TENANT).load(rules, actor="aad-admin")
    sqls = await Plans(store, TENANT).find_metric("SQLs")
    feeds = MetricFeeds(store, TENANT)
    await feeds.add(sqls, adapter="hubspot", capability="get_campaign_metrics", field="sqls", unit="", actor="a")
    agent = CampaignMetrics({"sqls": 21})
    registry = await hubspot_serving(store, agent)

    async def open_agent(tenant_id: str, name: str) -> GatedAgent:
        return await registry.open(name)

    assert await pull_due(store, open_agent, clock.now, explain=describe_plain) == (0, 1)  # as bot/scheduler.py
    assert agent.calls == []
    [feed] = await feeds.list_feeds()
    assert feed.last_error is not None
    assert "policy does not let the bot call hubspot get_campaign_metrics on its own" in feed.last_error
    assert "HubSpot's reporting API is off limits during the migration" in feed.last_error
    [entry] = await DecisionLog(store, TENANT).entries()
    assert (entry.action, entry.rules, entry.subject, entry.data["attributes"]["requested_by"]) == (
        "delegation.stop",
        ("no-hubspot-reads",),
        f"metric:{sqls.id}",
        "bot",
    )


async def test_a_pull_a_rule_flags_is_not_made_and_nobody_is_asked_to_approve_it(
    store: Store, clock: FakeClock
) -> None:
    await plan_with_kpis(store)
    await Approvals(store, TENANT).approvers.assign("leader", "aad-boss", actor="aad-admin")
    checked = {"id": "checked", "description": "Every HubSpot call is checked", "effect": "require"}
    await PolicySets(store, TENANT).load({"rules": [checked]}, actor="aad-admin")
    sqls = await Plans(store, TENANT).find_metric("SQLs")
    feeds = MetricFeeds(store, TENANT)
    await feeds.add(sqls, adapter="hubspot", capability="get_campaign_metrics", field="sqls", unit="", actor="a")
    agent = CampaignMetrics({"sqls": 21})
    registry = await hubspot_serving(store, agent)

    async def open_agent(tenant_id: str, name: str) -> GatedAgent:
        return await registry.open(name)

    assert await pull_due(store, open_agent, clock.now) == (0, 1)
    assert agent.calls == []
    assert await Approvals(store, TENANT).pending() == []  # a pull on a schedule cannot wait for one
    [feed] = await feeds.list_feeds()
    assert "Every HubSpot call is checked" in (feed.last_error or "")
    assert [e.action for e in await DecisionLog(store, TENANT).entries()] == ["delegation.flag"]


async def test_pulls_that_cannot_reach_the_agent_open_its_circuit_and_then_wait_without_calling_it(
    store: Store, clock: FakeClock
) -> None:
    await plan_with_kpis(store)
    sqls = await Plans(store, TENANT).find_metric("SQLs")
    feeds = MetricFeeds(store, TENANT)
    await feeds.add(
        sqls, adapter="hubspot", capability="get_campaign_metrics", field="sqls", unit="", every_minutes=5, actor="a"
    )
    agent = CampaignMetrics({"sqls": 21})
    agent.down = True
    breakers = Breakers(store, TENANT, BreakerSettings(failure_threshold=2, cool_down=timedelta(minutes=30)))
    registry = await hubspot_serving(store, agent, breakers)

    async def open_agent(tenant_id: str, name: str) -> GatedAgent:
        return await registry.open(name)

    for _ in range(3):
        assert await pull_due(store, open_agent, clock.now, explain=describe_plain) == (0, 1)
        clock.advance(minutes=5)
    assert len(agent.calls) == 2  # the third pull found the circuit open
    assert (await breakers.state("hubspot")).state is CircuitState.OPEN
    [feed] = await feeds.list_feeds()
    assert "'hubspot' failed repeatedly and is left alone for a while" in (feed.last_error or "")


async def test_a_spend_feed_records_what_the_agents_total_rose_by_as_the_plans_spend_through_the_gate(
    store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real MCP server on loopback answers `campaign_spend`; the feed records each rise of its total as spend."""
    clock.now = datetime(2026, 2, 15, 9, tzinfo=UTC)
    plans = Plans(store, TENANT)
    master = await plans.create_master_plan(
        title="Q1 pipeline",
        owner="aad-lead",
        window=Window(start=date(2026, 1, 1), end=date(2026, 3, 31)),
        metrics=[MetricSpec(name="Paid spend", target=50_000, unit="EUR")],
        actor="aad-lead",
    )
    budgets = Budgets(store, TENANT)
    await budgets.set_budget(master.id, 100_000 * 100, "EUR", actor="aad-lead")
    spend_metric = await plans.find_metric("Paid spend")
    feeds = MetricFeeds(store, TENANT, explain=describe_plain)
    await feeds.add(
        spend_metric,
        adapter="vendor",
        capability="campaign_spend",
        input={"campaign": "abm-q1"},
        field="spent",
        unit="EUR",
        spend=True,
        actor="aad-admin",
    )
    monkeypatch.setitem(vendor_agent.SPEND, "abm-q1", 4200.0)
    vault = Vault([Vault.generate_key()])
    registry = Registry(store, TENANT, vault=vault, kinds=adapter_kinds(store, TENANT, vault, limits=LIMITS))

    async def open_agent(tenant_id: str, name: str) -> GatedAgent:
        return await registry.open(name)

    async def spent() -> list[tuple[int, str, str]]:
        async with store.read() as conn:
            return [(s.amount, s.currency, s.source) for s in (await money_of(conn, TENANT, [master.id]))[1][master.id]]

    async with serve_in_process() as url:
        await registry.register("mcp", "vendor", {"transport": "http", "url": url}, actor="aad-admin")
        await registry.enable_tool("vendor", "campaign_spend", actor="aad-admin")  # an admin vets each tool
        assert await pull_due(store, open_agent, clock.now) == (1, 0)
        assert await spent() == [(420_000, "EUR", "feed:1")]
        clock.advance(hours=1)
        assert await pull_due(store, open_agent, clock.now) == (1, 0)  # the same total: no spend twice
        monkeypatch.setitem(vendor_agent.SPEND, "abm-q1", 5000.25)
        clock.advance(hours=1)
        assert await pull_due(store, open_agent, clock.now) == (1, 0)
        assert await spent() == [(420_000, "EUR", "feed:1"), (80_025, "EUR", "feed:1")]
        assert [r.value for r in await plans.readings(spend_metric.id)][-1] == 5000.25
        # A total lower than the feed recorded is refused and kept as the feed's error; nothing is recorded.
        monkeypatch.setitem(vendor_agent.SPEND, "abm-q1", 100.0)
        clock.advance(hours=1)
        assert await pull_due(store, open_agent, clock.now, explain=describe_plain) == (0, 1)
        assert len(await spent()) == 2
        assert "no less than the 5,000.25 recorded from it" in ((await feeds.list_feeds())[0].last_error or "")
        # The same gate as any pull: a rule that forbids the tool stops it before it reaches the agent.
        forbid = {
            "id": "no-spend-reads",
            "description": "No spend reads",
            "effect": "forbid",
            "actions": ["campaign_spend"],
        }
        await PolicySets(store, TENANT).load({"rules": [forbid]}, actor="aad-admin")
        monkeypatch.setitem(vendor_agent.SPEND, "abm-q1", 6000.0)
        clock.advance(hours=1)
        assert await pull_due(store, open_agent, clock.now, explain=describe_plain) == (0, 1)
        assert len(await spent()) == 2
        assert "No spend reads" in ((await feeds.list_feeds())[0].last_error or "")
