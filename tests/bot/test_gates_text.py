"""The words for what the planner keeps as data: every approval gate's reason and name, every reason the system logs
a decision for, the limits a rule's action went over, how a held delegation's approval ended and every break of the
decision log's chain, read in plain English; entries logged before reasons were codes read as they were logged."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.text.decisions import BREAKS, CHECKPOINT_FLAWS, break_text, checkpoint_flaw_text, explain, rationale_text
from bot.text.gates import (
    APPROVAL_OUTCOMES,
    GATE_NAMES,
    GATE_REASONS,
    OPERATORS,
    approval_outcome_text,
    gate_name,
    policy_reason_text,
    policy_reasons_text,
)
from planner.domain.approvals import GATES, ApprovalStatus
from planner.domain.decisions import BreakCode, BreakKind, ChainBreak, CheckpointFlaw, Decision, data_hash
from planner.domain.governance import (
    REASON_KEY,
    DestructiveTool,
    GateCategory,
    LogReason,
    OverLimit,
    OverLimits,
    policy_reason_json,
    policy_reason_of_json,
)
from planner.domain.policy import OPERATORS as COMPARISONS
from planner.governance.guard import ApprovalOutcome

AT = datetime(2026, 2, 10, 9, tzinfo=UTC)

DATA: dict[LogReason, dict[str, Any]] = {
    LogReason.CALL_ALLOWED: {"reasons": ["Small discounts may go"]},
    LogReason.CALL_STOPPED: {"reasons": ["No outbound while a ticket is open"]},
    LogReason.CALL_HELD: {"reasons": [{"gate": "budget"}]},
    LogReason.CALL_CANNOT_WAIT: {"reasons": [{"gate": "personal_data"}]},
    LogReason.CALL_APPROVED: {"approval": 3, "reasons": [{"gate": "audience"}, "EU residents"]},
    LogReason.APPROVER_ASSIGNED: {"role": "finance", "user": "aad-approver"},
    LogReason.APPROVER_UNASSIGNED: {"role": "finance", "user": "aad-approver"},
    LogReason.GATE_MAPPED: {"role": "cfo-office", "category": "budget"},
    LogReason.APPROVAL_REQUESTED: {"approval": 3, "policy_reasons": [{"gate": "budget"}, "Over 10k."]},
    LogReason.APPROVAL_DECIDED: {"approval": 3},
    LogReason.APPROVAL_EXPIRED: {"approval": 3, "expires_at": "2026-02-12T09:00:00+00:00"},
    LogReason.APPROVAL_REFUSED: {"approval": 3, "refusal": "NotAnApprover", "roles": ["finance", "legal"]},
    LogReason.SAMPLING_DECLINED: {"agent": "hubspot", "reasons": [{"gate": "personal_data"}]},
    LogReason.SAMPLING_FAILED: {"agent": "hubspot", "error": "the model timed out"},
    LogReason.SAMPLING_LENT: {"agent": "hubspot", "model": "claude-sonnet"},
}
SAID = {
    LogReason.CALL_ALLOWED: "Small discounts may go",
    LogReason.CALL_STOPPED: "No outbound while a ticket is open",
    LogReason.CALL_HELD: "A budget shift needs a person's approval",
    LogReason.CALL_CANNOT_WAIT: (
        "Using personal or sensitive data needs a person's approval; it was not made, as only a delegation can wait "
        "for a person's approval"
    ),
    LogReason.CALL_APPROVED: "approved as A3; An audience definition needs a person's approval; EU residents",
    LogReason.APPROVER_ASSIGNED: "Finance approver may now approve what needs the finance role.",
    LogReason.APPROVER_UNASSIGNED: "Finance approver no longer approves what needs the finance role.",
    LogReason.GATE_MAPPED: "The cfo-office role approves budget shifts from now on.",
    LogReason.APPROVAL_REQUESTED: "A budget shift needs a person's approval; Over 10k",
    LogReason.APPROVAL_DECIDED: "Approved by an approver in Teams.",
    LogReason.APPROVAL_EXPIRED: "Nobody decided by 2026-02-12 09:00 UTC; the action was not taken.",
    LogReason.APPROVAL_REFUSED: "only its approvers may decide it (whoever holds the finance or legal role).",
    LogReason.SAMPLING_DECLINED: (
        "hubspot asked to use the bot's model; declined: Using personal or sensitive data needs a person's approval"
    ),
    LogReason.SAMPLING_FAILED: "hubspot was lent the bot's model, which could not answer (the model timed out)",
    LogReason.SAMPLING_LENT: "hubspot used the bot's model (claude-sonnet) for a call",
}


def entry(rationale: str = "", verdict: str = "done", **data: Any) -> Decision:
    return Decision(
        tenant_id="contoso",
        seq=1,
        at=AT,
        actor="aad-admin",
        action="approvers.assigned",
        subject="role:finance",
        verdict=verdict,
        rationale=rationale,
        data=data,
        data_hash=data_hash(data),
        refs=(),
        rules=(),
        approval_id=None,
        prev_hash="0" * 64,
        hash="",
    )


def test_every_gate_has_a_reason_and_a_name_in_the_bot_s_words() -> None:
    assert set(GATE_REASONS) == set(GateCategory)
    assert all(reason.endswith("needs a person's approval.") for reason in GATE_REASONS.values())
    assert set(GATE_NAMES) == set(GATES)
    assert gate_name("regulated_claim") == "regulated claims"
    assert policy_reason_text(GateCategory.BRAND_CREATIVE) == "Brand-critical creative needs a person's approval."
    assert policy_reason_text("An admin's own words") == "An admin's own words"
    assert policy_reasons_text([]) == "no rule objected"


def test_a_destructive_tool_s_reason_reads_in_words_and_every_reason_keeps_as_json() -> None:
    tool = DestructiveTool(agent="hubspot", capability="delete_segment")
    assert policy_reason_text(tool) == (
        "hubspot's server marks delete_segment as destructive: every call needs a person's approval"
    )
    for reason in (tool, *GateCategory, "An admin's own words", "budget"):
        kept = policy_reason_of_json(json.loads(json.dumps(policy_reason_json(reason))))
        assert (kept, type(kept)) == (reason, type(reason))


OVER = OverLimits(
    description="Discounts up to 15 % go on their own.",
    over=(
        OverLimit(path="discount", actual=20, operator="le", limit=15),
        OverLimit(path="input.amount", actual=12500.25, operator="lt", limit=10000),
        OverLimit(path="channel", actual="sms", operator="in", limit=["email", "chat"]),
        OverLimit(path="region", actual="EU", operator="eq", limit="US"),
    ),
)


def test_the_limits_an_allow_rule_s_action_went_over_read_with_numbers_as_people_read_them() -> None:
    assert policy_reason_text(OVER) == (
        "Discounts up to 15 % go on their own (discount is 20, the limit is ≤ 15; input.amount is 12,500.3, the limit "
        'is < 10,000; channel is "sms", the limit is in ["email", "chat"]; region is "EU", the limit is = US)'
    )
    assert set(OPERATORS) == set(COMPARISONS)
    kept = policy_reason_of_json(json.loads(json.dumps(policy_reason_json(OVER))))
    assert (kept, type(kept)) == (OVER, OverLimits)


def test_every_reason_the_system_logs_has_words() -> None:
    assert set(DATA) == set(LogReason) == set(SAID)


@pytest.mark.parametrize("reason", list(LogReason), ids=str)
def test_a_logged_reason_reads_in_plain_english(reason: LogReason) -> None:
    logged = entry(verdict="approved", **{REASON_KEY: reason.value}, **DATA[reason])
    assert rationale_text(logged, names={"aad-approver": "Finance approver"}) == SAID[reason]


def test_a_person_s_note_and_an_older_entry_s_sentence_read_as_they_were_written() -> None:
    noted = entry("Within the quarter's plan", verdict="approved", **{REASON_KEY: "approval.decided"})
    assert rationale_text(noted) == "Within the quarter's plan"
    older = entry("aad-counsel may now approve what needs the legal role.", role="legal", user="aad-counsel")
    assert rationale_text(older) == "aad-counsel may now approve what needs the legal role."
    assert explain(older).endswith(": aad-counsel may now approve what needs the legal role. Approval: none.")
    # A reason a later version logs, which this one does not know, says nothing rather than something wrong.
    assert rationale_text(entry(**{REASON_KEY: "approval.reconsidered"})) == ""


@pytest.mark.parametrize(
    ("outcome", "said"),
    [
        (ApprovalOutcome(approval="A3", status=ApprovalStatus.APPROVED, by="aad-boss"), "A3 approved by aad-boss"),
        (
            ApprovalOutcome(approval="A3", status=ApprovalStatus.REJECTED, by="aad-boss", note="Too deep."),
            "Not run: A3 was rejected by aad-boss: Too deep.",
        ),
        (
            ApprovalOutcome(approval="A3", status=ApprovalStatus.REJECTED, by="aad-boss"),
            "Not run: A3 was rejected by aad-boss.",
        ),
        (ApprovalOutcome(approval="A4", status=ApprovalStatus.EXPIRED), "Not run: A4 expired with no answer."),
    ],
    ids=lambda value: value.status.value if isinstance(value, ApprovalOutcome) else "",
)
def test_a_held_delegation_s_release_reads_as_its_approval_was_decided(outcome: ApprovalOutcome, said: str) -> None:
    assert approval_outcome_text(outcome) == said


def test_every_way_an_approval_request_ends_is_worded() -> None:
    ended = {status for status in ApprovalStatus if status not in (ApprovalStatus.PENDING, ApprovalStatus.RESUMED)}
    assert set(APPROVAL_OUTCOMES) == ended


CHECKPOINT_AT = datetime(2026, 1, 5, 9, 15, tzinfo=UTC)
BREAKS_SAID: dict[BreakCode, tuple[dict[str, object], str]] = {
    BreakCode.OUT_OF_PLACE: (
        {"entry": 4, "follows": 1, "expected": 2},
        "entry 4 follows the entry now numbered 1, not entry 2",
    ),
    BreakCode.MOVED: ({"logged_as": 3}, "it was logged as entry 3, and has been moved"),
    BreakCode.FOLLOWS_ANOTHER: (
        {"follows": 1, "expected": 2},
        "it follows the entry now numbered 1 in the chain, not entry 2",
    ),
    BreakCode.MISSING: ({"first": 2, "last": 2}, "entry 2 is missing"),
    BreakCode.MISSING_FROM_END: ({"first": 2, "last": 3}, "entries 2 to 3 are missing from the end"),
    BreakCode.HEAD_MISSING: ({}, "the log's record of its last entry is missing"),
    BreakCode.ADDED_AFTER_HEAD: ({"head": 2}, "the log ends at entry 2; later ones were added"),
    BreakCode.LOG_GONE: (
        {"last": 3, "checkpoint_at": CHECKPOINT_AT},
        "entries 1 to 3 are missing: the tenant's whole log is gone, and the checkpoint of 2026-01-05 09:15:00 UTC "
        "saw 3",
    ),
    BreakCode.HEAD_MOVED_BACK: (
        {"first": 3, "last": 3, "head": 2, "checkpoint_at": CHECKPOINT_AT},
        "entry 3 is missing from the end, and the log's head was moved back to entry 2: the checkpoint of "
        "2026-01-05 09:15:00 UTC saw 3 entries",
    ),
    BreakCode.DATA_CHANGED: ({}, "its data is not the data it was logged with"),
    BreakCode.UNSIGNED_AFTER_SIGNED: (
        {},
        "it is not signed, yet it follows signed entries: it was rewritten by someone without the key",
    ),
    BreakCode.NOT_ITS_HASH: ({}, "its content (who, what, why, when…) no longer matches its hash"),
    BreakCode.NOT_ITS_SIGNATURE: ({}, "its content (who, what, why, when…) no longer matches its signature"),
    BreakCode.NOT_THE_START: ({}, "it does not start the chain: earlier entries were removed"),
    BreakCode.REWRITTEN_BEFORE: ({"next": 3}, "it was rewritten after entry 3 recorded its hash"),
    BreakCode.HEAD_HASH_CHANGED: ({}, "it was rewritten after the log recorded its hash"),
    BreakCode.NOT_AS_CHECKPOINTED: (
        {"checkpoint_at": CHECKPOINT_AT},
        "it is not the entry the checkpoint of 2026-01-05 09:15:00 UTC saw: it, or entries before it, were "
        "rewritten and re-hashed",
    ),
    BreakCode.KEY_NOT_CONFIGURED: (
        {"key": "0a1b2c3d4e5f6a7b"},
        "it names key 0a1b2c3d4e5f6a7b, which is not configured, so it cannot be checked: list the key that signed "
        "it in COS_SECRET_KEYS (after a rotation, old keys stay listed for what they signed)",
    ),
}


@pytest.mark.parametrize("code", list(BreakCode), ids=lambda code: code.name)
def test_every_break_of_the_decision_log_reads_in_words_from_exactly_its_details(code: BreakCode) -> None:
    details, said = BREAKS_SAID[code]
    assert set(details) == set(code.details)
    assert set(BREAKS) == set(BreakCode)
    assert break_text(ChainBreak("contoso", 2, BreakKind.EDITED, code, **details)) == said


FLAWS_SAID: dict[CheckpointFlaw, tuple[dict[str, object], str]] = {
    CheckpointFlaw.NOT_A_CHECKPOINT: ({}, "it is not a decision log checkpoint"),
    CheckpointFlaw.OTHER_FORMAT: ({"format": 2}, "its format is 2, not the one this version writes"),
    CheckpointFlaw.KEY_NOT_CONFIGURED: (
        {"key": "0a1b2c3d4e5f6a7b"},
        "it was signed with key 0a1b2c3d4e5f6a7b, which is not configured",
    ),
    CheckpointFlaw.SIGNATURE_FAILS: ({}, "its signature does not match its content: it was edited"),
    CheckpointFlaw.UNREADABLE_BODY: ({}, "it is signed, yet not a checkpoint this version reads"),
}


@pytest.mark.parametrize("flaw", list(CheckpointFlaw), ids=lambda flaw: flaw.name)
def test_every_reason_a_checkpoint_cannot_be_trusted_reads_in_words(flaw: CheckpointFlaw) -> None:
    details, said = FLAWS_SAID[flaw]
    assert set(details) == set(flaw.details)
    assert set(CHECKPOINT_FLAWS) == set(CheckpointFlaw)
    assert checkpoint_flaw_text(flaw, details) == said
