"""The policy gate of the bot's own actions: an LLM tool call is checked, logged, held or stopped before it runs.

Go runs it; flag holds it for a permitted person's approval (it runs when they approve, once); stop refuses it
with the rules' reasons. Every verdict other than a plain go goes to the decision log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.operations import Context, Reply
from planner.approvals import Approvals, NoApprovers
from planner.decisions import DecisionLog
from planner.governance import Action, ActionKind, GateCategory, PolicyDecision, Verdict, accounts_in, policy_record
from planner.policy import PolicyEngine

GATED_OPERATIONS: Mapping[str, tuple[GateCategory, ...]] = {}
"""Operations that fall under an approval gate whenever the model calls them. None yet: creating a plan is what the
person asked for, and no operation changes an existing master plan's goals or targets; one that does goes here."""


async def _record(context: Context, action: Action, decision: PolicyDecision, rationale: str) -> None:
    await DecisionLog(context.store, action.tenant_id).record(policy_record(action, decision, rationale))


async def check_tool_call(context: Context, name: str, args: Mapping[str, Any]) -> Reply | None:
    """None when the model's call may run now; otherwise the reply saying it is held or stopped, and why."""
    caller = context.caller
    action = Action(
        tenant_id=caller.tenant_id,
        kind=ActionKind.TOOL_CALL,
        actor="llm",
        name=name,
        subject=f"tool:{name}",
        accounts=accounts_in(args),
        attributes=dict(args),
        categories=GATED_OPERATIONS.get(name, ()),
    )
    decision = await PolicyEngine(context.store, caller.tenant_id).evaluate(action)
    reasons = "; ".join(decision.reasons) or "no rule objected"
    if decision.verdict is Verdict.GO:
        if decision.matched:
            await _record(context, action, decision, f"the model's {name} may go: {reasons}")
        return None
    if decision.verdict is Verdict.STOP:
        await _record(context, action, decision, f"the model's {name} was stopped: {reasons}")
        return Reply(text=f"I won't do that ({name}): {reasons}.", ok=False)
    await _record(context, action, decision, f"the model's {name} waits for a person: {reasons}")
    try:
        approvals = Approvals(
            context.store, caller.tenant_id, record=context.record, expires_in=context.approval_expiry
        )
        request = await approvals.request(
            action,
            requester=caller.user_id,
            reason=f"{caller.name} asked in chat; the assistant proposed {name}",
            resume={"operation": name, "args": dict(args)},
            policy=decision,
        )
    except NoApprovers as error:
        return Reply(text=f"That needs a person's approval first ({reasons}), but {error}", ok=False)
    return Reply(text=f"That needs approval first ({reasons}): I asked for it as A{request.id}.")
