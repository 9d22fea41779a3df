"""An approval request: what is asked, by whom, why, on what data and until when, with Approve and Reject.

The same card is updated in place once decided ("Approved by <name> at <time>", rejected or expired), without
buttons. What the action carries is shown as data, never as an instruction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

from bot.cards.actions import execute
from bot.cards.elements import Element, adaptive_card, bullet_list, fact_set, heading, subheading, text_block
from bot.cards.wording import moment_label, number
from bot.parsing import parse_number
from bot.text.gates import policy_reason_text, request_reason_text
from bot.text.numbers import money, quantity
from bot.text.people import person_name
from planner.domain.approvals import FLAGGED, ApprovalRequest, ApprovalStatus

VERB_APPROVE = "approve_request"
VERB_REJECT = "reject_request"
NOTE_INPUT = "note"
NOTE_MAX_LENGTH = 500
MAX_FACTS = 15
MAX_REASONS = 10
MAX_VALUE_CHARS = 300
_SUBJECT = re.compile(r"^(plan|task|delegation|approval):(\d+)$")
_SUBJECT_REFS = {"plan": "P", "task": "T", "delegation": "D", "approval": "A"}

GATE_LABELS: Mapping[str, str] = {
    "strategy": "Strategy change",
    "audience": "Audience definition",
    "budget": "Budget shift",
    "regulated_claim": "Regulated claim",
    "brand_creative": "Brand-critical creative",
    "personal_data": "Personal or sensitive data",
    FLAGGED: "Flagged by a policy",
}


def gate_label(category: str) -> str:
    """How a gate category reads: `Budget shift`."""
    return GATE_LABELS.get(category, category.replace("_", " ").capitalize())


def what_is_asked(request: ApprovalRequest) -> str:
    """The gates an action falls under, or that a policy flagged it: `Budget shift · Regulated claim`."""
    return " · ".join(gate_label(c.value) for c in request.categories) or gate_label(FLAGGED)


def actor_label(actor: str, names: Mapping[str, str]) -> str:
    """A person's name, or what the bot's own actors are: `hubspot (agent)`, `the assistant`."""
    if actor.startswith("agent:"):
        return f"{actor.removeprefix('agent:')} (agent)"
    if actor == "llm":
        return "the assistant"
    if actor in ("bot", "policy", "scheduler", "system"):
        return "Chief of Staff"
    return person_name(actor, names)


def subject_label(subject: str) -> str:
    """What an action is about, as the chat names it: `plan:1` is `P1`, `task:12` is `T12`."""
    found = _SUBJECT.match(subject)
    return f"{_SUBJECT_REFS[found.group(1)]}{found.group(2)}" if found else subject


def _amount(value: object) -> float | None:
    """A number, or a number as typed (`"700"`); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).replace(",", ""))
    except ValueError:
        return None


def _value(value: object) -> str:
    if isinstance(value, bool):
        text = "Yes" if value else "No"
    elif isinstance(value, int | float):
        text = number(value)
    elif isinstance(value, Mapping) and value.get("name") and (target := _amount(value.get("target"))) is not None:
        # A KPI target, as people write it: `SQLs 700`, `pipeline $2M`.
        name, unit = str(value["name"]), str(value.get("unit") or "")
        text = f"{name} {quantity(target, unit, name=name)}"
    elif isinstance(value, Mapping):
        text = ", ".join(f"{k}: {_value(v)}" for k, v in value.items())
    elif isinstance(value, Sequence) and not isinstance(value, str):
        text = ", ".join(_value(v) for v in value)
    else:
        text = str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _facts(request: ApprovalRequest) -> list[tuple[str, str]]:
    action = request.action
    # Operations and capabilities are named in snake case: read as words (`edit master plan`).
    name = (action.name or action.kind.value).replace("_", " ")
    facts = [("Action", f"{name} ({action.kind.value.replace('_', ' ')})")]
    if action.agent:
        facts.append(("Through", action.agent))
    about = subject_label(action.subject) if action.subject else None
    if about:
        facts.append(("About", about))
    if action.accounts:
        facts.append(("Accounts", _value(list(action.accounts))))
    money = _money(action.attributes)
    for key, value in action.attributes.items():
        if key == "currency" and money is not None:
            continue  # said with the amount
        shown = money if key == "amount" and money is not None else _value(value)
        if key != "categories" and value not in (None, "", [], {}) and shown != about:
            facts.append((str(key).replace("_", " ").capitalize(), shown))
    return facts[:MAX_FACTS]


