"""Tenant isolation: a user of tenant A names tenant B's plans, tasks, metrics, drafts, delegations, approvals and
decisions by id, typed and through card actions, and learns and changes nothing of them.

Ids are global (one sequence per table), so tenant B's objects are the only ones with those ids: every command of
tenant A below aims at them. Tenant A's user is even an admin (COS_ADMINS), which opens the admin commands too.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from bot.delegating import Delegator
from bot.http.context_events import PATH as EVENTS_PATH
from bot.sender import Sender
from bot.settings import Settings
from bot.teams.botbuilder import create_channel
from planner.domain.governance import Action, ActionKind, GateCategory, PolicyDecision, RuleMatch, Verdict
from planner.services.approvals import Approvals
from planner.services.context import ContextFacts, ContextSources, sign
from planner.services.decisions import DecisionLog
from planner.services.policy import PolicySets
from planner.store import Store
from planner.store.schema import drafts as drafts_table
from planner.store.vault import Vault
from tests.adapters.operator import LIMITS
from tests.adapters.vendor_agent import serve_in_process
from tests.bot.conftest import Running, TeamsUser
from tests.conftest import FakeClock
from tests.fakes.connector import FakeConnector
from tests.security.conftest import snapshot, start_bot_with, stop_bot

VAULT_KEY = Vault.generate_key()
TENANT_A = "tenant-a"
TENANT_B = "tenant-b"
B_WORDS = ("Confidential merger launch", "Board-only pricing email", "merger-pipeline")
"""Words that appear only in tenant B's objects: none may reach tenant A."""


@dataclass
class TenantB:
    master: int
    tactical: int
    task: int
    drafts: list[int]
    delegation: int
    approval: int
    decisions: list[int]


@pytest.fixture
async def bot(store: Store, connector: FakeConnector, clock: FakeClock) -> AsyncIterator[Running]:
    clock.now = datetime(2026, 1, 5, 9, tzinfo=UTC)
    sender = Sender(store, create_channel(Settings.from_env({})), worker="isolation")
    delegator = Delegator(store, Vault.from_setting(VAULT_KEY), deliver_now=sender.deliver, limits=LIMITS)
    env = {"COS_SECRET_KEYS": VAULT_KEY, "COS_ADMINS": "aad-a-lead,aad-b-lead"}
    running = await start_bot_with(store, connector, clock, env, delegator=delegator)
    yield running
    await stop_bot(running)
    await delegator.close()


def user_of(running: Running, tenant: str) -> TeamsUser:
    who = tenant.removeprefix("tenant-")
    return TeamsUser(
        running,
        user_id=f"aad-{who}-lead",
        name=f"Lead {who.upper()}",
        conversation_id=f"a:personal-{who}",
        tenant=tenant,
    )


