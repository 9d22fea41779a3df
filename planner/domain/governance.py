"""Governance vocabulary shared by the policy engine, the approval gates and the decision log.

Before any agent action, LLM tool call or outbound nudge reaches the world, it is described as an `Action`;
the policy engine (`planner/services/policy.py`) answers a `PolicyDecision` (go / flag / stop, with the rules that
matched); a flag becomes an approval request (`planner/services/approvals.py`) that only a permitted person can decide;
and every decision is written to the hash-chained decision log (`planner/services/decisions.py`) as a `DecisionRecord`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

ACCOUNT_KEYS = ("account", "accounts", "account_id", "customer", "customers", "customer_id")
"""Where an action's arguments name the customers or accounts it touches."""


class Verdict(StrEnum):
    GO = "go"
    FLAG = "flag"
    """Allowed only once a permitted person approves it."""
    STOP = "stop"


class ActionKind(StrEnum):
    DELEGATION = "delegation"
    """A task handed to a vendor agent (attributes: adapter, capability, input)."""
    TOOL_CALL = "tool_call"
    """An LLM tool call (attributes: operation, arguments)."""
    NUDGE = "nudge"
    """An outbound message to a person (attributes: message kind)."""
    PLAN_CHANGE = "plan_change"
    """An operation that changes plans, tasks or KPIs (attributes: its arguments)."""
    READ = "read"
    """An operation that only reads (attributes: its arguments)."""
    SETTING = "setting"
    """An operation that changes how the bot works: follow-up, adapters, approvers, rules (attributes: arguments)."""
    SAMPLING = "sampling"
    """An agent asking, mid-call, to use the bot's language model (agent: the adapter; attributes: max_tokens)."""


OPERATION_KINDS = (ActionKind.READ, ActionKind.PLAN_CHANGE, ActionKind.SETTING)
"""The kinds the bot's operations declare. A rule about `tool_call` (the kind the model's calls had before every
operation was gated alike) is about all three, whoever asks: a person, a card or the model."""


class GateCategory(StrEnum):
    """What always needs a human's approval, whatever the rules say."""

    STRATEGY = "strategy"
    """Master plan goals and targets."""
    AUDIENCE = "audience"
    BUDGET = "budget"
    REGULATED_CLAIM = "regulated_claim"
    BRAND_CREATIVE = "brand_creative"
    PERSONAL_DATA = "personal_data"


@dataclass(frozen=True, kw_only=True)
class Action:
    """Something about to reach the world, described for the policy engine."""

    tenant_id: str
    kind: ActionKind
    actor: str
    """Who or what acts: a user id, `agent:<adapter>`, `llm` or `bot`."""
    on_behalf_of: str | None = None
    """The person the actor acts for (the one who asked the model), if not the actor itself."""
    agent: str | None = None
    """The adapter it goes through, if any (rules can be per agent)."""
    name: str = ""
    """The action itself: a capability (`send_email`), an operation, a message kind."""
    subject: str = ""
    """What it is about: `task:12`, `delegation:3`, `plan:1`."""
    accounts: tuple[str, ...] = ()
    """Customer or account ids it touches (policies read shared context about them)."""
    attributes: dict[str, Any] = field(default_factory=dict)
    """Numbers and labels rules compare (`discount: 20`, `channel: email`, `categories: [...]`)."""
    categories: tuple[GateCategory, ...] = ()
    """Approval gates this action falls under (a strategy change, an audience definition…)."""


_GATES = frozenset(category.value for category in GateCategory)


@dataclass(frozen=True, kw_only=True)
class DestructiveTool:
    """Why a call of a tool its server marks destructive needs a person, whatever the rules say."""

    agent: str
    capability: str


@dataclass(frozen=True, kw_only=True)
class OverLimit:
    """A limit of an allow rule an action went over: the attribute at `path` is `actual`, and the rule allows only
    what compares to `limit` by `operator` (`le`, `lt`, `eq`, `in`…, as the rule document writes it)."""

    path: str
    actual: Any
    operator: str
    limit: Any


@dataclass(frozen=True, kw_only=True)
class OverLimits:
    """Why an allow rule did not let an action go: the admin's `description` of the rule (their own words), and the
    limits the action went over, which the bot words."""

    description: str
    over: tuple[OverLimit, ...]

    def __str__(self) -> str:
        """For logs: the description, and each limit as data (`discount=20 le 15`)."""
        shown = ", ".join(f"{o.path}={o.actual!r} {o.operator} {o.limit!r}" for o in self.over)
        return f"{self.description} [{shown}]"


