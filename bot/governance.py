"""The one policy gate of the bot's operations: every call is described as an `Action` and judged before it runs.

`Registry.run` asks `check` about every call, whoever makes it: a typed command, a card click or the model's tool
call (as pydantic-ai's `ApprovalRequiredToolset` wraps every tool), so the same operation gets the same verdict
however it was asked for. Go runs it; flag holds it for a permitted person's approval (it runs once approved, as the
person who asked); stop refuses it with the rules' reasons.

A strategy change (a second master plan, new goals or targets for one) is held structurally, whatever the rules
say, unless the leader (owner) of the master plans it changes asks in person; a budget shift (moving money between
plans, raising an allocation) is held always, while lowering an allocation is no shift (`Operation.shifts`); what
the model does on anyone's behalf is held. The decision log gets every verdict other than a plain go of a person's
own call, and every verdict on the model's: written as the model's (`llm`), on behalf of the person.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.text import messages
from bot.text.errors import describe
from bot.text.gates import policy_reasons_text
from planner.domain.approvals import NoApprovers
from planner.domain.governance import Action, DecisionRecord, GateCategory, PolicyDecision, Verdict, accounts_in
from planner.domain.model import Plan
from planner.services.approvals import Approvals

if TYPE_CHECKING:
    from bot.operations.base import Context, Operation

MARKS = ("from_card", "typed")
"""Arguments that say how a call came (a card click, a typed command), not what it does: not part of the action."""


@dataclass(frozen=True, kw_only=True)
class Held:
    """What the gate answers instead of running the call: it waits for an approval, or it was stopped."""

    text: str
    stopped: bool


async def check(operation: Operation, context: Context, args: Mapping[str, Any]) -> Held | None:
    """None when the call may run now; otherwise why not, having logged the verdict (and filed the approval request
    of a flag). Raises what the operation's `masters` raises for arguments naming no master plan."""
    caller = context.caller
    masters: Sequence[Plan] = ()
    categories: tuple[GateCategory, ...] = tuple(c for c in operation.categories if c is not GateCategory.STRATEGY)
    if GateCategory.STRATEGY in operation.categories and operation.masters is not None:
        masters = await operation.masters(context, args)
        leads = any(plan.owner == caller.user_id for plan in masters)
        if masters and (caller.by_model or not leads):
            categories = (GateCategory.STRATEGY, *categories)
    shifted: Sequence[Plan] = ()
    if GateCategory.BUDGET in categories and operation.shifts is not None:
        shifted = await operation.shifts(context, args)
        if not shifted:
            categories = tuple(c for c in categories if c is not GateCategory.BUDGET)
    about = masters or shifted
    refs = [f"plan:{plan.id}" for plan in shifted[1:]]  # the other plans of a shift, so `why` finds it from them
    engine = context.services.policy
    attributes = {k: v for k, v in args.items() if k not in MARKS}
    action = Action(
        tenant_id=caller.tenant_id,
        kind=operation.kind,
        actor=caller.actor,
        on_behalf_of=caller.user_id if caller.by_model else None,
        name=operation.name,
        subject=f"plan:{about[0].id}" if about else f"operation:{operation.name}",
        accounts=accounts_in(attributes),
        attributes=attributes,
        categories=categories,
    )
    decision = await engine.evaluate(action)
    reasons = policy_reasons_text(decision.reasons)
    what = ("the assistant's " if caller.by_model else "") + f"{operation.name} for {caller.name}"
    verdict = decision.verdict
    if verdict is Verdict.FLAG and _approved(context, operation, attributes):
        await _record(
            context,
            action,
            decision,
            plans=refs,
            rationale=f"{what} goes ahead, approved as A{_approval_id(context)}: {reasons}",
        )
        return None
    if verdict is Verdict.FLAG and not operation.holdable:
        await _record(
            context,
            action,
            decision,
            plans=refs,
            rationale=f"{what} goes ahead (decisions on approvals are not held): {reasons}",
        )
        return None
    if verdict is Verdict.GO:
        if caller.by_model or decision.matched:
            await _record(context, action, decision, plans=refs, rationale=f"{what} may go: {reasons}")
        return None
    if verdict is Verdict.STOP:
        await _record(context, action, decision, plans=refs, rationale=f"{what} was stopped: {reasons}")
        return Held(text=messages.operation_stopped(operation.name, reasons), stopped=True)
    await _record(context, action, decision, plans=refs, rationale=f"{what} waits for a person: {reasons}")
    return await _hold(context, operation, action, decision, reasons, leaders=[plan.owner for plan in masters])


def _approved(context: Context, operation: Operation, attributes: Mapping[str, Any]) -> bool:
    """The call carries out an approved request for exactly this operation with exactly these arguments."""
    approval = context.approval
    if approval is None or not approval.approved:
        return False
    return approval.resume.get("operation") == operation.name and approval.resume.get("args") == dict(attributes)


def _approval_id(context: Context) -> int:
    return context.approval.id if context.approval is not None else 0


async def _hold(
    context: Context,
    operation: Operation,
    action: Action,
    decision: PolicyDecision,
    reasons: str,
    *,
    leaders: Sequence[str],
) -> Held:
    caller = context.caller
    approvals = Approvals(context.store, caller.tenant_id, record=context.record, expires_in=context.approval_expiry)
    asked = "the assistant proposed it" if caller.by_model else "typed or clicked in Teams"
    try:
        request = await approvals.request(
            action,
            requester=caller.user_id,
            reason=f"{caller.name} asked to {operation.name.replace('_', ' ')} ({asked})",
            resume={"operation": operation.name, "args": dict(action.attributes), "via": caller.via},
            policy=decision,
            leaders=leaders,
        )
    except NoApprovers as error:
        return Held(text=messages.operation_unapprovable(reasons, describe(error)), stopped=True)
    return Held(text=messages.operation_held(reasons, request.ref), stopped=False)


async def _record(
    context: Context, action: Action, decision: PolicyDecision, rationale: str, *, plans: Sequence[str] = ()
) -> None:
    """The gate's verdict in the decision log: the model's calls as the model's, on behalf of the person."""
    caller = context.caller
    behalf = {"on_behalf_of": caller.user_id} | ({"model": caller.model} if caller.model else {})
    record = DecisionRecord(
        tenant_id=action.tenant_id,
        actor=action.actor if caller.by_model else "policy",
        action=f"{action.kind.value}.{decision.verdict.value}",
        subject=action.subject,
        verdict=decision.verdict.value,
        rationale=rationale,
        data={
            "actor": action.actor,
            **(behalf if caller.by_model else {}),
            "operation": action.name,
            "arguments": action.attributes,
            "accounts": list(action.accounts),
            "categories": [c.value for c in action.categories],
            "facts": list(decision.facts),
            **({"plans": list(plans)} if plans else {}),
        },
        rules=tuple(m.rule_id for m in decision.matched),
        approval_id=context.approval.id if context.approval is not None else None,
    )
    await context.tenants(action.tenant_id).decisions.record(record)
