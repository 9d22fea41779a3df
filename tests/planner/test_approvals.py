"""Approval gates on every backend: who may decide, once, in time; and nothing is lost across a restart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from planner.domain.approvals import (
    AlreadyDecided,
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalRefused,
    ApprovalRequest,
    ApprovalStatus,
    NoApprovers,
    NotAnApprover,
    NotAPerson,
    NotAuthenticated,
    SelfApproval,
    UnknownGateCategory,
    check_decider,
    check_open,
)
from planner.domain.errors import Expected, Field, InvalidValue, TenantMismatch
from planner.domain.governance import (
    Action,
    ActionKind,
    DecisionRecord,
    GateCategory,
    PolicyDecision,
    RuleMatch,
    Verdict,
    gate_match,
)
from planner.domain.messages import MessageKind
from planner.services.approvals import Approvals, Approvers, tenants_with_expired
from planner.store import Store
from planner.store.schema import approval_requests, outbox
from tests.conftest import Database, FakeClock
from tests.saying import raises_saying

TENANT = "contoso"


class Recorded(list[DecisionRecord]):
    """A decision log that keeps what it is given."""

    async def __call__(self, record: DecisionRecord) -> None:
        self.append(record)

    def actions(self) -> list[str]:
        return [r.action for r in self]


def budget_shift(**attributes: object) -> Action:
    return Action(
        tenant_id=TENANT,
        kind=ActionKind.DELEGATION,
        actor="aad-lead",
        agent="hubspot",
        name="shift_budget",
        subject="task:12",
        attributes={"from": "events", "to": "paid social", "amount": 20000, **attributes},
        categories=(GateCategory.BUDGET,),
    )


FLAGGED_BY_POLICY = PolicyDecision(
    verdict=Verdict.FLAG,
    matched=(RuleMatch(rule_id="budget-over-10k", verdict=Verdict.FLAG, reason="moves more than 10,000 USD"),),
    facts=("account:acme#renewal",),
)


async def approvals_with_finance(store: Store, recorded: Recorded | None = None) -> Approvals:
    approvals = Approvals(store, TENANT, store.clock, recorded)
    await approvals.approvers.assign("finance", "aad-approver", actor="aad-admin")
    return approvals


async def ask(approvals: Approvals, **kwargs: object) -> object:
    return await approvals.request(
        budget_shift(),
        requester="aad-lead",
        reason="Paid social is converting at twice the rate of events",
        resume={"delegation": 3},
        **({"policy": FLAGGED_BY_POLICY} | kwargs),  # type: ignore[arg-type]
    )


async def outbox_rows(store: Store) -> list[tuple[str, str, dict[str, object]]]:
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(outbox).order_by(outbox.c.id))).all()
    return [(r.recipient, r.kind, r.payload) for r in rows]


async def test_a_request_waits_for_the_approvers_of_its_category_and_sends_each_a_card(store: Store) -> None:
    recorded = Recorded()
    approvals = await approvals_with_finance(store, recorded)
    await approvals.approvers.assign("finance", "aad-cfo", actor="aad-admin")
    await approvals.approvers.assign("legal", "aad-counsel", actor="aad-admin")
    request = await approvals.request(
        budget_shift(),
        requester="aad-lead",
        reason="Paid social converts better",
        resume={"operation": "delegate_task", "args": {"task": "T12"}},
        policy=FLAGGED_BY_POLICY,
    )
    assert request.status is ApprovalStatus.PENDING
    assert request.roles == ("finance",)
    assert request.approvers == ("aad-approver", "aad-cfo")
    assert request.expires_at == store.clock() + timedelta(hours=48)
    assert request.policy_reasons == ("moves more than 10,000 USD",)
    assert request.action == budget_shift()
    assert await outbox_rows(store) == [
        ("aad-approver", MessageKind.APPROVAL_REQUEST, {"approval": request.id}),
        ("aad-cfo", MessageKind.APPROVAL_REQUEST, {"approval": request.id}),
    ]
    assert [r.id for r in await approvals.pending(for_user="aad-cfo")] == [request.id]
    assert await approvals.pending(for_user="aad-counsel") == []
    [asked] = [r for r in recorded if r.action == "approval.requested"]
    assert (asked.actor, asked.subject, asked.verdict, asked.approval_id) == ("aad-lead", "task:12", "flag", request.id)
    assert asked.rules == ("budget-over-10k",)


async def test_an_approver_approves_once_and_the_decision_is_recorded(store: Store) -> None:
    recorded = Recorded()
    approvals = await approvals_with_finance(store, recorded)
    request = await ask(approvals)
    decided = await approvals.decide(
        request.id, approver="aad-approver", approve=True, note="within the quarter's budget", authenticated=True
    )
    assert decided.status is ApprovalStatus.APPROVED
    assert (decided.decided_by, decided.decided_at, decided.note) == (
        "aad-approver",
        store.clock(),
        "within the quarter's budget",
    )
    granted = recorded[-1]
    assert (granted.action, granted.actor, granted.verdict, granted.approval_id) == (
        "approval.granted",
        "aad-approver",
        "approved",
        request.id,
    )
    assert (granted.rationale, granted.data["reason"]) == ("within the quarter's budget", "approval.decided")
    assert ("aad-lead", MessageKind.APPROVAL_DECIDED, {"approval": request.id}) in await outbox_rows(store)
    with pytest.raises(AlreadyDecided, match="already approved"):
        await approvals.decide(request.id, approver="aad-approver", approve=False, authenticated=True)
    assert (await approvals.get(request.id)).status is ApprovalStatus.APPROVED


async def test_a_rejection_is_final_too(store: Store) -> None:
    approvals = await approvals_with_finance(store)
    request = await ask(approvals)
    rejected = await approvals.decide(request.id, approver="aad-approver", approve=False, authenticated=True)
    assert rejected.status is ApprovalStatus.REJECTED
    assert await approvals.claim_resume(request.id) is None


@pytest.mark.parametrize(
    ("approver", "authenticated", "refusal"),
    [
        ("aad-lead", True, SelfApproval),
        ("aad-stranger", True, NotAnApprover),
        ("aad-approver", False, NotAuthenticated),
        ("llm", True, NotAPerson),
        ("agent:hubspot", True, NotAPerson),
    ],
)
async def test_only_an_authenticated_approver_other_than_the_requester_may_decide(
    store: Store, approver: str, authenticated: bool, refusal: type[ApprovalRefused], caplog: pytest.LogCaptureFixture
) -> None:
    recorded = Recorded()
    approvals = await approvals_with_finance(store, recorded)
    await approvals.approvers.assign("finance", "aad-lead", actor="aad-admin")  # the requester holds the role too
    request = await ask(approvals)
    assert "aad-lead" not in request.approvers
    with pytest.raises(refusal) as refused:
        await approvals.decide(request.id, approver=approver, approve=True, authenticated=authenticated)
    assert isinstance(refused.value, PermissionError)
    assert (await approvals.get(request.id)).status is ApprovalStatus.PENDING
    [logged] = [r for r in recorded if r.action == "approval.refused"]
    assert (logged.actor, logged.verdict, logged.approval_id) == (approver, "refused", request.id)
    said = (logged.rationale, logged.data["reason"], logged.data["refusal"])
    assert said == ("", "approval.refused", refusal.__name__)
    assert f"approval A{request.id}" in caplog.text
    assert approver in caplog.text


async def test_an_approver_who_lost_the_role_can_no_longer_decide(store: Store) -> None:
    approvals = await approvals_with_finance(store)
    await approvals.approvers.assign("finance", "aad-cfo", actor="aad-admin")
    request = await ask(approvals)
    await approvals.approvers.unassign("finance", "aad-approver", actor="aad-admin")
    with pytest.raises(NotAnApprover):
        await approvals.decide(request.id, approver="aad-approver", approve=True, authenticated=True)
    assert (await approvals.decide(request.id, approver="aad-cfo", approve=True, authenticated=True)).approved


async def test_nobody_to_approve_is_refused_at_request_time(store: Store) -> None:
    approvals = Approvals(store, TENANT)
    with raises_saying(NoApprovers, "approvers add finance"):
        await ask(approvals)
    await approvals.approvers.assign("finance", "aad-lead", actor="aad-admin")
    with pytest.raises(NoApprovers):  # the requester alone cannot be their own approver
        await ask(approvals)
    assert await outbox_rows(store) == []


def strategy_change(actor: str, on_behalf_of: str | None = None) -> Action:
    return Action(
        tenant_id=TENANT,
        kind=ActionKind.PLAN_CHANGE,
        actor=actor,
        on_behalf_of=on_behalf_of,
        name="edit_master_plan",
        subject="plan:1",
        attributes={"targets": [{"name": "SQLs", "target": 600}]},
        categories=(GateCategory.STRATEGY,),
    )


async def test_the_leader_of_a_master_plan_decides_its_strategy_changes_without_an_approver_role(
    store: Store,
) -> None:
    recorded = Recorded()
    approvals = Approvals(store, TENANT, store.clock, recorded)
    request = await approvals.request(
        strategy_change("aad-member"),
        requester="aad-member",
        reason="new targets",
        resume={"operation": "edit_master_plan", "args": {}},
        leaders=["aad-lead"],
    )
    assert (request.approvers, request.leaders) == (("aad-lead",), ("aad-lead",))
    with pytest.raises(SelfApproval):
        await approvals.decide(request.id, approver="aad-member", approve=True, authenticated=True)
    decided = await approvals.decide(request.id, approver="aad-lead", approve=True, authenticated=True)
    assert decided.approved
    assert recorded[0].actor == "aad-member"


async def test_a_leader_confirms_what_the_model_proposed_for_them_but_never_their_own_request(store: Store) -> None:
    recorded = Recorded()
    approvals = Approvals(store, TENANT, store.clock, recorded)
    resume = {"operation": "edit_master_plan", "args": {}}
    proposed = await approvals.request(
        strategy_change("llm", on_behalf_of="aad-lead"),
        requester="aad-lead",
        reason="the assistant proposed new targets",
        resume=resume,
        leaders=["aad-lead"],
    )
    # What the model asked for is logged as the model's, on behalf of the leader.
    assert (recorded[0].actor, recorded[0].data["on_behalf_of"]) == ("llm", "aad-lead")
    assert proposed.action.on_behalf_of == "aad-lead"
    assert (await approvals.decide(proposed.id, approver="aad-lead", approve=True, authenticated=True)).approved
    with pytest.raises(NoApprovers):
        await approvals.request(
            strategy_change("aad-lead"), requester="aad-lead", reason="x", resume=resume, leaders=["aad-lead"]
        )


async def test_a_request_expires_after_its_time_and_can_no_longer_be_approved(store: Store, clock: FakeClock) -> None:
    recorded = Recorded()
    approvals = Approvals(store, TENANT, clock, recorded, expires_in=timedelta(hours=4))
    await approvals.approvers.assign("finance", "aad-approver", actor="aad-admin")
    first = await ask(approvals)
    second = await ask(approvals, expires_in=timedelta(hours=24))
    clock.advance(hours=5)
    assert await tenants_with_expired(store, clock()) == [TENANT]
    assert [r.id for r in await approvals.expire_due(clock())] == [first.id]
    assert await approvals.expire_due(clock()) == []
    assert (await approvals.get(first.id)).status is ApprovalStatus.EXPIRED
    assert [r.id for r in await approvals.pending()] == [second.id]
    with pytest.raises(ApprovalExpired):
        await approvals.decide(first.id, approver="aad-approver", approve=True, authenticated=True)
    clock.advance(hours=20)  # past the second one's time, but no sweep ran yet: a click expires it
    with pytest.raises(ApprovalExpired):
        await approvals.decide(second.id, approver="aad-approver", approve=True, authenticated=True)
    assert (await approvals.get(second.id)).status is ApprovalStatus.EXPIRED
    assert recorded.actions().count("approval.expired") == 2
    expiry = next(r for r in recorded if r.action == "approval.expired")
    assert (expiry.rationale, expiry.data["reason"]) == ("", "approval.expired")
    assert datetime.fromisoformat(expiry.data["expires_at"]) == first.expires_at
    assert await tenants_with_expired(store, clock()) == []


async def test_an_approved_request_is_resumed_by_one_replica_only(store: Store, database: Database) -> None:
    approvals = await approvals_with_finance(store)
    request = await ask(approvals)
    await approvals.decide(request.id, approver="aad-approver", approve=True, authenticated=True)
    assert [r.id for r in await approvals.awaiting_resume()] == [request.id]
    other = Store(database.engine(), clock=store.clock)
    try:
        claims = await asyncio.gather(
            approvals.claim_resume(request.id), Approvals(other, TENANT).claim_resume(request.id)
        )
    finally:
        await other.close()
    [claimed] = [c for c in claims if c is not None]
    assert claimed.status is ApprovalStatus.RESUMED
    assert claimed.resume == {"delegation": 3}
    assert await approvals.claim_resume(request.id) is None
    assert await approvals.awaiting_resume() == []


async def test_a_failed_resumption_is_given_back_to_run_again(store: Store) -> None:
    approvals = await approvals_with_finance(store)
    request = await ask(approvals)
    await approvals.decide(request.id, approver="aad-approver", approve=True, authenticated=True)
    assert await approvals.claim_resume(request.id) is not None
    assert await approvals.release_resume(request.id)
    assert (await approvals.claim_resume(request.id)) is not None


async def test_a_restart_loses_no_request_and_no_decision(store: Store, database: Database, clock: FakeClock) -> None:
    approvals = await approvals_with_finance(store)
    request = await ask(approvals)
    await store.close()
    restarted = Store(database.engine(), clock=clock)
    try:
        again = Approvals(restarted, TENANT)
        [waiting] = await again.pending(for_user="aad-approver")
        assert waiting == request
        await again.decide(request.id, approver="aad-approver", approve=True, authenticated=True)
    finally:
        await restarted.close()
    last = Store(database.engine(), clock=clock)
    try:
        [approved] = await Approvals(last, TENANT).awaiting_resume()
        assert (approved.id, approved.decided_by) == (request.id, "aad-approver")
    finally:
        await last.close()


async def test_requests_of_another_tenant_are_invisible(store: Store) -> None:
    approvals = await approvals_with_finance(store)
    request = await ask(approvals)
    with raises_saying(ApprovalNotFound, "approvals"):
        await Approvals(store, "fabrikam").get(request.id)
    with pytest.raises(TenantMismatch):
        await Approvals(store, "fabrikam").request(
            budget_shift(), requester="aad-lead", reason="x", resume={"delegation": 1}
        )


async def test_a_resume_payload_must_say_what_to_run(store: Store) -> None:
    approvals = await approvals_with_finance(store)
    with pytest.raises(InvalidValue) as refused:
        await approvals.request(budget_shift(), requester="aad-lead", reason="x", resume={"run": "anything"})
    assert (refused.value.field, refused.value.expected) == (Field.RESUME, Expected.RESUME)
    with pytest.raises(InvalidValue):
        await approvals.request(
            budget_shift(), requester="aad-lead", reason="x", resume={"delegation": 1}, expires_in=timedelta(0)
        )


async def test_roles_per_category_have_defaults_and_can_be_changed(store: Store) -> None:
    recorded = Recorded()
    approvers = Approvers(store, TENANT, record=recorded)
    gates = await approvers.gate_roles()
    assert (gates["strategy"], gates["regulated_claim"], gates["personal_data"]) == ("leader", "legal", "privacy")
    assert await approvers.roles_for([GateCategory.BUDGET, GateCategory.REGULATED_CLAIM]) == ("finance", "legal")
    assert await approvers.roles_for([]) == ("leader",)  # flagged by a rule, no gate category
    assert (await approvers.map("budget", "cfo-office", actor="aad-admin"))["budget"] == "cfo-office"
    assert await approvers.roles_for([GateCategory.BUDGET]) == ("cfo-office",)
    assert await Approvers(store, "fabrikam").roles_for([GateCategory.BUDGET]) == ("finance",)
    with raises_saying(UnknownGateCategory, "regulated_claim"):
        await approvers.map("weather", "legal", actor="aad-admin")
    with pytest.raises(InvalidValue):
        await approvers.map("budget", "Not A Role!", actor="aad-admin")
    assert await approvers.assign("legal", "aad-counsel", actor="aad-admin")
    assert not await approvers.assign("legal", "aad-counsel", actor="aad-admin")
    with pytest.raises(InvalidValue):
        await approvers.assign("legal", "agent:hubspot", actor="aad-admin")
    assert await approvers.holders() == {"legal": ("aad-counsel",)}
    assert await approvers.unassign("legal", "aad-counsel", actor="aad-admin")
    assert not await approvers.unassign("legal", "aad-counsel", actor="aad-admin")
    assert recorded.actions() == ["approvers.mapped", "approvers.assigned", "approvers.unassigned"]
    # Each says why with a code and its data, for the bot to word (bot/text/decisions.py), not in a sentence.
    assert [(r.rationale, r.data) for r in recorded] == [
        ("", {"reason": "gate.mapped", "category": "budget", "role": "cfo-office"}),
        ("", {"reason": "approver.assigned", "role": "legal", "user": "aad-counsel"}),
        ("", {"reason": "approver.unassigned", "role": "legal", "user": "aad-counsel"}),
    ]


async def test_a_gate_s_reason_is_kept_as_its_category_and_an_older_request_s_words_as_they_were(
    store: Store,
) -> None:
    approvals = await approvals_with_finance(store)
    gated = PolicyDecision(verdict=Verdict.FLAG, matched=(gate_match(GateCategory.BUDGET), *FLAGGED_BY_POLICY.matched))
    request = await ask(approvals, policy=gated)
    assert request.policy_reasons == (GateCategory.BUDGET, "moves more than 10,000 USD")
    assert request.rules == ("gate:budget", "budget-over-10k")
    older = {"verdict": "flag", "reasons": ["A budget shift needs a person's approval."], "rules": ["gate:budget"]}
    async with store.engine.begin() as conn:
        await conn.execute(update(approval_requests).where(approval_requests.c.id == request.id).values(policy=older))
    assert (await approvals.get(request.id)).policy_reasons == ("A budget shift needs a person's approval.",)


def waiting_request(**changes: object) -> ApprovalRequest:
    """A budget shift asked by the lead, waiting for the finance approver, as the rules see it (no database)."""
    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    values: dict[str, Any] = dict(
        id=7,
        tenant_id=TENANT,
        action=budget_shift(),
        requester="aad-lead",
        reason="moves budget",
        resume={"delegation": 3},
        roles=("finance",),
        approvers=("aad-approver",),
        status=ApprovalStatus.PENDING,
        created_at=now,
        expires_at=now + timedelta(hours=48),
    )
    return ApprovalRequest(**(values | changes))


def test_the_rules_of_deciding_hold_without_a_database() -> None:
    request = waiting_request()
    check_decider(request, "aad-approver", authenticated=True, roles=frozenset({"finance"}))
    with pytest.raises(NotAuthenticated):
        check_decider(request, "aad-approver", authenticated=False, roles=frozenset({"finance"}))
    with pytest.raises(NotAPerson):
        check_decider(request, "agent:hubspot", authenticated=True, roles=frozenset({"finance"}))
    with pytest.raises(SelfApproval):
        check_decider(request, "aad-lead", authenticated=True, roles=frozenset({"finance"}))
    with pytest.raises(NotAnApprover):
        check_decider(request, "aad-approver", authenticated=True, roles=frozenset({"legal"}))
    with pytest.raises(AlreadyDecided):
        check_open(waiting_request(status=ApprovalStatus.RESUMED), "aad-approver")
    with pytest.raises(ApprovalExpired):
        check_open(waiting_request(status=ApprovalStatus.EXPIRED), "aad-approver")
