"""Approvals in Teams: approvers decide on the approval card (or by typing), admins say who approves what.

Why these operations, and only these, tell the planner the decider is `authenticated`:
- `approve_request` and `reject_request` are `human_only`: the LLM is never offered them and bot/llm.py refuses
  them by name, so no tool call and no agent output (shown as data, never run) can reach them;
- the registry runs only in bot/teams/, on an activity the adapter authenticated (the Bot Framework JWT on every
  request outside local mode, which itself only listens on loopback), and the decider is the caller the bot built
  from that activity's sender (`from.aadObjectId`), never an argument anyone could forge;
- on top, the call must carry the mark of a Teams activity: `from_card` (set by bot/teams/ for a card button,
  stripped by bot/llm.py) or `typed` (set by the command grammar), and come from a person. A new code path that
  runs the registry some other way is refused until it is given the same thought.
Who may decide (an approver of that request, not its requester, in time, once) is the planner's check; a refused
attempt changes nothing, is logged with who and which request, and is recorded as `refused`.

Role changes are `admin_only`: handing oneself the role that approves a gate is the other way round it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bot.cards import approval_card, message_card
from bot.cards.approval import actor_label, gate_label, what_is_asked
from bot.cards.markdown import Markdown, excerpt, literal
from bot.operations.base import BadArguments, Context, Operation, Reply, error_text
from bot.parsing import parse_ref
from bot.text import messages
from bot.text.people import person_name
from planner.domain.approvals import (
    GATES,
    AlreadyDecided,
    ApprovalExpired,
    ApprovalRefused,
    ApprovalRequest,
    gate_of,
    is_person,
)
from planner.domain.errors import PlannerError
from planner.domain.governance import ActionKind
from planner.ports import AgentError
from planner.services.approvals import Approvals, Approvers

logger = logging.getLogger(__name__)
MAX_CARDS = 5
APPROVAL_REF = {"type": "string", "description": "the approval request's id, e.g. A3"}


def _approvals(context: Context) -> Approvals:
    return Approvals(context.store, context.caller.tenant_id, context.clock, context.record)


def _in_teams(context: Context, args: Mapping[str, Any]) -> bool:
    """The call is a person's own card click or typed command in Teams (see the module's docstring)."""
    return bool(args.get("from_card") or args.get("typed")) and is_person(context.caller.user_id)


async def _card(context: Context, request: ApprovalRequest, note: str | None = None) -> dict[str, Any]:
    recipient = request.action.attributes.get("recipient")
    names = await context.display_names(
        [request.requester, request.decided_by, recipient if isinstance(recipient, str) else None]
    )
    return approval_card(
        request,
        requester_name=actor_label(request.requester, names),
        decider_name=names.get(request.decided_by or ""),
        zone=context.zone,
        note=note,
        names=names,
    )


async def _answer(
    context: Context, args: Mapping[str, Any], request: ApprovalRequest, text: str, *, ok: bool = True
) -> Reply:
    card = await _card(context, request, Markdown(text) or None)  # the reply's text, values already literal
    if args.get("from_card"):
        return Reply(card_update=card, ok=ok)
    return Reply(text=text, cards=(card,), ok=ok)


async def _resume(context: Context, approvals: Approvals, request: ApprovalRequest) -> str:
    """Run the approved action through the bot's resume hook, once; without a hook it waits for the scheduler."""
    if context.resume is None:
        return f"{request.ref} is approved; the action it held will now go ahead."
    claimed = await approvals.claim_resume(request.id)
    if claimed is None:
        return f"{request.ref} is approved; its action is already under way."
    try:
        said = await context.resume(context, claimed)
    except (PlannerError, BadArguments, AgentError) as error:
        await approvals.release_resume(claimed.id)
        return f"{request.ref} is approved, but its action could not start: {error_text(error)} It will be tried again."
    except BaseException:
        await approvals.release_resume(claimed.id)
        raise
    return said or f"{request.ref} is approved and its action is under way."