async def tenant_b_builds_everything(running: Running, vendor_url: str) -> TenantB:
    """Tenant B, through its own Teams activities: plans, a task, a metric, drafts, a delegation, an approval."""
    lead = user_of(running, TENANT_B)
    assert (
        "P1 created" in (await lead.ask(f"new plan {B_WORDS[0]} from 2026-01-01 to 2026-03-31 kpi {B_WORDS[2]} 500"))[0]
    )
    assert (
        "P2 created"
        in (await lead.ask(f"tactical January from 2026-01-01 to 2026-01-31 in P1 kpi {B_WORDS[2]} 150"))[0]
    )
    assert "T1 added" in (await lead.ask(f"add task {B_WORDS[1]} to P2 due 2026-01-09 for me"))[0]
    await lead.ask(f"record {B_WORDS[2]} 140 in P2")
    await lead.ask("derive tactical P1")
    config = json.dumps({"transport": "http", "url": vendor_url})
    assert "registered" in (await lead.ask(f"adapter add mcp vendor {config}"))[0]
    assert "is on" in (await lead.ask("adapter enable vendor draft_email"))[0]
    assert (
        "delegated" in (await lead.ask('delegate T1 to vendor draft_email {"audience": "board", "topic": "merger"}'))[0]
    )
    await running.bot.drain()
    delegator = running.bot.delegator
    assert delegator is not None
    [delegation] = await delegator.delegations(TENANT_B).of_task(1)
    approvals = Approvals(running.store, TENANT_B, running.bot.clock, DecisionLog(running.store, TENANT_B).record)
    await approvals.approvers.assign("legal", "aad-b-approver", actor="aad-b-lead")
    request = await approvals.request(
        Action(
            tenant_id=TENANT_B,
            kind=ActionKind.DELEGATION,
            actor="aad-b-lead",
            agent="vendor",
            name="publish_landing_page",
            subject="task:1",
            attributes={"headline": B_WORDS[0]},
            categories=(GateCategory.REGULATED_CLAIM,),
        ),
        requester="aad-b-lead",
        reason=B_WORDS[1],
        resume={"operation": "set_task_status", "args": {"task": 1, "status": "done"}},
        policy=PolicyDecision(
            verdict=Verdict.FLAG, matched=(RuleMatch(rule_id="legal", verdict=Verdict.FLAG, reason="a claim"),)
        ),
    )
    async with running.store.engine.connect() as conn:
        drafts = list(
            (await conn.execute(select(drafts_table.c.id).where(drafts_table.c.tenant_id == TENANT_B))).scalars()
        )
    decisions = [decision.seq for decision in await DecisionLog(running.store, TENANT_B).entries()]
    assert drafts, "tenant B should have drafts to aim at"
    assert decisions, "tenant B should have decisions to aim at"
    return TenantB(
        master=1,
        tactical=2,
        task=1,
        drafts=drafts,
        delegation=delegation.id,
        approval=request.id,
        decisions=decisions,
    )


def typed_commands(b: TenantB) -> list[str]:
    """Every command that names an object by id, aimed at tenant B's objects."""
    draft = b.drafts[0]
    return [
        f"plan P{b.master}",
        f"plan P{b.tactical}",
        f"week P{b.tactical} 2026-W02",
        f"tactical Stolen from 2026-01-01 to 2026-01-31 in P{b.master}",
        f"derive tactical P{b.master}",
        f"add task Stolen to P{b.tactical} due 2026-01-09",
        f"assign T{b.task} to me",
        f"start T{b.task}",
        f"done T{b.task}",
        f"block T{b.task} because mine now",
        f"reopen T{b.task}",
        f"snooze T{b.task} 2 days",
        f"task T{b.task}",
        f"record {B_WORDS[2]} 999 in P{b.tactical}",
        f"record {B_WORDS[2]} 999",
        f"save draft {draft}",
        f"discard draft {draft}",
        f'delegate T{b.task} to vendor draft_email {{"topic": "x"}}',
        f"delegations T{b.task}",
        f"approve A{b.approval}",
        f"reject A{b.approval}",
        f"why T{b.task}",
        f"why P{b.master}",
        f"why D{b.delegation}",
        f"why A{b.approval}",
        *[f"decision {seq}" for seq in b.decisions[:5]],
        f"decisions T{b.task}",
        "decisions",
        "why was the email paused?",
        "outbox replay all",
        "outbox replay 1 2 3",
        "adapter test vendor",
        "adapter disable vendor",
        "adapter remove vendor",
        "plans",
        "my tasks",
        "approvals",
        "delegations",
        "adapters",
        "outbox",
        "triggers",
        "approvers",
        "policy",
        # Tenant A's own settings, written by its admin: they must land in tenant A only.
        'policy load {"rules": [{"id": "r1", "description": "No outbound.", "effect": "forbid"}]}',
        "approvers add legal me",
        "approvers map budget legal",
        "triggers set lead 2",
        "triggers off weekly",
    ]


def card_actions(b: TenantB) -> list[dict[str, Any]]:
    return [
        {"verb": "set_task_status", "task": b.task, "status": "done", "version": 1},
        {"verb": "snooze_task", "task": b.task, "hours": 24},
        {"verb": "show_plan", "plan": b.master},
        {"verb": "confirm_draft", "draft": b.drafts[0]},
        {"verb": "discard_draft", "draft": b.drafts[-1]},
        {"verb": "approve_request", "approval": b.approval},
        {"verb": "reject_request", "approval": b.approval},
        {"verb": "assign_task", "task": b.task, "owner": "me"},
        {"verb": "explain_decision", "decision": b.decisions[0]},
    ]


