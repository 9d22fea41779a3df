"""The policy gate in front of every delegation: go runs it, flag holds it for a person, stop fails it.

`PolicyGuard` is the `guard` of `Delegations`: awaited with the claimed delegation before its agent is called, it
describes the delegation as an `Action` (the adapter, the capability, the input's values and the accounts it
names) and asks the policy engine, under the rules in force at that moment, so a rule loaded a second ago applies
to every adapter's next call.

- go: the call goes ahead (logged when a rule spoke for it);
- stop: the delegation fails with the rules' reasons;
- flag: an approval request goes to the approvers of the gate (by role), and the delegation is held until it is
  decided. Once approved it runs, unless a rule stops it by then: an approval never outweighs a stop. Rejected or
  expired, it fails. A request is asked for once per delegation: running it again while the request is pending
  holds it again.

Every verdict other than a silent go is written to the decision log with the rules, the facts and the approval.
Nothing the agent or a model says can approve: only `Approvals.decide`, for an authenticated approver, can.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from planner.approvals import DEFAULT_EXPIRY, ApprovalRequest, Approvals, ApprovalStatus, NoApprovers
from planner.delegation import Delegation, DelegationHeld, DelegationStopped
from planner.governance import (
    Action,
    ActionKind,
    DecisionRecord,
    GateCategory,
    PolicyDecision,
    Verdict,
    accounts_in,
    policy_record,
)
from planner.policy import PolicyEngine
from planner.store import Store

Record = Callable[[DecisionRecord], Awaitable[object]]

_CATEGORIES = {category.value: category for category in GateCategory}
_GRANTED = (ApprovalStatus.APPROVED, ApprovalStatus.RESUMED)
_GATES = "categories"
"""The input's key that declares the gate categories a delegation falls under."""


def delegation_action(delegation: Delegation) -> Action:
    """The delegation as the policy engine sees it: attributes are the input's values (so `discount` and
    `input.discount` both reach them) with the adapter, capability, task and who asked; categories are the gate
    categories the input declares (`"categories": ["budget"]`)."""
    declared = delegation.input.get(_GATES)
    names = [declared] if isinstance(declared, str) else declared if isinstance(declared, list) else []
    categories = tuple(dict.fromkeys(_CATEGORIES[n] for n in names if isinstance(n, str) and n in _CATEGORIES))
    attributes: dict[str, Any] = {
        **delegation.input,
        "input": delegation.input,
        "adapter": delegation.adapter,
        "adapter_kind": delegation.adapter_kind,
        "capability": delegation.capability,
        "task": delegation.task_id,
        "requested_by": delegation.actor,
    }
    return Action(
        tenant_id=delegation.tenant_id,
        kind=ActionKind.DELEGATION,
        actor=f"agent:{delegation.adapter}",
        agent=delegation.adapter,
        name=delegation.capability,
        subject=f"delegation:{delegation.id}",
        accounts=accounts_in(delegation.input),
        attributes=attributes,
        categories=categories,
    )


class PolicyGuard:
    """Go, flag or stop for the delegations of one tenant, with its approvals and its decision log."""

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

    async def clears(self, delegation: Delegation) -> bool:
        """A plain go that no rule spoke of: nothing to record, the delegation may simply run."""
        if _GATES not in delegation.input and self._engine.silent_on(
            ActionKind.DELEGATION, agent=delegation.adapter, name=delegation.capability
        ):
            # No rule in force is about this agent and capability, and the input names no gate: nothing to ask
            # (describing the delegation and evaluating it cost as much as two of the request's statements).
            return True
        decision = await self._engine.evaluate(delegation_action(delegation))
        return decision.verdict is Verdict.GO and not decision.matched

    async def __call__(self, delegation: Delegation) -> None:
        action = delegation_action(delegation)
        decision = await self._engine.evaluate(action)
        reasons = "; ".join(decision.reasons) or "no rule objected"
        what = f"D{delegation.id} ({delegation.adapter} {delegation.capability} for T{delegation.task_id})"
        if decision.verdict is Verdict.STOP:
            await self._log(action, decision, f"{what} was stopped: {reasons}", delegation)
            raise DelegationStopped(f"Stopped by policy: {reasons}.")
        if decision.verdict is Verdict.GO:
            if decision.matched:
                await self._log(action, decision, f"{what} may go: {reasons}", delegation)
            return
        asked = await self._approvals.for_delegation(delegation.id)
        if asked is not None and asked.status in _GRANTED:
            record = policy_record(
                action,
                decision,
                f"{what} goes ahead: {asked.ref} approved it ({reasons})",
                task=delegation.task_id,
                approval=asked.id,
            )
            await self._record(replace(record, action="delegation.go", verdict=Verdict.GO.value, approval_id=asked.id))
            return
        if asked is not None and asked.status is ApprovalStatus.PENDING:
            raise DelegationHeld(f"Waiting for approval {asked.ref}: {reasons}.", asked.id)
        if asked is not None:  # rejected or expired: the answer stands
            raise DelegationStopped(f"{asked.ref} was {asked.status.value}: {reasons}.")
        await self._log(action, decision, f"{what} waits for a person: {reasons}", delegation)
        try:
            request = await self._approvals.request(
                action,
                requester=delegation.actor,
                reason=f"{delegation.adapter} is about to {delegation.capability} for T{delegation.task_id}",
                resume={"delegation": delegation.id},
                policy=decision,
            )
        except NoApprovers as error:
            raise DelegationStopped(f"It needs a person's approval ({reasons}), but {error}") from None
        raise DelegationHeld(f"Waiting for approval {request.ref}: {reasons}.", request.id)

    async def _log(self, action: Action, decision: PolicyDecision, rationale: str, delegation: Delegation) -> None:
        await self._record(policy_record(action, decision, rationale, task=delegation.task_id))


def approval_outcome(request: ApprovalRequest) -> tuple[bool, str] | None:
    """Whether a decided approval lets its delegation run, and why in words; None while nobody decided it."""
    if request.status in _GRANTED:
        return True, f"{request.ref} approved by {request.decided_by}"
    if request.status is ApprovalStatus.PENDING:
        return None
    by = f" by {request.decided_by}" if request.decided_by else ""
    note = f": {request.note}" if request.note else ""
    return False, f"{request.ref} was {request.status.value}{by}{note}"
