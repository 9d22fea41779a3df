"""Budget operations: a master plan's budget, tactical allocations, moving money between plans, and spend.

Setting a master plan's budget is a strategy change (its leader's own, or held for their approval). Raising a
tactical plan's allocation, or moving money between plans, is a budget shift: it waits for the budget gate's
approvers (`approvers map budget ROLE`). A plan's first allocation, asked for by the master plan's leader in person,
is the plan being made; lowering an allocation and recording spend are no shift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.cards.budget import budget_line
from bot.operations.base import BadArguments, Context, Operation, Reply
from bot.parsing import ParseError, parse_number, parse_ref
from bot.text import messages
from planner.domain.budgets import currency_of, minor_units
from planner.domain.errors import PlannerError
from planner.domain.governance import ActionKind, GateCategory
from planner.domain.model import Plan, Tier

_AMOUNT = {"type": "string", "description": "an amount such as 60k, 12,500 or 1.2m"}
_CURRENCY = {"type": "string", "description": "a three-letter currency code such as USD (default: the budget's)"}
_PLAN = {"type": "string", "description": "plan id, e.g. P2"}


def _amount(args: Mapping[str, Any], *, allow_zero: bool = True) -> int:
    raw = args.get("amount")
    if raw in (None, ""):
        raise BadArguments(messages.missing("amount"))
    return minor_units(parse_number(str(raw), "an amount"), allow_zero=allow_zero)


def _currency(args: Mapping[str, Any]) -> str | None:
    raw = Context.optional_text_arg(args, "currency")
    return currency_of(raw) if raw is not None else None


async def _master(context: Context, args: Mapping[str, Any]) -> list[Plan]:
    """The master plan whose budget a call sets (the one active today when none is named)."""
    return [await context.plan_arg(args, tier=Tier.MASTER)]


async def set_budget(context: Context, args: Mapping[str, Any]) -> Reply:
    [plan] = await _master(context, args)
    currency = _currency(args)
    if currency is None:
        raise BadArguments(messages.missing("currency"))
    budget = await context.services.budgets.set_budget(plan.id, _amount(args), currency, actor=context.caller.user_id)
    return Reply(text=messages.budget_set(plan.id, budget.amount, budget.currency))


async def _raised_by_allocation(context: Context, args: Mapping[str, Any]) -> Sequence[Plan]:
    """The tactical plan, when this allocation raises it (a first one unless its leader asks in person). Arguments
    that name no plan or amount shift nothing: the operation refuses them itself, once the policy gate has spoken."""
    budgets = context.services.budgets
    caller = context.caller
    try:
        plan_id = parse_ref(context.text_arg(args, "plan"), "P", "a plan")
        change = await budgets.allocation_change(plan_id)
        amount = _amount(args)
    except (BadArguments, ParseError, PlannerError):
        return []
    shift = await budgets.is_shift(plan_id, amount, actor=caller.user_id, in_person=not caller.by_model)
    return [change.plan] if shift else []


async def allocate_budget(context: Context, args: Mapping[str, Any]) -> Reply:
    plan_id = parse_ref(context.text_arg(args, "plan"), "P", "a plan")
    done = await context.services.budgets.allocate(
        plan_id, _amount(args), _currency(args), actor=context.caller.user_id
    )
    status = (await context.services.budgets.statuses([done.plan], context.today)).get(done.plan.id)
    return Reply(
        text=messages.allocated(
            done.plan.id,
            done.after.amount,
            done.before.amount if done.before is not None else None,
            done.headroom,
            done.after.currency,
            done.master.id,
            budget_line(status) if status is not None else None,
        )
    )


async def _raised_by_move(context: Context, args: Mapping[str, Any]) -> Sequence[Plan]:
    """The plan money moves to, then the one it comes from: a move is always a budget shift (arguments naming no
    plans are refused by the operation itself, once the policy gate has spoken)."""
    try:
        return [
            await context.plans.get_plan(parse_ref(context.text_arg(args, name), "P", "a plan"), Tier.TACTICAL)
            for name in ("to", "from")
        ]
    except (BadArguments, ParseError, PlannerError):
        return []


async def move_budget(context: Context, args: Mapping[str, Any]) -> Reply:
    source = parse_ref(context.text_arg(args, "from"), "P", "a plan")
    target = parse_ref(context.text_arg(args, "to"), "P", "a plan")
    lowered, raised = await context.services.budgets.move(
        _amount(args, allow_zero=False), _currency(args), from_plan=source, to_plan=target, actor=context.caller.user_id
    )
    return Reply(
        text=messages.budget_moved(
            amount=raised.after.amount - (raised.before.amount if raised.before else 0),
            currency=raised.after.currency,
            source=source,
            source_now=lowered.after.amount,
            target=target,
            target_now=raised.after.amount,
        )
    )


async def record_spend(context: Context, args: Mapping[str, Any]) -> Reply:
    plan = await context.plan_arg(args, tier=None if args.get("plan") not in (None, "") else Tier.MASTER)
    on = context.optional_date_arg(args, "on") or context.today
    spend = await context.services.budgets.record_spend(
        plan.id,
        _amount(args, allow_zero=False),
        _currency(args),
        spent_on=on,
        today=context.today,
        source=f"chat:{context.caller.user_id}",
        actor=context.caller.user_id,
    )
    status = (await context.services.budgets.statuses([plan], context.today)).get(plan.id)
    return Reply(
        text=messages.spend_recorded(
            plan.id,
            spend.amount,
            spend.currency,
            spend.spent_on if spend.spent_on != context.today else None,
            budget_line(status) if status is not None else None,
        )
    )


OPERATIONS = (
    Operation(
        name="set_budget",
        summary="Set a master plan's budget (a change of strategy: the leader's own, or held for their approval).",
        usage=("budget P1 250k USD",),
        parameters={
            "type": "object",
            "properties": {"plan": _PLAN, "amount": _AMOUNT, "currency": _CURRENCY},
            "required": ["amount", "currency"],
        },
        run=set_budget,
        kind=ActionKind.PLAN_CHANGE,
        categories=(GateCategory.STRATEGY,),
        masters=_master,
    ),
    Operation(
        name="allocate_budget",
        summary="Set a tactical plan's allocation of its master plan's budget; raising it waits for the budget "
        "gate's approvers, lowering it does not.",
        usage=("allocate 60k USD to P2",),
        parameters={
            "type": "object",
            "properties": {"plan": _PLAN, "amount": _AMOUNT, "currency": _CURRENCY},
            "required": ["plan", "amount"],
        },
        run=allocate_budget,
        kind=ActionKind.PLAN_CHANGE,
        categories=(GateCategory.BUDGET,),
        shifts=_raised_by_allocation,
    ),
    Operation(
        name="move_budget",
        summary="Move money from one tactical plan's allocation to another's: a budget shift, it waits for the "
        "budget gate's approvers.",
        usage=("move 10k USD from P2 to P3",),
        parameters={
            "type": "object",
            "properties": {"amount": _AMOUNT, "currency": _CURRENCY, "from": _PLAN, "to": _PLAN},
            "required": ["amount", "from", "to"],
        },
        run=move_budget,
        kind=ActionKind.PLAN_CHANGE,
        categories=(GateCategory.BUDGET,),
        shifts=_raised_by_move,
    ),
    Operation(
        name="record_spend",
        summary="Record money spent on a plan, today or on a past day inside its window.",
        usage=("spend 12k USD on P2", "spend P2 12,500 USD on 2026-02-10"),
        parameters={
            "type": "object",
            "properties": {
                "amount": _AMOUNT,
                "currency": _CURRENCY,
                "plan": _PLAN,
                "on": {"type": "string", "description": "the day it was spent, YYYY-MM-DD; default today"},
            },
            "required": ["amount"],
        },
        run=record_spend,
        kind=ActionKind.PLAN_CHANGE,
    ),
)
