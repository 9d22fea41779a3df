"""Policy operations for admins: see the rules agents work under, and load a new set (planner/services/policy.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.cards import message_card
from bot.operations.base import BadArguments, Context, Operation, Reply
from bot.text import messages
from bot.text.policy import rule_text
from planner.domain.governance import ActionKind

RULES_SHOWN = 40
# Phones and some keyboards turn quotes into typographic ones; JSON and YAML need the plain ones.
_PLAIN_QUOTES = str.maketrans(
    dict.fromkeys("\u201c\u201d\u201e\u201f\u2033", '"') | dict.fromkeys("\u2018\u2019\u201a", "'")
)


async def show_policy(context: Context, args: Mapping[str, Any]) -> Reply:
    active = await context.services.policy_sets.active()
    if active is None:
        return Reply(text=messages.NO_POLICY)
    when = active.loaded_at.strftime("%Y-%m-%d %H:%M UTC")
    lines: list[str] = [messages.policy_summary(active.version, len(active.rules), active.loaded_by, when)]
    lines += [f"• {rule_text(rule)}" for rule in active.rules[:RULES_SHOWN]]
    if len(active.rules) > RULES_SHOWN:
        lines.append(messages.more_rules(len(active.rules) - RULES_SHOWN))
    return Reply(cards=(message_card(f"Policy rules, version {active.version}", lines),))


async def load_policy(context: Context, args: Mapping[str, Any]) -> Reply:
    document = str(args.get("document") or "").translate(_PLAIN_QUOTES).strip()
    if not document:
        raise BadArguments(messages.missing("document"))
    loaded = await context.services.policy_sets.load(document, actor=context.caller.user_id)
    return Reply(text=messages.policy_loaded(loaded.version, len(loaded.rules)))


OPERATIONS = (
    Operation(
        name="show_policy",
        summary="Admins: the policy rules in force, what each agent may do and when a person must approve.",
        usage=("policy",),
        parameters={"type": "object", "properties": {}},
        run=show_policy,
        kind=ActionKind.READ,
        admin_only=True,
    ),
    Operation(
        name="load_policy",
        summary="Admins: replace the policy rules with a new set (JSON; YAML files through `cos policy load`).",
        usage=('policy load {"rules": [{"id": "…", "description": "…", "effect": "allow|require|forbid", …}]}',),
        parameters={"type": "object", "properties": {"document": {"type": "string"}}, "required": ["document"]},
        run=load_policy,
        kind=ActionKind.SETTING,
        admin_only=True,
    ),
)
