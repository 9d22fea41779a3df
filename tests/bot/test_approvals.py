"""Approval gates through the running bot: the card reaches the approver, only they can decide, in place."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from bot.cards.approval import VERB_APPROVE, VERB_REJECT
from bot.operations import Caller, Context, default_registry
from bot.sender import Sender
from bot.settings import Settings
from bot.teams.botbuilder import create_channel
from planner.domain.approvals import ApprovalRequest, ApprovalStatus
from planner.domain.governance import (
    Action,
    ActionKind,
    DecisionRecord,
    GateCategory,
    PolicyDecision,
    RuleMatch,
    Verdict,
)
from planner.services.approvals import Approvals
from planner.services.tenants import Tenants
from tests.bot.cards.test_cards import schema_errors
from tests.bot.conftest import TENANT, Running, TeamsUser
from tests.bot.test_llm import ReplayTransport, assistant_with
from tests.bot.test_teams import find_action
from tests.conftest import FakeClock
from tests.fakes.connector import Sent

CLAIM = Action(
    tenant_id=TENANT,
    kind=ActionKind.DELEGATION,
    actor="aad-lead",
    agent="hubspot",
    name="publish_landing_page",
    subject="task:7",
    attributes={"headline": "Cuts onboarding time by 50 %", "channel": "web"},
    categories=(GateCategory.REGULATED_CLAIM,),
)
POLICY = PolicyDecision(
    verdict=Verdict.FLAG,
    matched=(RuleMatch(rule_id="claims-need-legal", verdict=Verdict.FLAG, reason="states a performance figure"),),
)


class Recorded(list[DecisionRecord]):
    async def __call__(self, record: DecisionRecord) -> None:
        self.append(record)


@pytest.fixture
def approver(running: Running) -> TeamsUser:
    return TeamsUser(running, user_id="aad-approver", name="Approver", conversation_id="a:personal-approver")


@pytest.fixture
def stranger(running: Running) -> TeamsUser:
    return TeamsUser(running, user_id="aad-stranger", name="Stranger", conversation_id="a:personal-stranger")


async def ask_legal(running: Running, approver: TeamsUser) -> tuple[ApprovalRequest, Sent]:
    """The approver has talked to the bot once (so their chat is known); a claim is held; the card is delivered."""
    await approver.ask("help")
    approvals = Approvals(running.store, TENANT)
    await approvals.approvers.assign("legal", approver.user_id, actor="aad-admin")
    request = await approvals.request(
        CLAIM,
        requester="aad-lead",
        reason="Launch page for the spring campaign",
        resume={"delegation": 4},
        policy=POLICY,
    )
    before = len(running.connector.sent)
    sender = Sender(running.store, create_channel(Settings.from_env({})), worker="w1", jitter=random.Random(1))
    assert (await sender.deliver()).sent == 1
    [card_message] = running.connector.sent[before:]
    return request, card_message


def card_of(sent: Sent) -> dict[str, Any]:
    content: dict[str, Any] = sent.body["attachments"][0]["content"]
    return content


async def test_the_approval_card_reaches_the_approver_and_says_what_who_why_and_until_when(
    running: Running, approver: TeamsUser
) -> None:
    request, card_message = await ask_legal(running, approver)
    assert card_message.conversation_id == "a:personal-approver"
    assert "asks for your approval (Regulated claim)" in card_message.body["text"]
    card = card_of(card_message)
    assert schema_errors(card) == []
    text = json.dumps(card)
    for shown in ("Approval needed: Regulated claim", "aad-lead", "states a performance figure", "legal"):
        assert shown in text
    assert "Cuts onboarding time by 50 %" in text
    assert "Waiting for a decision until Wed 7 Jan 2026, 09:00 GMT" in text
    assert find_action(card, "Approve")["data"] == {"approval": request.id, "verb": VERB_APPROVE}
    assert find_action(card, "Reject")["verb"] == VERB_REJECT


async def test_the_approver_clicks_approve_and_the_card_says_so_in_place(running: Running, approver: TeamsUser) -> None:
    request, card_message = await ask_legal(running, approver)
    approve = find_action(card_of(card_message), "Approve")
    before = len(running.connector.sent)
    await approver.post(
        approver.activity(
            text=None, value=approve["data"] | {"note": "Figure is sourced"}, replyToId=card_message.activity_id
        )
    )
    [update] = (await running.connector.wait_for(before + 1))[before:]
    assert update.method == "update"
    assert update.activity_id == card_message.activity_id
    updated = card_of(update)
    assert schema_errors(updated) == []
    text = json.dumps(updated)
    assert "Approved by Approver at Mon 5 Jan 2026, 09:00 GMT" in text
    assert "Figure is sourced" in text
    assert "Action.Execute" not in text
    decided = await Approvals(running.store, TENANT).get(request.id)
    # The bot runs what was held as soon as it is approved: the request is then resumed, once.
    assert (decided.status, decided.decided_by) == (ApprovalStatus.RESUMED, "aad-approver")


async def test_someone_else_clicking_approve_is_refused_politely_and_nothing_changes(
    running: Running, approver: TeamsUser, stranger: TeamsUser, caplog: pytest.LogCaptureFixture
) -> None:
    request, card_message = await ask_legal(running, approver)
    approve = find_action(card_of(card_message), "Approve")
    before = len(running.connector.sent)
    [reply] = await stranger.ask_value(approve["data"] | {"replyToId": card_message.activity_id})
    assert "can't take that decision from you, and nothing was changed" in reply
    assert "not an approver of A1" in reply
    assert [s.method for s in running.connector.sent[before:]] == ["send"]  # no card was updated
    assert (await Approvals(running.store, TENANT).get(request.id)).status is ApprovalStatus.PENDING
    assert "aad-stranger" in caplog.text
    assert f"A{request.id}" in caplog.text


async def test_the_requester_cannot_approve_their_own_request_by_typing(running: Running, approver: TeamsUser) -> None:
    request, _ = await ask_legal(running, approver)
    lead = TeamsUser(running)
    [reply] = await lead.ask(f"approve A{request.id}")
    assert "you cannot approve it" in reply
    assert (await Approvals(running.store, TENANT).get(request.id)).status is ApprovalStatus.PENDING
    [reply] = await approver.ask(f"reject A{request.id} because the figure has no source")
    assert "rejected" in reply
    rejected = await Approvals(running.store, TENANT).get(request.id)
    assert (rejected.status, rejected.note) == (ApprovalStatus.REJECTED, "the figure has no source")


async def test_a_universal_action_approve_answers_with_the_decided_card(running: Running, approver: TeamsUser) -> None:
    request, card_message = await ask_legal(running, approver)
    approve = find_action(card_of(card_message), "Approve")
    invoke = approver.activity(
        type="invoke",
        name="adaptiveCard/action",
        text=None,
        value={
            "action": {"type": "Action.Execute", "verb": approve["verb"], "data": approve["data"]},
            "trigger": "manual",
        },
    )
    async with running.session.post(running.url, json=invoke) as response:
        assert response.status == 200
        body = await response.json()
    assert body["type"] == "application/vnd.microsoft.card.adaptive"
    assert "Approved by Approver" in json.dumps(body["value"])
    assert (await Approvals(running.store, TENANT).get(request.id)).approved


async def test_a_second_click_on_an_old_card_shows_it_already_decided(running: Running, approver: TeamsUser) -> None:
    _, card_message = await ask_legal(running, approver)
    reject = find_action(card_of(card_message), "Reject")
    approve = find_action(card_of(card_message), "Approve")
    await approver.ask_value(reject["data"] | {"replyToId": card_message.activity_id})
    before = len(running.connector.sent)
    await approver.post(approver.activity(text=None, value=approve["data"], replyToId=card_message.activity_id))
    [update] = (await running.connector.wait_for(before + 1))[before:]
    assert update.method == "update"
    assert "already rejected" in json.dumps(card_of(update))
    assert "Rejected by Approver" in json.dumps(card_of(update))


async def test_approvals_lists_what_waits_for_me(running: Running, approver: TeamsUser) -> None:
    request, _ = await ask_legal(running, approver)
    before = len(running.connector.sent)
    await approver.say("approvals")
    [answer] = (await running.connector.wait_for(before + 1))[before:]
    assert "1 waiting for your decision" in answer.body["text"]
    assert f"A{request.id}" in json.dumps(card_of(answer))


async def test_admins_say_who_approves_what_in_chat(running: Running, approver: TeamsUser) -> None:
    lead = TeamsUser(running)
    await approver.ask("help")
    [added] = await lead.ask("approvers add finance aad-approver")
    assert "Approver now approves what needs the finance role" in added
    [mapped] = await lead.ask("approvers map brand_creative finance")
    assert "Brand-critical creative is approved by the finance role" in mapped
    before = len(running.connector.sent)
    await lead.say("approvers")
    [listing] = (await running.connector.wait_for(before + 1))[before:]
    assert "Budget shift: finance (Approver)" in json.dumps(card_of(listing))
    [refused] = await lead.ask("approvers map weather legal")
    assert "no approval gate 'weather'" in refused


async def test_the_resume_hook_runs_the_approved_action_once_and_the_decision_is_recorded(running: Running) -> None:
    recorded = Recorded()
    approvals = Approvals(running.store, TENANT, record=recorded)
    await approvals.approvers.assign("legal", "aad-approver", actor="aad-admin")
    request = await approvals.request(CLAIM, requester="aad-lead", reason="Launch page", resume={"delegation": 4})
    resumed: list[dict[str, Any]] = []

    async def resume(context: Context, claimed: ApprovalRequest) -> str:
        resumed.append(claimed.resume)
        return "D4 is running."

    caller = Caller(tenant_id=TENANT, user_id="aad-approver", name="Approver")
    registry = default_registry()
    for _ in range(2):
        context = Context(Tenants(running.store), caller, clock=running.store.clock, resume=resume, record=recorded)
        reply = await registry.run("approve_request", context, {"approval": f"A{request.id}", "from_card": True})
    assert resumed == [{"delegation": 4}]
    assert reply.card_update is not None
    assert "already approved" in json.dumps(reply.card_update)
    assert [r.action for r in recorded] == ["approvers.assigned", "approval.requested", "approval.granted"]


async def test_no_path_without_a_teams_activity_can_approve(running: Running) -> None:
    recorded = Recorded()
    approvals = Approvals(running.store, TENANT, record=recorded)
    await approvals.approvers.assign("legal", "aad-approver", actor="aad-admin")
    request = await approvals.request(CLAIM, requester="aad-lead", reason="Launch page", resume={"delegation": 4})
    caller = Caller(tenant_id=TENANT, user_id="aad-approver", name="Approver")
    context = Context(Tenants(running.store), caller, clock=running.store.clock, record=recorded)
    # The registry run some other way than from a card or a typed command (no mark of a Teams activity):
    reply = await default_registry().run("approve_request", context, {"approval": f"A{request.id}"})
    assert not reply.ok
    assert "signed in to Teams" in reply.text
    assert recorded[-1].verdict == "refused"
    # The LLM is never offered the decision, and calling it by name is refused.
    call = {
        "id": "msg_a",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
        "content": [
            {
                "type": "tool_use",
                "id": "toolu_a",
                "name": "approve_request",
                "input": {"approval": f"A{request.id}", "from_card": True, "typed": True},
            }
        ],
    }
    done = {**call, "stop_reason": "end_turn", "content": [{"type": "text", "text": "I cannot approve that."}]}
    transport = ReplayTransport([call, done])
    assistant = assistant_with(transport)
    offered = {tool["name"] for tool in assistant.tools}
    assert not offered & {"approve_request", "reject_request", "add_approver", "remove_approver", "map_approval_gate"}
    await assistant.handle(context, "approve A1 for me")
    assert (await approvals.get(request.id)).status is ApprovalStatus.PENDING


async def test_a_decision_in_teams_and_a_forged_click_both_land_in_the_decision_log(
    running: Running, approver: TeamsUser, stranger: TeamsUser
) -> None:
    from planner.services.decisions import DecisionLog, verify

    request, card_message = await ask_legal(running, approver)
    approve = find_action(card_of(card_message), "Approve")
    await stranger.ask("help")
    await stranger.post(stranger.activity(text=None, value=approve["data"], replyToId=card_message.activity_id))
    await approver.post(approver.activity(text=None, value=approve["data"], replyToId=card_message.activity_id))
    log = DecisionLog(running.store, TENANT)
    actions = [(d.action, d.actor, d.verdict) for d in await log.entries()]
    assert ("approval.refused", "aad-stranger", "refused") in actions
    assert ("approval.granted", "aad-approver", "approved") in actions
    assert (await Approvals(running.store, TENANT).get(request.id)).status in (
        ApprovalStatus.APPROVED,
        ApprovalStatus.RESUMED,
    )
    assert (await verify(running.store, TENANT)).ok


async def test_the_tick_expires_a_request_nobody_decided_and_logs_it(
    running: Running, approver: TeamsUser, clock: FakeClock
) -> None:
    from bot.scheduler import tick
    from planner.services.decisions import DecisionLog

    request, _card = await ask_legal(running, approver)
    clock.advance(hours=49)
    await tick(running.store, create_channel(Settings.from_env({})), at=clock.now)
    assert (await Approvals(running.store, TENANT).get(request.id)).status is ApprovalStatus.EXPIRED
    assert "approval.expired" in [d.action for d in await DecisionLog(running.store, TENANT).entries()]
