"""The policy gate in front of every agent: go lets the call through, flag holds it for a person, stop refuses it.

`PolicyGuard` is the `Gate` of the agents the registry hands out (`planner/governance/gated_agent.py`): asked before
each call, it describes the call as an `Action` (the adapter, the capability, the input's values and the accounts it
names, who asks) and asks the policy engine, under the rules in force at that moment, so a rule loaded a second ago
applies to every adapter's next call, whoever makes it (a delegation, a metric feed pull).

- go: the call goes ahead (logged when a rule spoke for it);
- stop: `DelegationStopped` with the rules' reasons;
- flag: for a call that carries out a stored delegation, an approval request goes to the approvers of the gate (by
  role), and `DelegationHeld` holds the delegation until it is decided. Once approved it runs, unless a rule stops
  it by then: an approval never outweighs a stop. Rejected or expired, it is stopped. A request is asked for once
  per delegation: running it again while the request is pending holds it again. A call that carries out no
  delegation (a pull on a schedule) cannot wait for a person, so a flag stops it.

A call of a capability an admin classified under approval gates (`Registry.classify`: an audience builder is an
audience definition, a CRM export touches personal data) falls under those gates whatever its input says: it is
flagged, and their approvers are asked. The input's `"categories": [...]` and the policy rules' `gates` can only add
gates; nothing a requester writes takes one away.

A call to a tool its server marks destructive (`destructiveHint: true` in the definition an admin enabled, see
planner/services/tools.py) is flagged whatever the rules say: every such delegation waits for a person's approval.
Rules see it as the attribute `destructive: true`.

Every verdict other than a silent go is written to the decision log with the rules, the facts and the approval.
Nothing the agent or a model says can approve: only `Approvals.decide`, for an authenticated approver, can.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from planner.domain.approvals import DEFAULT_EXPIRY, ApprovalRequest, ApprovalStatus, NoApprovers
from planner.domain.governance import (
    Action,
    ActionKind,
    DecisionRecord,
    DestructiveTool,
    GateCategory,
    LogReason,
    PolicyDecision,
    RuleMatch,
    Verdict,
    accounts_in,
    policy_record,
)
from planner.governance.gated_agent import AgentCall, DelegationHeld, DelegationStopped, StopCause
from planner.services.approvals import Approvals
from planner.services.policy import PolicyEngine
from planner.store import Store
from planner.store.adapters import gates_of, tool_of

if TYPE_CHECKING:
    from planner.domain.delegations import Delegation

Record = Callable[[DecisionRecord], Awaitable[object]]

_CATEGORIES = {category.value: category for category in GateCategory}
_GRANTED = (ApprovalStatus.APPROVED, ApprovalStatus.RESUMED)
_GATES = "categories"
"""The input's key that declares the gate categories a call falls under."""


DESTRUCTIVE_RULE = "tool:destructive"
"""The id under which a destructive tool's flag is logged, beside the rules' ids."""


def call_action(call: AgentCall, *, destructive: bool = False, classified: tuple[GateCategory, ...] = ()) -> Action:
    """The call as the policy engine sees it: attributes are the input's values (so `discount` and `input.discount`
    both reach them) with the adapter, capability, task and who asked, and `destructive: true` for a tool its server
    marks so; categories are the gates an admin classified the capability under (`classified`), then those the input
    declares (`"categories": ["budget"]`): the input adds gates, never removes one. Rules see them as `categories`."""
    request = call.request
    declared = request.input.get(_GATES)
    names = [declared] if isinstance(declared, str) else declared if isinstance(declared, list) else []
    categories = tuple(
        dict.fromkeys((*classified, *(_CATEGORIES[n] for n in names if isinstance(n, str) and n in _CATEGORIES)))
    )
    attributes: dict[str, Any] = {
        **request.input,
        "input": request.input,
        "adapter": call.adapter,
        "adapter_kind": call.adapter_kind,
        "capability": request.capability,
        "task": request.task_id,
        "requested_by": request.requested_by or None,
        _GATES: [category.value for category in categories],
    }
    if destructive:
        attributes["destructive"] = True
    return Action(
        tenant_id=call.tenant_id,
        kind=ActionKind.DELEGATION,
        actor=f"agent:{call.adapter}",
        agent=call.adapter,
        name=request.capability,
        subject=_subject(call),
        accounts=accounts_in(request.input),
        attributes=attributes,
        categories=categories,
    )


def delegation_action(delegation: Delegation) -> Action:
    """The delegation as the policy engine sees it (`call_action` of the call that carries it out)."""
    return call_action(AgentCall.of_delegation(delegation))


def _subject(call: AgentCall) -> str:
    request = call.request
    if request.delegation_id is not None:
        return f"delegation:{request.delegation_id}"
    return request.subject or f"agent:{call.adapter}"


