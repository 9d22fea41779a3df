"""The approval card in each state, validated against the Adaptive Card 1.5 schema and read as an approver would."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.cards import VERB_APPROVE, VERB_REJECT, approval_card
from bot.cards.approval import actor_label
from bot.cards.elements import CARD_BUDGET_BYTES, serialized_size
from planner.domain.approvals import ApprovalRequest, ApprovalStatus
from planner.domain.governance import Action, ActionKind, GateCategory
from tests.bot.cards.test_cards import of_type, schema_errors, texts

ASKED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
REQUEST = ApprovalRequest(
    id=7,
    tenant_id="contoso",
    action=Action(
        tenant_id="contoso",
        kind=ActionKind.DELEGATION,
        actor="agent:hubspot",
        agent="hubspot",
        name="send_campaign",
        subject="task:12",
        accounts=("acme", "globex"),
        attributes={"audience": "EU customers who opened in 30 days", "size": 12500, "uses_email": True},
        categories=(GateCategory.AUDIENCE, GateCategory.PERSONAL_DATA),
    ),
    requester="agent:hubspot",
    reason="The spring campaign goes to a new segment",
    policy_reasons=("uses personal data of EU residents",),
    rules=("gdpr-review",),
    resume={"delegation": 3},
    roles=("marketing-ops", "privacy"),
    approvers=("aad-approver",),
    status=ApprovalStatus.PENDING,
    created_at=ASKED,
    expires_at=ASKED + timedelta(hours=48),
)


def test_an_operation_held_for_approval_reads_in_words_with_the_plan_and_kpi_as_the_chat_names_them() -> None:
    held = replace(
        REQUEST,
        action=Action(
            tenant_id="contoso",
            kind=ActionKind.PLAN_CHANGE,
            actor="aad-member",
            name="edit_master_plan",
            subject="plan:1",
            # As the grammar passes it: the target as typed.
            attributes={"targets": [{"name": "SQLs", "target": "700"}], "plan": "P1"},
            categories=(GateCategory.STRATEGY,),
        ),
    )
    card = approval_card(held, requester_name="Member")
    assert schema_errors(card) == []
    facts = {fact["title"]: fact["value"] for fact in of_type(card, "FactSet")[0]["facts"]}
    assert facts == {"Action": "edit master plan (plan change)", "About": "P1", "Targets": "SQLs 700"}


def test_a_pending_request_shows_what_who_why_the_data_and_the_deadline_with_two_buttons() -> None:
    card = approval_card(REQUEST, requester_name=actor_label(REQUEST.requester, {}), zone=ZoneInfo("Europe/Paris"))
    assert schema_errors(card) == []
    shown = "\n".join(texts(card)) + json.dumps(card)
    assert "Approval needed: Audience definition · Personal or sensitive data" in shown
    assert "asked by hubspot (agent)" in shown
    assert "uses personal data of EU residents" in shown
    assert "EU customers who opened in 30 days" in shown
    assert "12,500" in shown
    assert "Waiting for a decision until Wed 4 Mar 2026, 10:30 CET" in shown
    actions = of_type(card, "Action.Execute")
    assert [(a["title"], a["verb"], a["data"]) for a in actions] == [
        ("Approve", VERB_APPROVE, {"approval": 7, "verb": VERB_APPROVE}),
        ("Reject", VERB_REJECT, {"approval": 7, "verb": VERB_REJECT}),
    ]
    [note] = of_type(card, "Input.Text")
    assert note["id"] == "note"


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (ApprovalStatus.APPROVED, "Approved by Approver at Mon 2 Mar 2026, 11:00 UTC"),
        (ApprovalStatus.RESUMED, "Approved by Approver at Mon 2 Mar 2026, 11:00 UTC"),
        (ApprovalStatus.REJECTED, "Rejected by Approver at Mon 2 Mar 2026, 11:00 UTC"),
        (ApprovalStatus.EXPIRED, "Expired at Wed 4 Mar 2026, 09:30 UTC"),
    ],
)
def test_a_decided_request_says_by_whom_and_when_and_has_no_buttons(status: ApprovalStatus, said: str) -> None:
    decided = replace(
        REQUEST,
        status=status,
        decided_by="aad-approver",
        decided_at=ASKED + timedelta(minutes=90),
        note="Checked with the DPO",
    )
    card = approval_card(decided, requester_name="hubspot (agent)", decider_name="Approver", note="A7 is approved.")
    assert schema_errors(card) == []
    shown = "\n".join(texts(card))
    assert said in shown
    assert "Checked with the DPO" in shown
    assert "actions" not in card
    assert of_type(card, "Input.Text") == []


def test_huge_action_data_is_clipped_to_fit_in_a_teams_message() -> None:
    attributes = {f"field_{i}": "x" * 5000 for i in range(40)}
    big = replace(REQUEST, action=replace(REQUEST.action, attributes=attributes))
    card = approval_card(big, requester_name="hubspot (agent)")
    assert schema_errors(card) == []
    assert serialized_size(card) <= CARD_BUDGET_BYTES


def test_the_bot_s_own_actors_read_as_what_they_are() -> None:
    assert actor_label("llm", {}) == "the assistant"
    assert actor_label("agent:salesforce", {}) == "salesforce (agent)"
    assert actor_label("aad-lead", {"aad-lead": "Lead"}) == "Lead"


def test_a_gate_s_reason_reads_in_the_bot_s_words_and_an_admin_s_rule_as_they_wrote_it() -> None:
    gated = replace(REQUEST, policy_reasons=(GateCategory.AUDIENCE, "uses personal data of EU residents"))
    shown = texts(approval_card(gated, requester_name="hubspot (agent)"))
    assert "An audience definition needs a person's approval." in "\n".join(shown)
    assert "uses personal data of EU residents" in "\n".join(shown)
    assert not any(text.strip() in ("audience", "gate:audience") for text in shown)


def test_a_held_reminder_names_its_recipient_task_and_day_as_the_chat_does_and_says_its_rule_once() -> None:
    rule = "A person looks at each reminder first"
    held = replace(
        REQUEST,
        action=Action(
            tenant_id="contoso",
            kind=ActionKind.NUDGE,
            actor="bot",
            name="deadline_approaching",
            subject="task:1",
            # As the follow-up holds a message: its recipient's user id and the task's number.
            attributes={"recipient": "aad-lead", "task": 1, "title": "Draft launch email", "due_on": "2026-12-07"},
        ),
        requester="bot",
        reason=f"the deadline approaching message to Lead about T1 waits for a person to look first: {rule}",
        policy_reasons=(rule,),
    )
    card = approval_card(held, requester_name="Chief of Staff", names={"aad-lead": "Lead"})
    assert schema_errors(card) == []
    facts = {fact["title"]: fact["value"] for fact in of_type(card, "FactSet")[0]["facts"]}
    assert facts == {
        "Action": "deadline approaching (nudge)",
        "About": "T1",
        "Recipient": "Lead",
        "Title": "Draft launch email",
        "Due on": "Mon 7 Dec 2026",
    }
    [reasons] = [t for t in texts(card) if rule in t]
    assert reasons.count(rule) == 1
