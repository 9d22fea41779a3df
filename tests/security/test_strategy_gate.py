"""The strategy gate and the one policy gate of every operation, probed the way a member (or the model for one)
would try to get round them: a competing master plan, new targets, a self-made leader, the same operation asked
for another way, and an approval that would run as the approver."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from bot.llm import Assistant
from bot.operations import Caller, Context, default_registry
from bot.operations.base import ASSISTANT
from planner.domain.model import Tier
from planner.domain.triggers import TRIGGERS
from planner.services.approvals import Approvals
from planner.services.decisions import DecisionLog
from planner.services.plans import Plans
from planner.services.policy import PolicySets
from planner.services.tenants import Tenants
from planner.services.trigger_rules import TenantTriggerRules
from planner.store import Store
from planner.store.schema import outbox
from tests.bot.conftest import TENANT, Running, TeamsUser
from tests.conftest import FakeClock
from tests.fakes.connector import FakeConnector
from tests.security.conftest import start_bot_with, stop_bot

ADMIN = "aad-admin"


@pytest.fixture
async def running(store: Store, connector: FakeConnector, clock: FakeClock) -> AsyncIterator[Running]:
    clock.now = datetime(2026, 1, 5, 9, tzinfo=UTC)
    bot = await start_bot_with(store, connector, clock, {"COS_ADMINS": ADMIN})
    yield bot
    await stop_bot(bot)


def people(running: Running) -> tuple[TeamsUser, TeamsUser]:
    lead = TeamsUser(running, user_id="aad-lead", name="Lead", conversation_id="a:lead")
    member = TeamsUser(running, user_id="aad-member", name="Member", conversation_id="a:member")
    return lead, member


async def led_plan(running: Running) -> tuple[TeamsUser, TeamsUser]:
    """The lead has created the tenant's master plan P1 (with a KPI) and a tactical plan P2; the member said hello."""
    lead, member = people(running)
    [created] = await lead.ask("new plan 500 SQLs by March from 2026-01-01 to 2026-03-31 kpi SQLs 500")
    assert "Master plan P1 created" in created
    await lead.ask("tactical Launch from 2026-01-01 to 2026-01-31")
    await member.ask("help")
    return lead, member


def context(store: Store, user: str, *, by_model: bool = False, admin: bool = False) -> Context:
    caller = Caller(
        tenant_id=TENANT, user_id=user, name=user.removeprefix("aad-").title(), is_admin=admin, time_zone="UTC"
    )
    if by_model:
        caller = replace(caller, via=ASSISTANT, model="claude-test")
    return Context(Tenants(store), caller, clock=store.clock, record=DecisionLog(store, TENANT).record)


async def test_the_first_master_plan_is_anyones_and_its_creator_leads_it(running: Running) -> None:
    _, member = people(running)
    [created] = await member.ask("new plan 300 SQLs from 2026-01-01 to 2026-03-31")
    assert "Master plan P1 created" in created
    [master] = await Plans(running.store, TENANT).list_plans(Tier.MASTER)
    assert master.owner == "aad-member"
    [switched] = await member.ask("triggers off weekly")
    assert "Done: weekly is off" in switched


async def test_a_member_cannot_make_themselves_a_leader_with_a_competing_master_plan(running: Running) -> None:
    _, member = await led_plan(running)
    [held] = await member.ask("new plan 5 SQLs from 2026-01-01 to 2026-03-31 kpi SQLs 5")
    assert "needs approval first" in held
    assert "A1" in held
    assert [p.owner for p in await Plans(running.store, TENANT).list_plans(Tier.MASTER)] == ["aad-lead"]
    [request] = await Approvals(running.store, TENANT).pending()
    assert request.approvers == ("aad-lead",)  # the leader of the plan it competes with decides
    assert [c.value for c in request.categories] == ["strategy"]
    [refused] = await member.ask("triggers off weekly")
    assert "Only an admin or the owner of a master plan" in refused
    rules = await TenantTriggerRules(running.store).of(TENANT)
    assert rules.enabled == frozenset(TRIGGERS)


async def test_a_member_cannot_change_the_targets_but_the_leader_can(running: Running) -> None:
    lead, member = await led_plan(running)
    tenant = Plans(running.store, TENANT)
    [held] = await member.ask("set target SQLs 5")
    assert "needs approval first" in held
    [metric] = await tenant.list_metrics(1)
    assert metric.target == 500
    [again] = await member.ask("edit master north star 5 SQLs")
    assert "needs approval first" in again
    assert (await tenant.get_plan(1)).title == "500 SQLs by March"
    [changed] = await lead.ask("set target SQLs 600")
    assert "P1 changed: SQLs target 600" in changed
    assert (await tenant.list_metrics(1))[0].target == 600


