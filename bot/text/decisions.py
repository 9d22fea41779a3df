"""A decision of the log in plain words (`why T12`, `why decision 17`): when, who, what, under which rules, why."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from bot.text.gates import gate_name, policy_reasons_text
from bot.text.numbers import plain
from planner.domain.decisions import BreakCode, ChainBreak, CheckpointFlaw, Decision
from planner.domain.governance import REASON_KEY, LogReason, policy_reason_of_json
from planner.domain.model import Event

_WHO = {"policy": "the policy engine", "llm": "the assistant", "bot": "the bot", "system": "the bot"}
_DID = {
    "go": "{who} allowed {what}",
    "flag": "{who} held {what} for a person's approval",
    "stop": "{who} stopped {what}",
    "approved": "{who} approved {what}",
    "rejected": "{who} rejected {what}",
    "expired": "{what} expired with no answer",
    "refused": "the bot refused {who}'s decision on {what}",
    "done": "{who} completed {what}",
    "succeeded": "{who} completed {what}",
    "failed": "{who} tried {what}, which failed",
}
_ACTIONS = {
    "approval.requested": "{who} asked a person to approve {what}",
    "approval.expired": "the approval request for {what} expired with no answer",
}
_NOUNS = {
    "delegation": "the delegation",
    "approval": "the approval request",
    "nudge": "the nudge",
    "tool_call": "the tool call",
    "plan": "the plan change",
    "plan_change": "the plan change",
}
_SUBJECTS = {"task": "task T{}", "plan": "plan P{}", "delegation": "delegation D{}", "approval": "approval request A{}"}


def describe_subject(subject: str) -> str:
    """`task:12` → `task T12`, `delegation:5` → `delegation D5`, `plan:3` → `plan P3`, `role:legal` → `role legal`."""
    kind, _, ident = subject.partition(":")
    template = _SUBJECTS.get(kind)
    if template and ident:
        return template.format(ident)
    return f"{kind} {ident}" if ident else subject


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _said(data: Mapping[str, Any], key: str = "reasons") -> str:
    stored = data.get(key)
    return policy_reasons_text(policy_reason_of_json(r) for r in (stored if isinstance(stored, list) else []))


def _user(data: Mapping[str, Any], names: Mapping[str, str]) -> str:
    user = _text(data.get("user")) or "someone"
    return names.get(user, user)


def _expiry(data: Mapping[str, Any]) -> str:
    try:
        at = datetime.fromisoformat(str(data.get("expires_at"))).astimezone(UTC)
    except ValueError:
        return "Nobody decided in time; the action was not taken."
    return f"Nobody decided by {at:%Y-%m-%d %H:%M} UTC; the action was not taken."


_REFUSALS = {
    "NotAuthenticated": "only a person signed in to Teams may decide it.",
    "NotAPerson": "only a person may decide it.",
    "SelfApproval": "whoever asked for it may not approve it.",
    "NotAnApprover": "only its approvers may decide it (whoever holds the {roles} role).",
}


def _refusal(data: Mapping[str, Any]) -> str:
    roles = data.get("roles")
    named = " or ".join(map(str, roles)) if isinstance(roles, list) and roles else "approver"
    said = _REFUSALS.get(str(data.get("refusal")), "they may not decide it.")
    return said.format(roles=named)


_REASONS: Mapping[LogReason, Callable[[Decision, Mapping[str, str]], str]] = {
    LogReason.CALL_ALLOWED: lambda d, names: _said(d.data),
    LogReason.CALL_STOPPED: lambda d, names: _said(d.data),
    LogReason.CALL_HELD: lambda d, names: _said(d.data),
    LogReason.CALL_CANNOT_WAIT: lambda d, names: (
        f"{_said(d.data)}; it was not made, as only a delegation can wait for a person's approval"
    ),
    LogReason.CALL_APPROVED: lambda d, names: f"approved as A{d.data.get('approval')}; {_said(d.data)}",
    LogReason.APPROVER_ASSIGNED: lambda d, names: (
        f"{_user(d.data, names)} may now approve what needs the {d.data.get('role')} role."
    ),
    LogReason.APPROVER_UNASSIGNED: lambda d, names: (
        f"{_user(d.data, names)} no longer approves what needs the {d.data.get('role')} role."
    ),
    LogReason.GATE_MAPPED: lambda d, names: (
        f"The {d.data.get('role')} role approves {gate_name(str(d.data.get('category')))} from now on."
    ),
    LogReason.APPROVAL_REQUESTED: lambda d, names: _said(d.data, "policy_reasons"),
    LogReason.APPROVAL_DECIDED: lambda d, names: (
        f"{'Approved' if d.verdict == 'approved' else 'Rejected'} by an approver in Teams."
    ),
    LogReason.APPROVAL_EXPIRED: lambda d, names: _expiry(d.data),
    LogReason.APPROVAL_REFUSED: lambda d, names: _refusal(d.data),
    LogReason.SAMPLING_DECLINED: lambda d, names: (
        f"{_text(d.data.get('agent'))} asked to use the bot's model; declined: {_said(d.data)}"
    ),
    LogReason.SAMPLING_FAILED: lambda d, names: (
        f"{_text(d.data.get('agent'))} was lent the bot's model, which could not answer ({_text(d.data.get('error'))})"
    ),
    LogReason.SAMPLING_LENT: lambda d, names: (
        f"{_text(d.data.get('agent'))} used the bot's model ({_text(d.data.get('model'))}) for a call"
    ),
}
"""Each reason the system logs, in words, from the entry and the display names of the people its data names."""


_CODES = frozenset(reason.value for reason in LogReason)


def rationale_text(decision: Decision, *, names: Mapping[str, str] | None = None) -> str:
    """Why, in words: a person's own note as they wrote it (and entries logged before reasons were codes, as they
    were logged), else the words for the reason code its data holds; empty when it holds none this version knows."""
    if decision.rationale.strip():
        return decision.rationale.strip()
    code = decision.data.get(REASON_KEY)
    if code not in _CODES:
        return ""
    return _REASONS[LogReason(code)](decision, names or {})


def people_in(decision: Decision) -> list[str]:
    """The user ids an entry names that its words show by name: who acted, and the person an approver change is
    about."""
    return [decision.actor, *filter(None, [_text(decision.data.get("user"))])]


def explain(decision: Decision, *, names: Mapping[str, str] | None = None) -> str:
    """The decision in plain words: when, who, what, for what, under which rules, why, and the approval.

    `names` maps user ids to display names.
    """
    actor, data = decision.actor, decision.data
    if actor.startswith("agent:"):
        who = f"agent {actor.removeprefix('agent:')}"
    else:
        who = _WHO.get(actor) or (names or {}).get(actor, actor)
    action = data.get("action")
    nested: dict[str, Any] = action if isinstance(action, dict) else {}
    candidates = (
        data.get("capability"),
        data.get("name"),
        data.get("operation"),
        nested.get("name"),
        data.get("action"),
    )
    name = next(filter(None, map(_text, candidates)), None)
    agent = decision.agent if not actor.startswith("agent:") else None
    first, _, last = decision.action.partition(".")
    noun = _NOUNS.get(first, "the " + first.replace("_", " "))
    what = f"agent {agent}'s {name or noun.removeprefix('the ')}" if agent else (name or noun)
    if decision.subject:
        what += f" for {describe_subject(decision.subject)}"
    verdict = decision.verdict.lower()
    template = _ACTIONS.get(decision.action) or _DID.get(verdict, "{who} decided {what}: {verdict}")
    if verdict in ("done", "succeeded") and last.endswith("ed") and not name:
        # `approvers.assigned`: say what was done (`assigned approvers`) rather than "completed the approvers".
        template, what = "{who} {did} {what}", what.replace(noun, first.replace("_", " "), 1)
    at = decision.at.astimezone(UTC)
    text = f"On {at:%Y-%m-%d} at {at:%H:%M} UTC, " + template.format(
        who=who, what=what, verdict=decision.verdict, did=last.replace("_", " ")
    )
    rationale = rationale_text(decision, names=names).rstrip(".")
    if decision.rules:
        label = "rule" if len(decision.rules) == 1 else "rules"
        text += f": {label} {_and(list(decision.rules))} matched"
        if rationale:
            text += f" ({rationale})"
    elif rationale:
        text += f": {rationale}"
    approval = f"request A{decision.approval_id}" if decision.approval_id is not None else "none"
    return f"{text}. Approval: {approval}."


_CHANGED = {
    "task.updated": "edited",
    "task.assigned": "reassigned",
    "task.moved": "moved",
    "task.deleted": "deleted",
    "task.restored": "restored",
    "plan.updated": "edited",
    "plan.archived": "archived",
    "plan.unarchived": "brought back",
    "task.undone": "undid an edit of",
    "plan.undone": "undid an edit of",
}
EXPLAINED_CHANGES = frozenset(_CHANGED)
"""The kinds of events `why` explains beside the decision log: the fixes people make to tasks and plans."""
_FIELDS = {
    "title": "title",
    "due_on": "due date",
    "owner": "owner",
    "plan_id": "plan",
    "milestone": "milestone",
    "window": "window",
    "constraints": "constraints",
    "targets": "KPI targets",
}


def _shown(field: str, value: Any, names: Mapping[str, str]) -> str:
    if field == "owner":
        return names.get(value, value) if value else "nobody"
    if field == "plan_id":
        return f"P{value}"
    if field == "milestone":
        return "yes" if value else "no"
    if field == "window" and isinstance(value, Mapping):
        return f"{value.get('start')} to {value.get('end')}"
    if field == "targets" and isinstance(value, Mapping):
        return "; ".join(f"{name} {plain(target)}" for name, target in value.items()) or "none"
    if isinstance(value, list):
        return "; ".join(map(str, value)) or "none"
    return f"“{value}”" if field == "title" else str(value)


def explain_change(event: Event, *, names: Mapping[str, str] | None = None) -> str:
    """A fix someone made to a task or plan, from its event: when, who, what, and each field from what to what.

    `names` maps user ids (the actor, owners) to display names."""
    names = names or {}
    who = _WHO.get(event.actor) or names.get(event.actor, event.actor)
    what = describe_subject(f"{event.subject_type}:{event.subject_id}")
    at = event.at.astimezone(UTC)
    text = f"On {at:%Y-%m-%d} at {at:%H:%M} UTC, {who} {_CHANGED.get(event.kind, 'changed')} {what}"
    before, after = event.before or {}, event.after or {}
    if event.kind == "task.deleted" and before:
        title, due, plan = before.get("title"), before.get("due_on"), before.get("plan_id")
        return f"{text} (“{title}”, due {due}, in plan P{plan}); the log keeps what it was."
    if event.kind == "task.restored":
        was = before.get("id")
        return text + (f", deleted as T{was} before." if was not in (None, event.subject_id) else ", as it was.")
    changed = [
        f"{label} from {_shown(field, before.get(field), names)} to {_shown(field, after.get(field), names)}"
        for field, label in _FIELDS.items()
        if field in after and before.get(field) != after.get(field)
    ]
    if event.kind == "plan.undone" and before.get("archived_at") and not after.get("archived_at"):
        changed.append("archived no more, back in use")
    return text + (": " + "; ".join(changed) if changed else "") + "."


BREAKS: dict[BreakCode, str] = {
    BreakCode.OUT_OF_PLACE: "entry {entry} follows the entry now numbered {follows}, not entry {expected}",
    BreakCode.MOVED: "it was logged as entry {logged_as}, and has been moved",
    BreakCode.FOLLOWS_ANOTHER: "it follows the entry now numbered {follows} in the chain, not entry {expected}",
    BreakCode.MISSING: "{entries} missing",
    BreakCode.MISSING_FROM_END: "{entries} missing from the end",
    BreakCode.HEAD_MISSING: "the log's record of its last entry is missing",
    BreakCode.ADDED_AFTER_HEAD: "the log ends at entry {head}; later ones were added",
    BreakCode.LOG_GONE: (
        "{entries} missing: the tenant's whole log is gone, and the checkpoint of {checkpoint_at} saw {last}"
    ),
    BreakCode.HEAD_MOVED_BACK: (
        "{entries} missing from the end, and the log's head was moved back to entry {head}: the checkpoint of "
        "{checkpoint_at} saw {last} entries"
    ),
    BreakCode.DATA_CHANGED: "its data is not the data it was logged with",
    BreakCode.UNSIGNED_AFTER_SIGNED: (
        "it is not signed, yet it follows signed entries: it was rewritten by someone without the key"
    ),
    BreakCode.NOT_ITS_HASH: "its content (who, what, why, when…) no longer matches its hash",
    BreakCode.NOT_ITS_SIGNATURE: "its content (who, what, why, when…) no longer matches its signature",
    BreakCode.NOT_THE_START: "it does not start the chain: earlier entries were removed",
    BreakCode.REWRITTEN_BEFORE: "it was rewritten after entry {next} recorded its hash",
    BreakCode.HEAD_HASH_CHANGED: "it was rewritten after the log recorded its hash",
    BreakCode.NOT_AS_CHECKPOINTED: (
        "it is not the entry the checkpoint of {checkpoint_at} saw: it, or entries before it, were rewritten and "
        "re-hashed"
    ),
    BreakCode.KEY_NOT_CONFIGURED: (
        "it names key {key}, which is not configured, so it cannot be checked: list the key that signed it in "
        "COS_SECRET_KEYS (after a rotation, old keys stay listed for what they signed)"
    ),
}
"""What is wrong at a chain's break, from its details; `{entries}` is the entries from `first` (1 when the whole log
is gone) to `last`, as `entry 2 is` or `entries 2 to 3 are` (a test keeps every code here)."""


def break_text(broken: ChainBreak) -> str:
    """What is wrong at the break, in plain text: `entries 2 to 3 are missing from the end`."""
    shown = {name: _break_detail(value) for name, value in broken.details.items()}
    if "last" in broken.details:
        first, last = broken.details.get("first", 1), broken.details["last"]
        shown["entries"] = f"entry {first} is" if first == last else f"entries {first} to {last} are"
    return BREAKS[broken.why].format_map(shown)


def _break_detail(value: object) -> str:
    if isinstance(value, datetime):
        return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    return str(value)


CHECKPOINT_FLAWS: dict[CheckpointFlaw, str] = {
    CheckpointFlaw.NOT_A_CHECKPOINT: "it is not a decision log checkpoint",
    CheckpointFlaw.OTHER_FORMAT: "its format is {format}, not the one this version writes",
    CheckpointFlaw.KEY_NOT_CONFIGURED: "it was signed with key {key}, which is not configured",
    CheckpointFlaw.SIGNATURE_FAILS: "its signature does not match its content: it was edited",
    CheckpointFlaw.UNREADABLE_BODY: "it is signed, yet not a checkpoint this version reads",
}
"""Why a checkpoint cannot be trusted, from its details (a test keeps every flaw here)."""


def checkpoint_flaw_text(why: CheckpointFlaw, details: Mapping[str, object]) -> str:
    """`it was signed with key 0a1b…, which is not configured`."""
    return CHECKPOINT_FLAWS[why].format_map({name: _shown_flaw(value) for name, value in details.items()})


def _shown_flaw(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
