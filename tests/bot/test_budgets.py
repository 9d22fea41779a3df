"""Budgets in Teams: a leader sets the budget and allocations, spend is recorded in chat and by signed events, the
plan card shows allocation against spend and pace, and a budget shift waits for the budget gate's approvers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest

from bot.cards.approval import approval_card
from bot.cards.budget import budget_line, budget_section
from bot.cards.elements import adaptive_card
from bot.http.spend_events import PATH as SPEND_PATH
from bot.operations import default_registry
from bot.operations.base import Caller, Context
from bot.operations.budgets import OPERATIONS
from planner.domain.budgets import Budget, BudgetPace, BudgetStatus
from planner.domain.governance import ActionKind, GateCategory
from planner.domain.model import Window
from planner.services.approvals import Approvals
from planner.services.budgets import Budgets
from planner.services.context import ContextSources, sign
from planner.services.tenants import Tenants
from planner.store import Store
from planner.store.vault import Vault
from tests.bot.cards.test_cards import all_text, schema_errors
from tests.bot.conftest import TENANT, Running, TeamsUser
from tests.bot.test_context_events import serve
from tests.conftest import FakeClock
from tests.fakes.connector import FakeConnector
from tests.security.conftest import start_bot_with, stop_bot

ADMIN = "aad-admin"
KEY = Vault.generate_key()


@pytest.fixture
async def running(store: Store, connector: FakeConnector, clock: FakeClock) -> AsyncIterator[Running]:
    clock.now = datetime(2026, 1, 17, 9, tzinfo=UTC)
    bot = await start_bot_with(store, connector, clock, {"COS_ADMINS": ADMIN})
    yield bot
    await stop_bot(bot)


def people(running: Running) -> tuple[TeamsUser, TeamsUser, TeamsUser]:
    lead = TeamsUser(running, user_id="aad-lead", name="Lead", conversation_id="a:lead")
    member = TeamsUser(running, user_id="aad-member", name="Member", conversation_id="a:member")
    finance = TeamsUser(running, user_id="aad-cfo", name="Finance", conversation_id="a:cfo")
    return lead, member, finance


async def budgeted(running: Running) -> tuple[TeamsUser, TeamsUser, TeamsUser]:
    """P1 a Q1 master plan with a 250k USD budget; P2 (January) allocated 60k USD; P3 (February) none; a finance
    approver for the budget gate."""
    lead, member, finance = people(running)
    await lead.ask("new plan 500 SQLs by March from 2026-01-01 to 2026-03-31 kpi SQLs 500")
    await lead.ask("tactical January from 2026-01-01 to 2026-01-31")
    await lead.ask("tactical February from 2026-02-01 to 2026-02-28")
    [budget] = await lead.ask("budget P1 250k USD")
    assert "P1's budget is $250,000" in budget
    [allocated] = await lead.ask("allocate 60k USD to P2")
    assert "P2 is allocated $60,000; $190,000 of P1's budget is left to allocate" in allocated
    await Approvals(running.store, TENANT).approvers.assign("finance", "aad-cfo", actor=ADMIN)
    await member.ask("help")
    await finance.ask("help")
    return lead, member, finance


async def allocation(running: Running, plan_id: int) -> int | None:
    found = await Budgets(running.store, TENANT).budget_of(plan_id)
    return found.amount // 100 if found is not None else None


def test_every_budget_operation_declares_its_kind_and_gates() -> None:
    declared = {op.name: (op.kind, op.categories, op.shifts is not None) for op in OPERATIONS}
    assert declared == {
        "set_budget": (ActionKind.PLAN_CHANGE, (GateCategory.STRATEGY,), False),
        "allocate_budget": (ActionKind.PLAN_CHANGE, (GateCategory.BUDGET,), True),
        "move_budget": (ActionKind.PLAN_CHANGE, (GateCategory.BUDGET,), True),
        "record_spend": (ActionKind.PLAN_CHANGE, (), False),
    }


def test_the_budget_line_reads_like_an_exec_update() -> None:
    budget = Budget(
        id=1,
        tenant_id=TENANT,
        plan_id=2,
        amount=6_000_000,
        currency="USD",
        version=1,
        updated_by="x",
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    status = BudgetStatus(
        plan_id=2, budget=budget, currency="USD", spent=4_200_000, window_gone=0.55, pace=BudgetPace.AHEAD
    )
    assert budget_line(status) == ("Budget: $42,000 of $60,000 spent (70 %), 55 % of the window gone — ahead of pace")
    big = BudgetStatus(
        plan_id=2,
        budget=budget,
        currency="USD",
        spent=145_652_050,
        window_gone=0.5,
        pace=BudgetPace.OVER,
    )
    assert "$1,456,520.50 of $60,000" in budget_line(big)
    card = adaptive_card(budget_section(status))
    assert schema_errors(card) == []


async def test_a_leader_budgets_allocates_records_spend_and_the_plan_card_shows_pace(running: Running) -> None:
    lead, _, _ = await budgeted(running)
    [over] = await lead.ask("allocate 200k USD to P3")
    assert "$190,000 is left to allocate" in over
    assert "Usage" not in over  # the command was well written: the reason is all there is to say
    [unwritten] = await lead.ask("allocate to P3")
    assert unwritten == "Allocate how much to which plan? `allocate 60k USD to P2`."  # the example, said once
    assert await allocation(running, 3) is None
    [spent] = await lead.ask("spend 12k USD on P2")
    assert "Recorded $12,000 spent on P2." in spent
    [backdated] = await lead.ask("spend P2 30,000 USD on 2026-01-05")
    assert "Recorded $30,000 spent on P2 on Mon 5 Jan 2026" in backdated
    # 17 of January's 31 days are gone: 55 %; 42,000 of 60,000 is 70 %.
    assert "Budget: $42,000 of $60,000 spent (70 %), 55 % of the window gone — ahead of pace" in backdated
    [refused] = await lead.ask("spend 5k EUR on P2")
    assert "P2's budget is in 'USD', not 'EUR'" in refused
    [future] = await lead.ask("spend 5k USD on P2 on 2026-01-30")
    assert "spend date" in future
    before = len(running.connector.sent)
    await lead.ask("plan P1")
    [card] = [a["content"] for s in running.connector.sent[before:] for a in s.body.get("attachments", [])]
    assert schema_errors(card) == []
    text = all_text(card)
    assert "Budget: $42,000 of $250,000 spent (17 %), 19 % of the window gone — on pace" in text
    assert "Allocated $60,000 to tactical plans · $190,000 unallocated" in text
    assert "Budget: $42,000 of $60,000 spent (70 %), 55 % of the window gone — ahead of pace" in text
    assert "e+" not in json.dumps(card)


async def test_raising_an_allocation_waits_for_the_budget_approvers_and_why_explains_it(running: Running) -> None:
    lead, _, finance = await budgeted(running)
    [held] = await lead.ask("allocate 80k USD to P2")
    assert "needs approval first (A budget shift needs a person's approval)" in held
    assert "A1" in held
    assert await allocation(running, 2) == 60_000
    [request] = await Approvals(running.store, TENANT).pending()
    assert [c.value for c in request.categories] == ["budget"]
    assert request.approvers == ("aad-cfo",)
    # The approver reads the amount as money is written everywhere, not as it was typed.
    facts = all_text(approval_card(request, requester_name="Lead"))
    assert "$80,000" in facts
    assert "80k" not in facts
    await finance.ask("approve A1 within the quarter's plan")
    assert await allocation(running, 2) == 80_000
    [lowered] = await lead.ask("allocate 50k USD to P2")
    assert "P2 is allocated $50,000 (was $80,000)" in lowered
    [why] = await lead.ask("why P2")
    assert "A1" in why
    assert "budget" in why.lower()


async def test_moving_money_is_a_budget_shift_and_a_members_first_allocation_too(running: Running) -> None:
    lead, member, finance = await budgeted(running)
    [held] = await lead.ask("move 10k USD from P2 to P3")
    assert "needs approval first" in held
    assert (await allocation(running, 2), await allocation(running, 3)) == (60_000, None)
    [by_member] = await member.ask("allocate 5k USD to P3")
    assert "needs approval first" in by_member
    await finance.ask("approve A1")
    assert (await allocation(running, 2), await allocation(running, 3)) == (50_000, 10_000)
    [lowered] = await member.ask("allocate 0 USD to P2")
    assert "P2 is allocated $0" in lowered  # lowering is no shift, whoever asks
    # `why` on the plan money left names the move's decisions and the plan's budget changes.
    [why] = await lead.ask("why P2")
    assert "move_budget" in why
    assert "Member set the allocation to $0 (was $50,000)" in why
    assert "Lead moved money: the allocation is now $50,000 (was $60,000)" in why


async def test_a_members_change_of_the_master_budget_is_a_strategy_change_for_the_leader(running: Running) -> None:
    _, member, _ = await budgeted(running)
    [held] = await member.ask("budget P1 400k USD")
    assert "needs approval first" in held
    [request] = await Approvals(running.store, TENANT).pending()
    assert [c.value for c in request.categories] == ["strategy"]
    assert request.approvers == ("aad-lead",)
    assert await allocation(running, 1) == 250_000


async def test_the_model_cannot_allocate_without_the_budget_approvers(running: Running) -> None:
    await budgeted(running)
    caller = Caller(tenant_id=TENANT, user_id="aad-lead", name="Lead", time_zone="UTC", via="assistant", model="m")
    context = Context(Tenants(running.store), caller, clock=running.store.clock)
    reply = await default_registry().run("allocate_budget", context, {"plan": "P3", "amount": "5k"})
    assert "needs approval first" in reply.text
    assert await allocation(running, 3) is None


async def test_signed_spend_events_are_stored_once_and_counted_at_their_day(store: Store, clock: FakeClock) -> None:
    clock.now = datetime(2026, 1, 17, 9, tzinfo=UTC)
    services = Tenants(store)(TENANT)
    master = await services.plans.create_master_plan(
        title="Q1", owner="aad-lead", window=Window(start=date(2026, 1, 1), end=date(2026, 3, 31)), actor="aad-lead"
    )
    await services.budgets.set_budget(master.id, 25_000_000, "USD", actor="aad-lead")
    secret = await ContextSources(store, TENANT, Vault([KEY])).add("finance", actor=ADMIN)
    server, session = await serve(store, clock, {"COS_SECRET_KEYS": KEY})
    url = server.make_url(SPEND_PATH)

    async def post(body: object, signature: str | None = None) -> tuple[int, dict[str, object]]:
        raw = json.dumps(body).encode()
        headers = {"X-COS-Source": "finance", "X-COS-Tenant": TENANT, "X-COS-Signature": signature or sign(secret, raw)}
        async with session.post(url, data=raw, headers=headers) as response:
            return response.status, await response.json()

    spend = {"id": "s-1", "sent_at": clock.now.isoformat(), "plan": master.id, "amount": 12500.5, "currency": "USD"}
    try:
        assert await post({**spend, "on": "2026-01-10"}) == (202, {"stored": 1})
        assert (await post({**spend, "on": "2026-01-10"}))[0] == 409
        assert (await post({**spend, "id": "s-2", "on": "2026-01-11"}, signature="sha256=" + "0" * 64))[0] == 401
        status, problem = await post({**spend, "id": "s-3", "on": "2026-01-11", "currency": "EUR"})
        assert status == 400
        assert "'USD', not 'EUR'" in str(problem["error"])
        status, problem = await post({**spend, "id": "s-4", "on": "10 Jan", "amount": 0})
        assert status == 400
        assert problem["problems"] == [
            {"code": "positive_amount", "path": "event.amount", "message": "a positive amount, such as 12500"},
            {"code": "spend_day", "path": "event.on", "message": "the day it was spent, such as 2026-10-15"},
        ]
    finally:
        await session.close()
        await server.close()
    statuses = await services.budgets.statuses([master], date(2026, 1, 9))
    assert statuses[master.id].spent == 0
    statuses = await services.budgets.statuses([master], date(2026, 1, 10))
    assert statuses[master.id].spent == 1_250_050


async def test_a_tactical_plans_own_card_shows_its_spend_even_before_it_has_an_allocation(
    store: Store, clock: FakeClock
) -> None:
    clock.now = datetime(2026, 1, 17, 9, tzinfo=UTC)
    services = Tenants(store)(TENANT)
    quarter = Window(start=date(2026, 1, 1), end=date(2026, 3, 31))
    master = await services.plans.create_master_plan(title="Q1", owner="aad-lead", window=quarter, actor="aad-lead")
    january = Window(start=date(2026, 1, 1), end=date(2026, 1, 31))
    await services.plans.create_tactical_plan(
        master.id, title="January", owner="aad-lead", window=january, actor="aad-lead"
    )
    caller = Caller(tenant_id=TENANT, user_id="aad-lead", name="Lead", time_zone="UTC")
    context = Context(Tenants(store), caller, clock=store.clock)
    registry = default_registry()
    refused = await registry.run("record_spend", context, {"amount": "1,234.5", "plan": "P2"})
    assert "Master plan P1 has no budget yet" in refused.text
    assert (await registry.run("set_budget", context, {"amount": "1m", "currency": "usd"})).ok
    spent = await registry.run("record_spend", context, {"amount": "1,234.5", "plan": "P2"})
    assert "Recorded $1,234.50 spent on P2. Budget: $1,234.50 spent, no allocation yet." in spent.text
    [card] = (await registry.run("show_plan", context, {"plan": "P2"})).cards
    assert schema_errors(card) == []
    assert "Budget: $1,234.50 spent, no allocation yet" in all_text(card)