async def test_an_approved_strategy_change_runs_as_the_member_who_asked_and_both_hear(running: Running) -> None:
    lead, member = await led_plan(running)
    await member.ask("new plan Partner pipeline from 2026-01-01 to 2026-03-31")
    before = len(running.connector.sent)
    [approved] = await lead.ask("approve A1 good idea")
    assert "Master plan P3 created" in approved or "Master plan P3 created" in json_of(running, before)
    masters = await Plans(running.store, TENANT).list_plans(Tier.MASTER)
    # "owner: me" is the member who asked, not the leader who approved.
    assert [(p.title, p.owner) for p in masters] == [
        ("500 SQLs by March", "aad-lead"),
        ("Partner pipeline", "aad-member"),
    ]
    async with running.store.engine.connect() as conn:
        notices = (await conn.execute(select(outbox).where(outbox.c.kind == "notice"))).all()
    assert [(n.recipient, n.payload["text"].split(":")[0]) for n in notices] == [
        ("aad-member", "A1 was approved, and what it held has now run")
    ]


def json_of(running: Running, since: int) -> str:
    return " ".join(str(s.body) for s in running.connector.sent[since:])


async def test_an_approved_flagged_operation_runs_as_the_person_who_asked_not_the_approver(running: Running) -> None:
    lead, member = await led_plan(running)
    rule = {"id": "tasks-checked", "description": "New tasks are checked", "effect": "require", "actions": ["add_task"]}
    await PolicySets(running.store, TENANT).load({"rules": [rule]}, actor=ADMIN)
    await Approvals(running.store, TENANT).approvers.assign("leader", "aad-lead", actor=ADMIN)
    [held] = await member.ask("add task Draft the email to P2 due 2026-01-20 for me")
    assert "New tasks are checked" in held
    assert await Plans(running.store, TENANT).list_tasks(2) == []
    await lead.ask("approve A1")
    [task] = await Plans(running.store, TENANT).list_tasks(2)
    assert (task.title, task.owner) == ("Draft the email", "aad-member")


async def test_typed_and_model_calls_of_the_same_operation_get_the_same_verdict(running: Running) -> None:
    await led_plan(running)
    store = running.store
    await Approvals(store, TENANT).approvers.assign("leader", "aad-lead", actor=ADMIN)
    rule = {"id": "tasks-checked", "description": "New tasks are checked", "effect": "require", "actions": ["add_task"]}
    await PolicySets(store, TENANT).load({"rules": [rule]}, actor=ADMIN)
    registry = default_registry()
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("add_task", {"title": "Brief", "plan": "P2", "due": "2026-01-20"}, "aad-member"),
        ("edit_master_plan", {"targets": [{"name": "SQLs", "target": 5}]}, "aad-member"),
        ("create_master_plan", {"title": "Rival", "start": "2026-01-01", "end": "2026-03-31"}, "aad-member"),
    ]
    for name, args, user in cases:
        typed = await registry.run(name, context(store, user), args)
        called = await registry.run(name, context(store, user, by_model=True), args)
        assert "needs approval first" in typed.text, (name, typed.text)
        assert "needs approval first" in called.text, (name, called.text)
    requests = await Approvals(store, TENANT).pending()
    by_operation: dict[str, list[tuple[Any, ...]]] = {}
    for request in requests:
        action = request.action
        summary = (action.categories, request.rules, action.kind, json.dumps(action.attributes, sort_keys=True))
        by_operation.setdefault(action.name, []).append(summary)
    assert {name: len(set(found)) for name, found in by_operation.items()} == {
        "add_task": 1,
        "edit_master_plan": 1,
        "create_master_plan": 1,
    }
    assert {r.action.actor for r in requests} == {"aad-member", "llm"}
    # The leader in person changes the strategy; the model, even for the leader, waits for one.
    mine = await registry.run(
        "edit_master_plan", context(store, "aad-lead"), {"targets": [{"name": "SQLs", "target": 9}]}
    )
    assert "P1 changed" in mine.text
    model = context(store, "aad-lead", by_model=True)
    proposed = await registry.run("edit_master_plan", model, {"targets": [{"name": "SQLs", "target": 8}]})
    assert "needs approval first" in proposed.text
    [confirm] = [r for r in await Approvals(store, TENANT).pending() if r.requester == "aad-lead"]
    assert "aad-lead" in confirm.approvers  # the leader confirms what the model proposed for them


async def test_one_stop_everything_rule_stops_every_operation_typed_and_as_a_tool_call(running: Running) -> None:
    await led_plan(running)
    store = running.store
    freeze = {"id": "freeze", "description": "Everything is frozen for the audit", "effect": "forbid"}
    await PolicySets(store, TENANT).load({"rules": [freeze]}, actor=ADMIN)
    registry = default_registry()
    assistant = Assistant(None, registry, model="claude-test")  # type: ignore[arg-type]
    person = context(store, ADMIN, admin=True)
    model = person.acting_as(replace(person.caller, via=ASSISTANT, model="claude-test"))
    names = [operation.name for operation in registry]
    assert len(names) > 40
    for name in names:
        typed = await registry.run(name, person, {"plan": "P1"} if name == "edit_master_plan" else {})
        assert not typed.ok, name
        assert "Everything is frozen for the audit" in typed.text, (name, typed.text)
        called = await assistant._run_tool(model, name, {"plan": "P1"} if name == "edit_master_plan" else {})
        assert not called.ok, (name, called.text)
        assert "Everything is frozen for the audit" in called.text or f"no tool {name!r}" in called.text, name
    stops = [e for e in await DecisionLog(store, TENANT).entries() if e.verdict == "stop"]
    assert {e.data["operation"] for e in stops} == set(names)