class PolicyGuard:
    """Go, flag or stop for the agent calls of one tenant, with its approvals and its decision log."""

    def __init__(
        self,
        store: Store,
        tenant_id: str,
        *,
        record: Record,
        engine: PolicyEngine | None = None,
        approval_expiry: timedelta = DEFAULT_EXPIRY,
    ) -> None:
        self._store = store
        self.tenant_id = tenant_id
        self._record = record
        self._engine = engine or PolicyEngine(store, tenant_id)
        self._approvals = Approvals(store, tenant_id, record=record, expires_in=approval_expiry)

    async def clears(self, call: AgentCall) -> bool:
        """A plain go that no rule spoke of: nothing to record, the call may simply go.

        It reads no tool and no capability's gates (it runs before every delegation, and mostly reads nothing at
        all): a call to a destructive tool or to a capability classified under a gate may be cleared here and is
        flagged when it is made (`__call__`), so its delegation is held then (`Delegations.request` reads both and
        does not start such a delegation at once).
        """
        decision = await self._engine.evaluate(call_action(call))
        return decision.verdict is Verdict.GO and not decision.matched

    async def _classified(self, call: AgentCall) -> tuple[bool, tuple[GateCategory, ...]]:
        """Whether the call goes to a tool an admin enabled with a definition marked destructive, and the gates an
        admin classified its capability under."""
        capability = call.request.capability
        async with self._store.read() as conn:
            tool = await tool_of(conn, call.tenant_id, call.adapter, capability)
            gates = await gates_of(conn, call.tenant_id, call.adapter, capability)
        return tool is not None and tool.destructive, gates

    async def _decide(self, call: AgentCall) -> tuple[Action, PolicyDecision]:
        destructive, classified = await self._classified(call)
        action = call_action(call, destructive=destructive, classified=classified)
        decision = await self._engine.evaluate(action)
        if destructive:
            tool = DestructiveTool(agent=call.adapter, capability=call.request.capability)
            flag = RuleMatch(rule_id=DESTRUCTIVE_RULE, verdict=Verdict.FLAG, reason=tool)
            verdict = Verdict.STOP if decision.verdict is Verdict.STOP else Verdict.FLAG
            decision = replace(decision, verdict=verdict, matched=(*decision.matched, flag))
        return action, decision

    async def __call__(self, call: AgentCall) -> None:
        action, decision = await self._decide(call)
        reasons = tuple(decision.reasons)
        if decision.verdict is Verdict.STOP:
            await self._log(action, decision, LogReason.CALL_STOPPED, call)
            raise DelegationStopped(StopCause.POLICY, reasons)
        if decision.verdict is Verdict.GO:
            if decision.matched:
                await self._log(action, decision, LogReason.CALL_ALLOWED, call)
            return
        delegation_id = call.request.delegation_id
        if delegation_id is None:
            await self._log(action, decision, LogReason.CALL_CANNOT_WAIT, call)
            raise DelegationStopped(StopCause.CANNOT_WAIT, reasons)
        asked = await self._approvals.for_delegation(delegation_id)
        if asked is not None and asked.status in _GRANTED:
            record = policy_record(
                action, decision, LogReason.CALL_APPROVED, task=call.request.task_id, approval=asked.id
            )
            await self._record(replace(record, action="delegation.go", verdict=Verdict.GO.value, approval_id=asked.id))
            return
        if asked is not None and asked.status is ApprovalStatus.PENDING:
            raise DelegationHeld(reasons, asked.id)
        if asked is not None:  # rejected or expired: the answer stands
            raise DelegationStopped(StopCause.ANSWERED, reasons, approval=asked.ref, status=asked.status.value)
        await self._log(action, decision, LogReason.CALL_HELD, call)
        try:
            request = await self._approvals.request(
                action,
                requester=call.request.requested_by,
                resume={"delegation": delegation_id},
                policy=decision,
            )
        except NoApprovers as error:
            raise DelegationStopped(StopCause.NO_APPROVERS, reasons, problem=error) from None
        raise DelegationHeld(reasons, request.id)

    async def _log(self, action: Action, decision: PolicyDecision, reason: LogReason, call: AgentCall) -> None:
        await self._record(policy_record(action, decision, reason, task=call.request.task_id))


@dataclass(frozen=True, kw_only=True)
class ApprovalOutcome:
    """How a decided approval request settles the delegation it holds: `status` is approved (it runs), rejected or
    expired (it does not); `approval` is the request's ref, `by` who decided it and `note` what they wrote. The bot
    words it (bot/text/gates.py)."""

    approval: str
    status: ApprovalStatus
    by: str | None = None
    note: str | None = None

    @property
    def approved(self) -> bool:
        return self.status is ApprovalStatus.APPROVED


def approval_outcome(request: ApprovalRequest) -> ApprovalOutcome | None:
    """Whether a decided approval lets its delegation run, and who decided it; None while nobody decided it."""
    if request.status is ApprovalStatus.PENDING:
        return None
    status = ApprovalStatus.APPROVED if request.status in _GRANTED else request.status
    return ApprovalOutcome(approval=request.ref, status=status, by=request.decided_by, note=request.note or None)
