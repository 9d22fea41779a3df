"""The policy gate in front of delegations, on every backend: go, stop, and flag held for a person's approval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event

from bot.text.decisions import rationale_text
from bot.text.gates import request_reason_text
from planner.domain.approvals import ApprovalStatus
from planner.domain.context import parse_events
from planner.domain.delegations import Delegation, DelegationStatus
from planner.domain.governance import GateCategory
from planner.governance.gated_agent import AgentCall
from planner.governance.guard import (
    ApprovalOutcome,
    PolicyGuard,
    approval_outcome,
    call_action,
    delegation_action,
)
from planner.services.approvals import Approvals
from planner.services.context import ContextFacts
from planner.services.decisions import DecisionLog
from planner.services.policy import PolicySets
from planner.store import Store
from tests.conftest import Database, FakeClock
from tests.planner.test_delegation import Desk, desk

RULES = {
    "rules": [
        {
            "id": "hubspot-discounts",
            "description": "HubSpot may offer discounts up to 15 % on its own",
            "effect": "allow",
            "agents": ["hubspot"],
            "kinds": ["delegation"],
            "actions": ["offer_discount"],
            "limits": {"discount": {"le": 15}},
        },
        {
            "id": "no-cold-email",
            "description": "No cold outbound email",
            "effect": "forbid",
            "actions": ["send_cold_email"],
        },
        {
            "id": "renewal-touch",
            "description": "Every touch of an account in renewal is checked by a person first",
            "effect": "require",
            "when": {"fact": "renewal_open"},
        },
    ]
}


async def guarded(store: Store, clock: FakeClock, rules: dict[str, Any] = RULES) -> tuple[Desk, DecisionLog]:
    log = DecisionLog(store, "contoso")
    d = await desk(store, clock, guard=PolicyGuard(store, "contoso", record=log.record))
    d.agent.known += ["offer_discount", "send_cold_email", "shift_budget"]
    await PolicySets(store, "contoso").load(rules, actor="aad-admin")
    await Approvals(store, "contoso").approvers.assign("leader", "aad-boss", actor="aad-admin")
    return d, log


async def entries(log: DecisionLog) -> list[tuple[str, str, tuple[str, ...], int | None]]:
    return [(e.action, e.subject, tuple(e.rules), e.approval_id) for e in await log.entries()]


async def test_an_action_no_rule_speaks_of_goes_and_leaves_no_entry(store: Store, clock: FakeClock) -> None:
    d, log = await guarded(store, clock)
    delegation = await d.request(capability="draft_email")
    outcome = await d.delegations.run(delegation.id)
    assert outcome.delegation.status is DelegationStatus.SUCCEEDED
    assert len(d.agent.calls) == 1
    assert await entries(log) == []


async def test_a_forbidden_delegation_fails_with_the_rule_and_never_reaches_the_agent(
    store: Store, clock: FakeClock
) -> None:
    d, log = await guarded(store, clock)
    delegation = await d.request(capability="send_cold_email")
    outcome = await d.delegations.run(delegation.id)
    assert (outcome.ran, outcome.delegation.status) == (False, DelegationStatus.FAILED)
    assert outcome.delegation.error == "Stopped by policy: No cold outbound email."
    assert d.agent.calls == []
    assert await entries(log) == [("delegation.stop", f"delegation:{delegation.id}", ("no-cold-email",), None)]


async def test_within_its_limits_an_agent_acts_alone_and_the_rule_that_allowed_it_is_logged(
    store: Store, clock: FakeClock
) -> None:
    d, log = await guarded(store, clock)
    delegation = await d.request(capability="offer_discount", input={"account": "acme", "discount": 10})
    assert (await d.delegations.run(delegation.id)).delegation.status is DelegationStatus.SUCCEEDED
    assert await entries(log) == [("delegation.go", f"delegation:{delegation.id}", ("hubspot-discounts",), None)]


async def test_over_its_limit_it_is_held_until_an_approver_says_yes_then_runs_once(
    store: Store, clock: FakeClock
) -> None:
    d, log = await guarded(store, clock)
    approvals = Approvals(store, "contoso", record=log.record)
    delegation = await d.request(capability="offer_discount", input={"account": "acme", "discount": 20})

    held = await d.delegations.run(delegation.id)
    assert (held.ran, held.tell_owner, held.delegation.status) == (False, True, DelegationStatus.HELD)
    request = await approvals.for_delegation(delegation.id)
    assert request is not None
    assert request.status is ApprovalStatus.PENDING
    assert (
        held.delegation.error == f"Waiting for approval {request.ref}: HubSpot may offer discounts up to 15 % on "
        "its own (discount is 20, the limit is ≤ 15)."
    )
    assert request_reason_text(request) == f"hubspot is about to offer_discount for T{d.task_id}"  # the bot's words
    assert (request.requester, request.approvers, request.resume) == (
        "aad-lead",
        ("aad-boss",),
        {"delegation": delegation.id},
    )
    assert d.agent.calls == []
    # Held is not runnable: neither a retry nor a second runner asks again.
    assert await d.delegations.due_for_retry(clock.now + timedelta(hours=1)) == []
    again = await d.delegations.run(delegation.id)
    assert (again.ran, again.delegation.status) == (False, DelegationStatus.HELD)
    assert len(await approvals.pending()) == 1

    decided = await approvals.decide(request.id, approver="aad-boss", approve=True, authenticated=True)
    assert approval_outcome(decided) == ApprovalOutcome(
        approval=request.ref, status=ApprovalStatus.APPROVED, by="aad-boss"
    )
    released = await d.delegations.release_hold(delegation.id, approved=True, actor="aad-boss", reason="approved")
    assert released is not None
    assert released.status is DelegationStatus.QUEUED
    assert await d.delegations.release_hold(delegation.id, approved=True, actor="aad-boss", reason="again") is None
    done = await d.delegations.run(delegation.id)
    assert done.delegation.status is DelegationStatus.SUCCEEDED
    assert len(d.agent.calls) == 1
    subject = f"delegation:{delegation.id}"
    assert await entries(log) == [
        ("delegation.flag", subject, ("hubspot-discounts",), None),
        ("approval.requested", subject, ("hubspot-discounts",), request.id),
        ("approval.granted", subject, ("hubspot-discounts",), request.id),
        ("delegation.go", subject, ("hubspot-discounts",), request.id),
    ]
    [last] = await log.entries(limit=1, newest_first=True)
    assert (last.rationale, last.data["reason"], last.data["approval"]) == ("", "call.approved", request.id)
    assert rationale_text(last) == (
        f"approved as {request.ref}; HubSpot may offer discounts up to 15 % on its own (discount is 20, the limit is "
        "≤ 15)"
    )


async def test_a_rejected_approval_fails_the_delegation_and_running_it_again_cannot_undo_that(
    store: Store, clock: FakeClock
) -> None:
    d, log = await guarded(store, clock)
    approvals = Approvals(store, "contoso", record=log.record)
    delegation = await d.request(capability="offer_discount", input={"account": "acme", "discount": 30})
    await d.delegations.run(delegation.id)
    request = await approvals.for_delegation(delegation.id)
    assert request is not None
    rejected = await approvals.decide(
        request.id, approver="aad-boss", approve=False, note="too deep", authenticated=True
    )
    outcome = approval_outcome(rejected)
    assert outcome == ApprovalOutcome(
        approval=request.ref, status=ApprovalStatus.REJECTED, by="aad-boss", note="too deep"
    )
    assert not outcome.approved
    reason = "not run"
    failed = await d.delegations.release_hold(delegation.id, approved=False, actor="aad-boss", reason=reason)
    assert failed is not None
    assert (failed.status, failed.error) == (DelegationStatus.FAILED, reason)
    assert (await d.delegations.run(delegation.id)).ran is False
    assert d.agent.calls == []


async def test_an_approval_never_outweighs_a_stop_added_after_it(store: Store, clock: FakeClock) -> None:
    d, log = await guarded(store, clock)
    approvals = Approvals(store, "contoso", record=log.record)
    delegation = await d.request(capability="offer_discount", input={"account": "acme", "discount": 20})
    await d.delegations.run(delegation.id)
    request = await approvals.for_delegation(delegation.id)
    assert request is not None
    await approvals.decide(request.id, approver="aad-boss", approve=True, authenticated=True)
    await d.delegations.release_hold(delegation.id, approved=True, actor="aad-boss", reason="approved")
    stop_discounts = {
        "rules": [
            {"id": "freeze", "description": "Discounts are frozen", "effect": "forbid", "actions": ["offer_discount"]}
        ]
    }
    await PolicySets(store, "contoso").load(stop_discounts, actor="aad-admin")
    outcome = await d.delegations.run(delegation.id)
    assert (outcome.delegation.status, outcome.delegation.error) == (
        DelegationStatus.FAILED,
        "Stopped by policy: Discounts are frozen.",
    )
    assert d.agent.calls == []


async def test_a_fact_about_the_account_flags_any_touch_of_it(store: Store, clock: FakeClock) -> None:
    d, log = await guarded(store, clock)
    event = {"id": "r1", "type": "renewal_open", "account": "acme", "at": clock.now.isoformat()}
    await ContextFacts(store, "contoso").post("crm", parse_events([event]))
    touching = await d.request(capability="draft_email", input={"customer": "acme"})
    other = await d.request(capability="draft_email", input={"customer": "globex"})
    assert (await d.delegations.run(touching.id)).delegation.status is DelegationStatus.HELD
    assert (await d.delegations.run(other.id)).delegation.status is DelegationStatus.SUCCEEDED
    [flag] = [e for e in await log.entries(limit=10) if e.action == "delegation.flag"]
    assert flag.rules == ("renewal-touch",)
    assert flag.data["facts"]
    assert flag.data["facts"][0].endswith(":renewal_open:acme")


async def test_when_nobody_may_approve_it_fails_saying_so(store: Store, clock: FakeClock) -> None:
    d, _log = await guarded(store, clock)
    await Approvals(store, "contoso").approvers.unassign("leader", "aad-boss", actor="aad-admin")
    delegation = await d.request(capability="offer_discount", input={"discount": 40})
    outcome = await d.delegations.run(delegation.id)
    assert outcome.delegation.status is DelegationStatus.FAILED
    assert outcome.delegation.error is not None
    assert outcome.delegation.error.startswith("It needs a person's approval (HubSpot may offer discounts")
    assert "leader" in outcome.delegation.error


def a_delegation(
    capability: str, input: dict[str, Any] | None = None, *, adapter: str = "hubspot", id: int = 0
) -> Delegation:
    return Delegation(
        id=id,
        tenant_id="contoso",
        task_id=3,
        adapter=adapter,
        adapter_kind="mcp",
        capability=capability,
        input=input or {},
        timeout_seconds=60,
        actor="aad-lead",
        status=DelegationStatus.QUEUED,
        queued_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
    )


def call_of(capability: str, input: dict[str, Any] | None = None, *, adapter: str = "hubspot") -> AgentCall:
    return AgentCall.of_delegation(a_delegation(capability, input, adapter=adapter))


def test_the_action_carries_the_input_its_accounts_and_declared_gate_categories() -> None:
    input = {"amount": 5000, "accounts": ["acme", "globex"], "categories": ["budget", "not-a-gate"]}
    delegation = a_delegation("shift_budget", input, id=7)
    action = delegation_action(delegation)
    assert (action.agent, action.name, action.subject, action.accounts) == (
        "hubspot",
        "shift_budget",
        "delegation:7",
        ("acme", "globex"),
    )
    assert [c.value for c in action.categories] == ["budget"]
    assert action.attributes["amount"] == 5000
    assert action.attributes["input"]["amount"] == 5000
    assert (action.attributes["task"], action.attributes["requested_by"]) == (3, "aad-lead")


async def test_a_delegation_no_rule_in_force_is_about_is_cleared_without_a_read(
    store: Store, clock: FakeClock, database: Database
) -> None:
    about_others = {"rules": RULES["rules"][:2]}  # HubSpot's discounts and cold email, without the wildcard rule
    await PolicySets(store, "contoso").load(about_others, actor="aad-admin")
    guard = PolicyGuard(store, "contoso", record=DecisionLog(store, "contoso").record)
    assert await guard.clears(call_of("draft_email"))  # read: the rules in force were not confirmed yet
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", seen)
    try:
        assert await guard.clears(call_of("draft_email"))
        assert await guard.clears(call_of("offer_discount", adapter="agentforce"))  # its rule is hubspot's
        assert statements == []
        # A rule about it, or a gate its input names, is spoken of: not a plain go.
        assert not await guard.clears(call_of("send_cold_email"))
        assert not await guard.clears(call_of("offer_discount", {"discount": 10}))  # allowed by a rule
        assert not await guard.clears(call_of("draft_email", {"categories": ["budget"]}))
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", seen)
    # Rules another process loads are heard within the engine's recheck, as for any evaluation.
    replica = Store(database.engine(), clock=clock)
    try:
        forbid = {"id": "no-drafts", "description": "No drafts today", "effect": "forbid", "actions": ["draft_email"]}
        await PolicySets(replica, "contoso").load({"rules": [forbid]}, actor="aad-admin")
    finally:
        await replica.close()
    assert await guard.clears(call_of("draft_email"))  # the rules here were confirmed less than a second ago
    clock.advance(seconds=1)
    assert not await guard.clears(call_of("draft_email"))


def test_a_classified_capability_keeps_its_gates_whatever_its_input_declares() -> None:
    classified = (GateCategory.AUDIENCE, GateCategory.PERSONAL_DATA)
    for declared in ([], "", None, ["not-a-gate"]):
        action = call_action(call_of("create_segment", {"categories": declared}), classified=classified)
        assert action.categories == classified
        assert action.attributes["categories"] == ["audience", "personal_data"]  # what the rules see
    added = call_action(call_of("create_segment", {"categories": ["budget", "audience"]}), classified=classified)
    assert added.categories == (*classified, GateCategory.BUDGET)