async def _decide(context: Context, args: Mapping[str, Any], *, approve: bool) -> Reply:
    request_id = parse_ref(args.get("approval") or "", "A", "an approval request")
    approvals = _approvals(context)
    try:
        decided = await approvals.decide(
            request_id,
            approver=context.caller.user_id,
            approve=approve,
            note=context.optional_text_arg(args, "note") or "",
            authenticated=_in_teams(context, args),
        )
    except (AlreadyDecided, ApprovalExpired) as stale:
        # A real approver on an old card: show them where it stands now.
        return await _answer(context, args, await approvals.get(request_id), error_text(stale), ok=False)
    except ApprovalRefused as refused:
        # Someone else's card, or a crafted action: the card stays as it is for the people it is meant for.
        logger.warning(
            "refused %s of A%s by %r (%s) in tenant %s",
            "approval" if approve else "rejection",
            request_id,
            context.caller.user_id,
            context.caller.name,
            context.caller.tenant_id,
        )
        return Reply(text=messages.APPROVAL_REFUSED.format(reason=error_text(refused)), ok=False)
    if not approve:
        held = decided.resume.get("delegation")
        if context.delegator is not None and isinstance(held, int):
            delegations = context.delegator.delegations(context.caller.tenant_id)
            try:
                await context.delegator.settle(context.caller.tenant_id, await delegations.get(held))
            except PlannerError:
                logger.exception("settling D%s after the rejection of %s failed", held, decided.ref)
        return await _answer(context, args, decided, f"{decided.ref} rejected: the action will not be taken.")
    return await _answer(context, args, decided, await _resume(context, approvals, decided))


async def approve_request(context: Context, args: Mapping[str, Any]) -> Reply:
    return await _decide(context, args, approve=True)


async def reject_request(context: Context, args: Mapping[str, Any]) -> Reply:
    return await _decide(context, args, approve=False)


async def show_approvals(context: Context, args: Mapping[str, Any]) -> Reply:
    approvals = _approvals(context)
    waiting = await approvals.pending(for_user=context.caller.user_id)
    mine = await approvals.asked_by(context.caller.user_id)
    lines = []
    if waiting:
        more = f" (the first {MAX_CARDS} below)" if len(waiting) > MAX_CARDS else ""
        lines.append(f"{len(waiting)} waiting for your decision{more}.")
    else:
        lines.append(messages.NOTHING_TO_APPROVE)
    if mine:
        asked = ", ".join(f"{r.ref} ({what_is_asked(r)})" for r in mine)
        lines.append(f"You asked for, still waiting: {asked}.")
    cards = tuple([await _card(context, request) for request in waiting[:MAX_CARDS]])
    return Reply(text=" ".join(lines), cards=cards)


async def show_approvers(context: Context, args: Mapping[str, Any]) -> Reply:
    approvers = Approvers(context.store, context.caller.tenant_id, clock=context.clock)
    gates, holders = await approvers.gate_roles(), await approvers.holders()
    names = await context.display_names({user for users in holders.values() for user in users})

    def held_by(role: str) -> str:
        return ", ".join(person_name(u, names) for u in holders.get(role, ())) or "nobody yet"

    lines = [f"{gate_label(gate)}: {gates[gate]} ({held_by(gates[gate])})" for gate in GATES]
    unmapped = sorted(set(holders) - set(gates.values()))
    lines += [f"Role {role} (approves no gate): {held_by(role)}" for role in unmapped]
    lines.append("Admins: `approvers add ROLE @PERSON` · `approvers map CATEGORY ROLE`.")
    return Reply(cards=(message_card("Who approves what", lines),))


async def _approver_arg(context: Context, args: Mapping[str, Any]) -> tuple[str, str]:
    user, name = await context.person_arg(context.text_arg(args, "user"))
    if not is_person(user):
        raise BadArguments(f"{literal(excerpt(user))} is not a person: only people approve.")
    known = await context.directory.person(user) if name == user else None  # a user id typed as it is
    return user, known.name if known else name