async def tenant_rows(store: Store, tenant: str) -> dict[str, list[tuple[str, ...]]]:
    """Every row of `tenant` in every table (each table has a tenant_id column)."""
    everything = await snapshot(store)
    marker = repr(tenant)
    return {name: [row for row in rows if marker in row] for name, rows in everything.items()}


def said(running: Running, since: int) -> str:
    return json.dumps([s.body for s in running.connector.sent[since:]], ensure_ascii=False)


async def test_a_user_of_another_tenant_can_neither_read_nor_change_anything_by_id(bot: Running) -> None:
    async with serve_in_process() as url:
        b = await tenant_b_builds_everything(bot, url)
        before = await tenant_rows(bot.store, TENANT_B)
        intruder = user_of(bot, TENANT_A)
        for command in typed_commands(b):
            since = len(bot.connector.sent)
            response = await intruder.say(command)
            assert response.status in (200, 201), command
            answer = said(bot, since)
            assert answer != "[]", f"no answer to {command!r}"
            for word in (w for w in B_WORDS if w not in command):  # its own words may be quoted back to it
                assert word not in answer, f"{command!r} showed tenant B's {word!r}: {answer[:300]}"
        for value in card_actions(b):
            since = len(bot.connector.sent)
            response = await intruder.post(intruder.activity(text=None, value=value))
            assert response.status in (200, 201), value
            answer = said(bot, since)
            for word in B_WORDS:
                assert word not in answer, f"card action {value} showed tenant B's {word!r}: {answer[:300]}"
        await bot.bot.drain()
        assert await tenant_rows(bot.store, TENANT_B) == before
        # Tenant A's admin did change tenant A: the writes were scoped, not refused.
        assert (await PolicySets(bot.store, TENANT_A).version(), await PolicySets(bot.store, TENANT_B).version()) == (
            1,
            0,
        )


async def test_the_same_commands_from_tenant_b_do_reach_its_objects(bot: Running) -> None:
    """The control: the ids above are real, so the refusals are isolation, not typos."""
    async with serve_in_process() as url:
        b = await tenant_b_builds_everything(bot, url)
        lead = user_of(bot, TENANT_B)
        [shown] = await lead.ask(f"task T{b.task}")
        assert B_WORDS[1] in shown or B_WORDS[1] in json.dumps(bot.connector.cards()[-1])
        [why] = await lead.ask(f"why D{b.delegation}")
        assert f"D{b.delegation}" in why or f"D{b.delegation}" in json.dumps(bot.connector.cards()[-1])
        before = await tenant_rows(bot.store, TENANT_B)
        await lead.ask(f"start T{b.task}")
        assert await tenant_rows(bot.store, TENANT_B) != before


async def test_a_context_source_of_one_tenant_cannot_post_into_another(bot: Running, clock: FakeClock) -> None:
    vault = Vault.from_setting(VAULT_KEY)
    secret_a = await ContextSources(bot.store, TENANT_A, vault).add("helpdesk", actor="aad-a-lead")
    await ContextSources(bot.store, TENANT_B, vault).add("helpdesk", actor="aad-b-lead")
    before = await tenant_rows(bot.store, TENANT_B)
    body = json.dumps(
        {"id": "evt-1", "type": "ticket_opened", "account": "acct-1", "at": clock.now.isoformat()}
    ).encode()
    url = bot.server.make_url(EVENTS_PATH)
    for tenant, status in ((TENANT_B, 401), (TENANT_A, 202)):
        headers = {"X-COS-Source": "helpdesk", "X-COS-Tenant": tenant, "X-COS-Signature": sign(secret_a, body)}
        async with bot.session.post(url, data=body, headers=headers) as response:
            assert response.status == status, tenant
    assert await tenant_rows(bot.store, TENANT_B) == before
    assert await ContextFacts(bot.store, TENANT_B).live(["acct-1"]) == []
    assert len(await ContextFacts(bot.store, TENANT_A).live(["acct-1"])) == 1