def _money(attributes: Mapping[str, Any]) -> str | None:
    """A budget operation's amount with its currency, as money is written everywhere (`80k` and `USD`: `$80,000`);
    None when the call names no currency or its amount is no number."""
    currency = attributes.get("currency")
    if not isinstance(currency, str) or not currency.strip():
        return None
    try:
        value = parse_number(str(attributes.get("amount")), "an amount")
    except ValueError:
        return None
    return money(value, currency.strip().upper(), exact=True)


def _at(moment: datetime, zone: tzinfo | None) -> str:
    return moment_label(moment.astimezone(zone) if zone else moment)


def _state(request: ApprovalRequest, decider_name: str | None, zone: tzinfo | None) -> Element:
    who = decider_name or request.decided_by or "an approver"
    if request.approved and request.decided_at:
        return text_block(f"Approved by {who} at {_at(request.decided_at, zone)}", weight="bolder", color="good")
    if request.status is ApprovalStatus.REJECTED and request.decided_at:
        return text_block(f"Rejected by {who} at {_at(request.decided_at, zone)}", weight="bolder", color="attention")
    if request.status is ApprovalStatus.EXPIRED:
        return text_block(
            f"Expired at {_at(request.expires_at, zone)}: nobody decided in time, nothing was done.", subtle=True
        )
    return text_block(f"Waiting for a decision until {_at(request.expires_at, zone)}", color="warning")


def approval_card(
    request: ApprovalRequest,
    *,
    requester_name: str,
    decider_name: str | None = None,
    zone: tzinfo | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """The request with Approve/Reject (and an optional note) while pending; its outcome once decided."""
    pending = request.status is ApprovalStatus.PENDING
    title = f"Approval needed: {what_is_asked(request)}" if pending else f"{request.ref}: {what_is_asked(request)}"
    body: list[Element] = [
        heading(title),
        text_block(
            f"{request.ref} · asked by {requester_name} · {_at(request.created_at, zone)}", subtle=True, spacing="none"
        ),
        _state(request, decider_name, zone),
    ]
    if request.note:
        body.append(text_block(f"Note: {request.note}"))
    if note:
        body.append(text_block(note, color="accent"))
    said = [policy_reason_text(reason) for reason in request.policy_reasons[:MAX_REASONS]]
    why = [_value(line) for line in (request_reason_text(request), *said)]
    body.append(subheading("Why it needs a person"))
    body.append(bullet_list([line for line in why if line]))
    roles = ", ".join(request.roles)
    body.append(text_block(f"Approvers: whoever holds the {roles} role; never the one who asked.", subtle=True))
    body.append(subheading("What would happen"))
    body.append(fact_set(_facts(request)))
    actions: list[Element] = []
    if pending:
        body.append(
            {
                "type": "Input.Text",
                "id": NOTE_INPUT,
                "label": "Note for the decision log (optional)",
                "placeholder": "Why you approve or reject it",
                "isMultiline": True,
                "maxLength": NOTE_MAX_LENGTH,
            }
        )
        data: dict[str, object] = {"approval": request.id}
        actions = [
            execute("Approve", VERB_APPROVE, data, style="positive"),
            execute("Reject", VERB_REJECT, data, style="destructive"),
        ]
    return adaptive_card(body, actions)