async def add_approver(context: Context, args: Mapping[str, Any]) -> Reply:
    role = context.text_arg(args, "role")
    user, name = await _approver_arg(context, args)
    approvers = Approvers(context.store, context.caller.tenant_id, clock=context.clock, record=context.record)
    added = await approvers.assign(role, user, actor=context.caller.user_id)
    name, role = literal(excerpt(name)), literal(excerpt(role.lower()))
    if not added:
        return Reply(text=f"{name} already approves for the {role} role.")
    unknown = "" if await context.directory.person(user) else messages.unknown_owner_note(user)
    return Reply(text=f"{name} now approves what needs the {role} role.{unknown}")


async def remove_approver(context: Context, args: Mapping[str, Any]) -> Reply:
    role = context.text_arg(args, "role")
    user, name = await _approver_arg(context, args)
    approvers = Approvers(context.store, context.caller.tenant_id, clock=context.clock, record=context.record)
    unassigned = await approvers.unassign(role, user, actor=context.caller.user_id)
    name, role = literal(excerpt(name)), literal(excerpt(role.lower()))
    if not unassigned:
        return Reply(text=f"{name} does not hold the {role} role.", ok=False)
    return Reply(text=f"{name} no longer approves for the {role} role.")


async def map_approval_gate(context: Context, args: Mapping[str, Any]) -> Reply:
    category, role = context.text_arg(args, "category"), context.text_arg(args, "role")
    approvers = Approvers(context.store, context.caller.tenant_id, clock=context.clock, record=context.record)
    gates = await approvers.map(category, role, actor=context.caller.user_id)
    gate = gate_of(category)
    return Reply(text=f"{gate_label(gate)} is approved by the {literal(excerpt(gates[gate]))} role from now on.")


DECISION_PARAMETERS = {
    "type": "object",
    "properties": {"approval": APPROVAL_REF, "note": {"type": "string"}},
    "required": ["approval"],
}
APPROVER_PARAMETERS = {
    "type": "object",
    "properties": {"role": {"type": "string"}, "user": {"type": "string"}},
    "required": ["role", "user"],
}

OPERATIONS = (
    Operation(
        name="approve_request",
        summary="Approve a request waiting for you (people only, in Teams: the assistant never can).",
        usage=("approve A3 [note]",),
        parameters=DECISION_PARAMETERS,
        run=approve_request,
        kind=ActionKind.SETTING,
        human_only=True,
    ),
    Operation(
        name="reject_request",
        summary="Reject a request waiting for you (people only, in Teams).",
        usage=("reject A3 [because <reason>]",),
        parameters=DECISION_PARAMETERS,
        run=reject_request,
        kind=ActionKind.SETTING,
        human_only=True,
    ),
    Operation(
        name="show_approvals",
        summary="The approval requests waiting for the caller's decision, and the ones they asked for.",
        usage=("approvals",),
        parameters={"type": "object", "properties": {}},
        run=show_approvals,
        kind=ActionKind.READ,
    ),
    Operation(
        name="show_approvers",
        summary="Who approves what: the role for each approval gate, and who holds it.",
        usage=("approvers",),
        parameters={"type": "object", "properties": {}},
        run=show_approvers,
        kind=ActionKind.READ,
    ),
    Operation(
        name="add_approver",
        summary="Give a person an approver role (admins).",
        usage=("approvers add <role> <@person>",),
        parameters=APPROVER_PARAMETERS,
        run=add_approver,
        kind=ActionKind.SETTING,
        admin_only=True,
    ),
    Operation(
        name="remove_approver",
        summary="Take an approver role from a person (admins).",
        usage=("approvers remove <role> <@person>",),
        parameters=APPROVER_PARAMETERS,
        run=remove_approver,
        kind=ActionKind.SETTING,
        admin_only=True,
    ),
    Operation(
        name="map_approval_gate",
        summary="Choose the role that approves an approval gate (admins).",
        usage=("approvers map <category> <role>",),
        parameters={
            "type": "object",
            "properties": {"category": {"type": "string", "enum": list(GATES)}, "role": {"type": "string"}},
            "required": ["category", "role"],
        },
        run=map_approval_gate,
        kind=ActionKind.SETTING,
        admin_only=True,
    ),
)
