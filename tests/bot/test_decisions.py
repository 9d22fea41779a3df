"""`why T12` in Teams: the decisions behind a task, in plain words, newest first; `decisions` lists the log."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.grammar import parse
from bot.operations import Caller, Context, Reply, default_registry
from bot.text import messages
from planner.domain.approvals import ApprovalRequest
from planner.domain.governance import (
    Action,
    ActionKind,
    DecisionRecord,
    GateCategory,
    PolicyDecision,
    Verdict,
    gate_match,
)
from planner.domain.model import Window
from planner.services.approvals import Approvals
from planner.services.decisions import DecisionLog
from planner.services.directory import Directory
from planner.services.plans import Plans
from planner.services.tenants import Tenants
from planner.store import Store
from tests.bot.cards.test_cards import all_text, schema_errors
from tests.conftest import FakeClock

TENANT = "contoso"


async def run(store: Store, clock: FakeClock, text: str, *, tenant: str = TENANT) -> Reply:
    command = parse(text)
    caller = Caller(tenant_id=tenant, user_id="aad-writer", name="Writer")
    return await default_registry().run(command.operation, Context(Tenants(store), caller, clock=clock), command.args)


async def a_stopped_then_approved_email(store: Store, clock: FakeClock) -> int:
    """A task whose email the policy engine stopped at 09:00, then a person approved at 10:30; its id."""
    clock.now = datetime(2026, 2, 10, 9, tzinfo=UTC)
    plans = Plans(store, TENANT)
    window = Window(start=date(2026, 2, 1), end=date(2026, 2, 28))
    master = await plans.create_master_plan(title="Q1", owner="aad-lead", window=window, actor="aad-lead")
    tactical = await plans.create_tactical_plan(
        master.id, title="Launch", owner="aad-lead", window=window, actor="aad-lead"
    )
    task = await plans.add_task(tactical.id, title="Launch email", due_on=date(2026, 2, 20), actor="aad-lead")
    await Directory(store, TENANT).remember_person("aad-lead", "Marketing lead", None)
    log = DecisionLog(store, TENANT)
    await log.record(
        DecisionRecord(
            tenant_id=TENANT,
            actor="policy",
            action="delegation.checked",
            subject=f"task:{task.id}",
            verdict="stop",
            rationale="a support ticket was opened 5 hours earlier",
            data={"agent": "hubspot", "capability": "send_email", "facts": ["fact:ticket:acme:77"]},
            rules=("no-outbound-during-ticket",),
        )
    )
    clock.advance(minutes=90)
    await log.record(
        DecisionRecord(
            tenant_id=TENANT,
            actor="aad-lead",
            action="approval.granted",
            subject=f"task:{task.id}",
            verdict="approved",
            rationale="The ticket is closed.",
            data={"approval": 3, "action": "send_email"},
            approval_id=3,
        )
    )
    return task.id


async def test_why_a_task_explains_its_latest_decisions_newest_first(store: Store, clock: FakeClock) -> None:
    task = await a_stopped_then_approved_email(store, clock)
    reply = await run(store, clock, f"why T{task}?")
    assert reply.ok
    approved, stopped = reply.text.split("\n\n")
    assert approved == (
        f"**Decision 2.** On 2026-02-10 at 10:30 UTC, Marketing lead approved send_email for task T{task}: "
        "The ticket is closed. Approval: request A3."
    )
    assert stopped == (
        f"**Decision 1.** On 2026-02-10 at 09:00 UTC, the policy engine stopped agent hubspot's send_email for task "
        f"T{task}: rule no-outbound-during-ticket matched (a support ticket was opened 5 hours earlier). "
        "Approval: none."
    )
    one = await run(store, clock, "why decision 1")
    assert one.text == stopped


async def test_why_in_words_finds_the_decision_that_fits(store: Store, clock: FakeClock) -> None:
    await a_stopped_then_approved_email(store, clock)
    reply = await run(store, clock, "why was the email paused?")
    assert reply.text.startswith("**Decision 1.**")
    assert "stopped agent hubspot's send_email" in reply.text
    assert not (await run(store, clock, "why the weather?")).ok


async def test_why_says_plainly_when_nothing_was_decided(store: Store, clock: FakeClock) -> None:
    task = await a_stopped_then_approved_email(store, clock)
    assert (await run(store, clock, "why T999")).text == "I have no decision logged about task T999."
    missing = await run(store, clock, "why decision 42")
    assert not missing.ok
    assert "No decision 42" in missing.text
    # Another tenant sees none of it.
    other = await run(store, clock, f"why T{task}", tenant="fabrikam")
    assert other.text == f"I have no decision logged about task T{task}."
    assert (await run(store, clock, "decisions", tenant="fabrikam")).text == "No decision has been logged yet."


async def test_decisions_lists_the_log_newest_first_on_a_card(store: Store, clock: FakeClock) -> None:
    task = await a_stopped_then_approved_email(store, clock)
    reply = await run(store, clock, f"decisions T{task}")
    [card] = reply.cards
    assert schema_errors(card) == []
    text = all_text(card)
    assert f"Decisions about task T{task}" in text
    assert text.index("#2 · 2026-02-10 10:30 UTC · Marketing lead: approved") < text.index("#1 · 2026-02-10 09:00 UTC")
    assert "why decision" in reply.text


def test_the_llm_may_ask_why_but_the_grammar_still_needs_a_subject() -> None:
    from bot.grammar import GrammarError
    from bot.llm import Assistant

    tools = {tool["name"] for tool in Assistant(None, default_registry(), model="m").tools}  # type: ignore[arg-type]
    assert {"explain_decision", "show_decisions"} <= tools
    assert parse("why D5").args == {"about": "D5"}
    assert parse("decision 17").args == {"decision": 17}
    with pytest.raises(GrammarError) as asked:
        parse("why")
    assert asked.value.operation == "explain_decision"


async def test_a_decision_number_beyond_any_the_log_holds_gets_the_usual_help(store: Store, clock: FakeClock) -> None:
    """2**31 is past what PostgreSQL's INTEGER column holds: it is not looked up, it is a number that names nothing."""
    refused = await run(store, clock, f"decision {2**31}")
    assert not refused.ok
    assert refused.text.startswith(messages.WHY_WHAT)
    last = await run(store, clock, f"decision {2**31 - 1}")
    assert last.text.startswith("No decision 2147483647 in the log.")


