"""Follow-up operations: when the bot nudges (per tenant), and the outbox for admins."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.cards import message_card
from bot.cards.markdown import excerpt, literal
from bot.operations.base import BadArguments, Context, Operation, Reply
from bot.parsing import ParseError, parse_ref
from bot.text import messages
from bot.text.triggers import describe
from planner.domain.governance import ActionKind
from planner.domain.model import Tier
from planner.domain.triggers import SETTINGS, TRIGGER_ALIASES
from planner.services.outbox import dead_letters, replay
from planner.services.trigger_rules import TenantTriggerRules

DEAD_LETTERS_SHOWN = 20


async def _may_change(context: Context) -> None:
    """Admins and leaders only. A leader owns a master plan, and a master plan exists only as the tenant's first or
    as the strategy gate let it (its leader's own, or approved by one): nobody can make themselves a leader."""
    if context.caller.is_admin:
        return
    masters = await context.plans.list_plans(Tier.MASTER)
    if not any(plan.owner == context.caller.user_id for plan in masters):
        raise BadArguments(messages.LEADERS_ONLY)


def _rules_reply(title: str, lines: list[str], note: str = "") -> Reply:
    return Reply(text=note, cards=(message_card(title, lines),))


async def show_triggers(context: Context, args: Mapping[str, Any]) -> Reply:
    rules = await TenantTriggerRules(context.store).of(context.caller.tenant_id)
    return _rules_reply("When I follow up", describe(rules))


async def set_trigger_setting(context: Context, args: Mapping[str, Any]) -> Reply:
    await _may_change(context)
    name, value = context.text_arg(args, "setting"), context.text_arg(args, "value")
    rules = await TenantTriggerRules(context.store).change(
        context.caller.tenant_id, name, value, actor=context.caller.user_id
    )
    return _rules_reply(
        "When I follow up", describe(rules), f"Done: {literal(excerpt(name))} is now {literal(excerpt(value))}."
    )


async def switch_trigger(context: Context, args: Mapping[str, Any]) -> Reply:
    await _may_change(context)
    trigger = context.text_arg(args, "trigger")
    on = str(args.get("on", "")).lower() in ("true", "on", "1", "yes")
    rules = await TenantTriggerRules(context.store).switch(
        context.caller.tenant_id, trigger, on=on, actor=context.caller.user_id
    )
    return _rules_reply(
        "When I follow up", describe(rules), f"Done: {literal(excerpt(trigger))} is {'on' if on else 'off'}."
    )


async def reset_triggers(context: Context, args: Mapping[str, Any]) -> Reply:
    await _may_change(context)
    rules = await TenantTriggerRules(context.store).reset(context.caller.tenant_id, actor=context.caller.user_id)
    return _rules_reply("When I follow up", describe(rules), "Done: back to the defaults.")


async def show_outbox(context: Context, args: Mapping[str, Any]) -> Reply:
    tenant = context.caller.tenant_id
    counts = await context.services.outbox.counts(tenant)
    letters = await dead_letters(context.store, tenant_id=tenant, limit=DEAD_LETTERS_SHOWN)
    lines = [", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "Nothing in the outbox."]
    lines += [
        f"#{letter.id} {letter.kind.replace('_', ' ')} to {letter.recipient}, {letter.attempts} attempt(s): "
        f"{letter.last_error[:160]}"
        for letter in letters
    ]
    note = "Put them back with `outbox replay 12 13` or `outbox replay all`." if letters else ""
    return _rules_reply("Outbox and dead letters", lines, note)


async def replay_outbox(context: Context, args: Mapping[str, Any]) -> Reply:
    tenant = context.caller.tenant_id
    raw = args.get("ids")
    if raw == "all" or raw == ["all"]:
        ids = [letter.id for letter in await dead_letters(context.store, tenant_id=tenant, limit=10_000)]
    else:
        try:
            ids = [
                parse_ref(i, "#", "a dead letter") for i in (raw if isinstance(raw, list) else str(raw or "").split())
            ]
        except ParseError:
            raise BadArguments("Dead letters are named by number, such as `outbox replay 12 13`.") from None
    if not ids:
        raise BadArguments("Which dead letters? `outbox replay 12 13` or `outbox replay all`.")
    count = await replay(context.store, ids, tenant_id=tenant)
    return Reply(text=f"{count} message(s) put back in the queue; I'll send them on the next tick.")


OPERATIONS = (
    Operation(
        name="show_triggers",
        summary="When the bot follows up in this tenant: which triggers are on, lead time, quiet hours, budget.",
        usage=("triggers",),
        parameters={"type": "object", "properties": {}},
        run=show_triggers,
        kind=ActionKind.READ,
    ),
    Operation(
        name="set_trigger_setting",
        summary="Change one follow-up setting for this tenant (admins and plan leaders).",
        usage=("triggers set <" + "|".join(s.name for s in SETTINGS) + "> <value>",),
        parameters={
            "type": "object",
            "properties": {"setting": {"type": "string"}, "value": {"type": "string"}},
            "required": ["setting", "value"],
        },
        run=set_trigger_setting,
        kind=ActionKind.SETTING,
        human_only=True,
    ),
    Operation(
        name="switch_trigger",
        summary="Turn one trigger on or off for this tenant (admins and plan leaders).",
        usage=("triggers on|off <" + "|".join(TRIGGER_ALIASES) + ">",),
        parameters={
            "type": "object",
            "properties": {"trigger": {"type": "string"}, "on": {"type": "boolean"}},
            "required": ["trigger", "on"],
        },
        run=switch_trigger,
        kind=ActionKind.SETTING,
        human_only=True,
    ),
    Operation(
        name="reset_triggers",
        summary="Put every follow-up setting back to its default (admins and plan leaders).",
        usage=("triggers reset",),
        parameters={"type": "object", "properties": {}},
        run=reset_triggers,
        kind=ActionKind.SETTING,
        human_only=True,
    ),
    Operation(
        name="show_outbox",
        summary="Admins: messages waiting to be sent, and the dead letters Teams refused.",
        usage=("outbox",),
        parameters={"type": "object", "properties": {}},
        run=show_outbox,
        kind=ActionKind.READ,
        admin_only=True,
    ),
    Operation(
        name="replay_outbox",
        summary="Admins: put dead letters back in the queue.",
        usage=("outbox replay <id> [<id>…]", "outbox replay all"),
        parameters={"type": "object", "properties": {"ids": {"type": "string"}}, "required": ["ids"]},
        run=replay_outbox,
        kind=ActionKind.SETTING,
        admin_only=True,
    ),
)
