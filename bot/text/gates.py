"""Why a policy held or stopped something, in words: the approval gates' reasons, and the admins' rule descriptions
as they wrote them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from bot.text.numbers import plain
from planner.domain.approvals import FLAGGED, ApprovalRequest, ApprovalStatus
from planner.domain.governance import DestructiveTool, GateCategory, OverLimit, OverLimits, PolicyReason
from planner.governance.guard import ApprovalOutcome

GATE_REASONS: Mapping[GateCategory, str] = {
    GateCategory.STRATEGY: "A change of strategy (the master plan's goals or targets) needs a person's approval.",
    GateCategory.AUDIENCE: "An audience definition needs a person's approval.",
    GateCategory.BUDGET: "A budget shift needs a person's approval.",
    GateCategory.REGULATED_CLAIM: "A regulated claim needs a person's approval.",
    GateCategory.BRAND_CREATIVE: "Brand-critical creative needs a person's approval.",
    GateCategory.PERSONAL_DATA: "Using personal or sensitive data needs a person's approval.",
}
"""Why an action in a gate category is flagged whatever the rules say."""

GATE_NAMES: Mapping[str, str] = {
    GateCategory.STRATEGY: "strategy changes",
    GateCategory.AUDIENCE: "audience definitions",
    GateCategory.BUDGET: "budget shifts",
    GateCategory.REGULATED_CLAIM: "regulated claims",
    GateCategory.BRAND_CREATIVE: "brand-critical creative",
    GateCategory.PERSONAL_DATA: "the use of personal data",
    FLAGGED: "what the rules flag",
}
"""Each approval gate (the six categories, and `flagged`) as what its approvers approve."""

NO_RULE_OBJECTED = "no rule objected"


def gate_name(gate: str) -> str:
    """`budget` → `budget shifts`; a gate this version does not know, in plain words."""
    return GATE_NAMES.get(gate) or gate.replace("_", " ")


def policy_reason_text(reason: PolicyReason) -> str:
    """A gate's or a destructive tool's reason in words; an admin's rule description as they wrote it."""
    if isinstance(reason, GateCategory):
        return GATE_REASONS[reason]
    if isinstance(reason, DestructiveTool):
        return f"{reason.agent}'s server marks {reason.capability} as destructive: every call needs a person's approval"
    if isinstance(reason, OverLimits):
        return f"{reason.description.rstrip('.')} ({'; '.join(map(over_limit_text, reason.over))})"
    return reason


OPERATORS: Mapping[str, str] = {
    "eq": "=",
    "ne": "≠",
    "lt": "<",
    "le": "≤",
    "gt": ">",
    "ge": "≥",
    "in": "in",
    "contains": "contains",
}
"""How a rule's comparison reads beside its limit: `≤ 15`."""


def over_limit_text(over: OverLimit) -> str:
    """`discount is 20, the limit is ≤ 15`."""
    operator = OPERATORS.get(over.operator, over.operator)
    limit = over.limit if isinstance(over.limit, str) else _compared(over.limit)
    return f"{over.path} is {_compared(over.actual)}, the limit is {operator} {limit}"


def _compared(value: Any) -> str:
    """A value a rule compared: a number as people read it (`12,500`), anything else as its JSON (`"email"`)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return plain(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def request_reason_text(request: ApprovalRequest) -> str:
    """Why a request was asked, in words: what the asker said, else what its action is about to do (an agent's call:
    `hubspot is about to offer_discount for T12`)."""
    if request.reason.strip():
        return request.reason
    action = request.action
    task = action.attributes.get("task")
    about = f" for T{task}" if isinstance(task, int) and not isinstance(task, bool) else ""
    return f"{action.agent or action.actor} is about to {action.name}{about}"


def policy_reasons_text(reasons: Iterable[PolicyReason], *, none: str = NO_RULE_OBJECTED) -> str:
    """The reasons in one line, `; ` between them and no full stop of their own (the line goes inside a sentence);
    `none` when there are none."""
    return "; ".join(policy_reason_text(reason).rstrip(".") for reason in reasons) or none


APPROVAL_OUTCOMES: Mapping[ApprovalStatus, str] = {
    ApprovalStatus.APPROVED: "{approval} approved{by}",
    ApprovalStatus.REJECTED: "Not run: {approval} was rejected{by}{note}.",
    ApprovalStatus.EXPIRED: "Not run: {approval} expired with no answer.",
}
"""Why a held delegation runs once its approval request is decided, or why it does not (what its owner reads as its
error); `{by}` names who decided, `{note}` is what they wrote."""


def approval_outcome_text(outcome: ApprovalOutcome) -> str:
    """`A3 approved by aad-boss`; `Not run: A3 was rejected by aad-boss: too deep.`"""
    by = f" by {outcome.by}" if outcome.by else ""
    note = f": {outcome.note.rstrip('.')}" if outcome.note else ""
    return APPROVAL_OUTCOMES[outcome.status].format(approval=outcome.approval, by=by, note=note)