async def approver_changes_an_approval_and_an_expiry(store: Store, clock: FakeClock) -> list[ApprovalRequest]:
    """An admin makes a person a finance approver at 09:00; a budget shift asked at 09:00 is approved at 09:30,
    another expires at 09:00 two days later with nobody deciding; the two requests."""
    clock.now = datetime(2026, 2, 10, 9, tzinfo=UTC)
    directory = Directory(store, TENANT)
    await directory.remember_person("aad-approver", "Finance approver", None)
    await directory.remember_person("aad-admin", "An admin", None)
    approvals = Approvals(store, TENANT, clock, DecisionLog(store, TENANT).record)
    await approvals.approvers.assign("finance", "aad-approver", actor="aad-admin")
    shift = Action(
        tenant_id=TENANT,
        kind=ActionKind.PLAN_CHANGE,
        actor="aad-lead",
        name="shift_budget",
        subject="plan:1",
        categories=(GateCategory.BUDGET,),
    )
    gated = PolicyDecision(verdict=Verdict.FLAG, matched=(gate_match(GateCategory.BUDGET),))

    async def ask() -> ApprovalRequest:
        resume = {"operation": "shift_budget", "args": {}}
        return await approvals.request(shift, requester="aad-lead", reason="A lead asked", resume=resume, policy=gated)

    granted, lapsed = await ask(), await ask()
    clock.advance(minutes=30)
    await approvals.decide(granted.id, approver="aad-approver", approve=True, authenticated=True)
    clock.now = lapsed.expires_at
    await approvals.expire_due()
    return [granted, lapsed]


async def test_why_explains_an_approver_assignment_an_approval_and_an_expiry_in_words(
    store: Store, clock: FakeClock
) -> None:
    granted, lapsed = await approver_changes_an_approval_and_an_expiry(store, clock)
    entries = [(await run(store, clock, f"why decision {seq}")).text for seq in range(1, 6)]
    assert entries[0] == (
        "**Decision 1.** On 2026-02-10 at 09:00 UTC, An admin assigned approvers for role finance: Finance approver "
        "may now approve what needs the finance role. Approval: none."
    )
    assert entries[3] == (
        "**Decision 4.** On 2026-02-10 at 09:30 UTC, Finance approver approved shift_budget for plan P1: rule "
        f"gate:budget matched (Approved by an approver in Teams). Approval: request {granted.ref}."
    )
    assert entries[4] == (
        "**Decision 5.** On 2026-02-12 at 09:00 UTC, the approval request for shift_budget for plan P1 expired with "
        "no answer: rule gate:budget matched (Nobody decided by 2026-02-12 09:00 UTC; the action was not taken). "
        f"Approval: request {lapsed.ref}."
    )