PolicyReason = str | GateCategory | DestructiveTool | OverLimits
"""Why a rule matched: the admin's description of their rule (their own words, shown as they are), with the limits
an action went over when it is an allow rule's (`OverLimits`); or, for what needs a person whatever the rules say, the
approval gate an action falls under (`GateCategory`) or the destructive tool it calls. The bot words them
(bot/text/gates.py)."""


@dataclass(frozen=True, kw_only=True)
class RuleMatch:
    """A rule that matched an action, and what it said: an admin's rule its description; a gate (`rule_id`
    `gate:<category>`) its category."""

    rule_id: str
    verdict: Verdict
    reason: PolicyReason


def gate_match(category: GateCategory) -> RuleMatch:
    """What a gate category says of an action in it: it needs a person (flag), whatever the rules say."""
    return RuleMatch(rule_id=f"gate:{category.value}", verdict=Verdict.FLAG, reason=category)


def policy_reason_json(reason: PolicyReason) -> str | dict[str, Any]:
    """A reason as JSON data (an approval request keeps the reasons it was asked for): a gate as `{"gate": <category>}`,
    a destructive tool as `{"destructive": {"agent": …, "capability": …}}`, limits gone over as `{"over_limits":
    {"description": …, "over": [{"path": …, "actual": …, "operator": …, "limit": …}]}}`, a description as its text."""
    if isinstance(reason, GateCategory):
        return {"gate": reason.value}
    if isinstance(reason, DestructiveTool):
        return {"destructive": {"agent": reason.agent, "capability": reason.capability}}
    if isinstance(reason, OverLimits):
        over = [
            {"path": o.path, "actual": _plain(o.actual), "operator": o.operator, "limit": _plain(o.limit)}
            for o in reason.over
        ]
        return {"over_limits": {"description": reason.description, "over": over}}
    return reason


def _plain(value: Any) -> Any:
    """A compared value as JSON keeps it: text, a number, true/false, null or a list of them; anything else as text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return str(value)


def policy_reason_of_json(stored: object) -> PolicyReason:
    """The reason `policy_reason_json` wrote; text as it was (requests asked before reasons were data hold words)."""
    if not isinstance(stored, Mapping):
        return stored if isinstance(stored, str) else ""
    gate, tool, limits = stored.get("gate"), stored.get("destructive"), stored.get("over_limits")
    if gate in _GATES:
        return GateCategory(gate)
    if isinstance(tool, Mapping) and isinstance(tool.get("agent"), str) and isinstance(tool.get("capability"), str):
        return DestructiveTool(agent=tool["agent"], capability=tool["capability"])
    if isinstance(limits, Mapping) and isinstance(limits.get("description"), str):
        over = limits.get("over")
        return OverLimits(
            description=limits["description"],
            over=tuple(
                OverLimit(
                    path=str(o.get("path")),
                    actual=o.get("actual"),
                    operator=str(o.get("operator")),
                    limit=o.get("limit"),
                )
                for o in (over if isinstance(over, list) else [])
                if isinstance(o, Mapping)
            ),
        )
    return ""


@dataclass(frozen=True, kw_only=True)
class PolicyDecision:
    """The engine's answer: the strictest verdict of the rules that matched (go when none did)."""

    verdict: Verdict
    matched: tuple[RuleMatch, ...] = ()
    facts: tuple[str, ...] = ()
    """References of the shared-context facts the rules read (for the decision log)."""
    gates: tuple[GateCategory, ...] = ()
    """The approval gates the rules that flagged or stopped it put it under (`gates: [budget]` in a rule): their
    approvers are asked, besides those of the action's own categories."""

    @property
    def reasons(self) -> list[PolicyReason]:
        """What the rules that matched said, strictest first."""
        return [m.reason for m in self.matched]


@dataclass(frozen=True, kw_only=True)
class DecisionRecord:
    """What the decision log is asked to keep (the log adds its position, time and hashes)."""

    tenant_id: str
    actor: str
    """Who or which agent decided or acted: a user id, `agent:<adapter>`, `llm`, `bot`, `policy`."""
    action: str
    """What was decided, e.g. `delegation.run`, `approval.granted`, `nudge.stopped`."""
    subject: str
    """`task:12`, `delegation:3`, `plan:1`…: what `why` looks up."""
    verdict: str
    """go / flag / stop, or approved / rejected / expired, or done / failed."""
    rationale: str = ""
    """Why, in a person's own words (an approver's note); empty when the system logs it: it says why with a
    `LogReason` in the data (`data["reason"]`), which the bot words. Entries logged before the codes hold English."""
    data: dict[str, Any] = field(default_factory=dict)
    """The data it was decided on (references, values); the log keeps it and its hash."""
    rules: tuple[str, ...] = ()
    """Ids of the policy rules that matched."""
    approval_id: int | None = None
    at: datetime | None = None
    """When; the log's clock by default."""


class LogReason(StrEnum):
    """Why the system wrote an entry of the decision log, kept in its data as `reason` beside what the words need;
    the bot words it (bot/text/decisions.py). The data each one carries is listed."""

    CALL_ALLOWED = "call.allowed"
    """The gate let an agent's call go, as the rules said (`reasons`)."""
    CALL_STOPPED = "call.stopped"
    """The gate stopped an agent's call (`reasons`)."""
    CALL_HELD = "call.held"
    """The gate held a delegation for a person's approval (`reasons`)."""
    CALL_CANNOT_WAIT = "call.cannot_wait"
    """The gate did not make a call that needs a person, since only a delegation can wait (`reasons`)."""
    CALL_APPROVED = "call.approved"
    """A held delegation goes ahead: its approval request (`approval`) was approved (`reasons`)."""
    APPROVER_ASSIGNED = "approver.assigned"
    """A person (`user`) may now approve what needs a role (`role`)."""
    APPROVER_UNASSIGNED = "approver.unassigned"
    """A person (`user`) no longer approves what needs a role (`role`)."""
    GATE_MAPPED = "gate.mapped"
    """A role (`role`) approves a gate (`category`) from now on."""
    APPROVAL_REQUESTED = "approval.requested"
    """An action waits for a person's approval (`approval`), for what the rules said (`policy_reasons`); what the
    asker said, if anything, is the entry's rationale."""
    APPROVAL_DECIDED = "approval.decided"
    """An approver approved or rejected a request (the entry's verdict); a note they typed is the entry's rationale."""
    APPROVAL_EXPIRED = "approval.expired"
    """Nobody decided a request by its deadline (`expires_at`); its action was not taken."""
    APPROVAL_REFUSED = "approval.refused"
    """Someone who may not decide a request tried to (`refusal`: the ApprovalRefused's name; `roles`: its roles)."""
    SAMPLING_DECLINED = "sampling.declined"
    """The gate did not lend the bot's model to an agent (`agent`) that asked (`reasons`; the verdict)."""
    SAMPLING_FAILED = "sampling.failed"
    """The bot's model was lent to an agent (`agent`) but could not answer (`error`)."""
    SAMPLING_LENT = "sampling.lent"
    """An agent (`agent`) used the bot's model (`model`) for a call."""


REASON_KEY = "reason"
"""The key of a system-written entry's data that holds its `LogReason`."""


def accounts_in(arguments: Mapping[str, Any]) -> tuple[str, ...]:
    """The customer or account ids named in an action's arguments (`account`, `accounts`, `customer`…), in order."""
    found: list[str] = []
    for key in ACCOUNT_KEYS:
        value = arguments.get(key)
        if value is None:
            continue
        values = [value] if isinstance(value, str | int) and not isinstance(value, bool) else value
        if isinstance(values, list | tuple):
            found.extend(str(v).strip() for v in values if isinstance(v, str | int) and not isinstance(v, bool))
    return tuple(dict.fromkeys(a for a in found if a))


def policy_record(action: Action, decision: PolicyDecision, reason: LogReason, **data: Any) -> DecisionRecord:
    """The decision log's entry for the policy engine's verdict on `action`, `reason` saying why, with what the rules
    said (`reasons`); extra `data` is kept with it."""
    return DecisionRecord(
        tenant_id=action.tenant_id,
        actor="policy",
        action=f"{action.kind.value}.{decision.verdict.value}",
        subject=action.subject or f"{action.kind.value}:{action.name}",
        verdict=decision.verdict.value,
        data={
            REASON_KEY: reason.value,
            "reasons": [policy_reason_json(said) for said in decision.reasons],
            "actor": action.actor,
            **({"on_behalf_of": action.on_behalf_of} if action.on_behalf_of else {}),
            "agent": action.agent,
            "name": action.name,
            "accounts": list(action.accounts),
            "attributes": action.attributes,
            "facts": list(decision.facts),
            **data,
        },
        rules=tuple(m.rule_id for m in decision.matched),
    )
