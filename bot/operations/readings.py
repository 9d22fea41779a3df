"""A typed sentence the grammar can read two ways: run the reading that fits what the bot knows, or ask.

"add task Plan for Q1 webinar for WHO due friday" names an owner only if WHO is a person: an @mention or `me` is
one, a name nobody in the directory has is part of the title, and the name of someone the bot knows could be either,
so the bot shows both readings as buttons and changes nothing until one is picked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from bot.cards.markdown import excerpt
from bot.cards.readings import readings_card
from bot.operations.base import BadArguments, Context, Operation, Reply
from bot.text import messages
from planner.domain.governance import ActionKind

READ_TWO_WAYS = ("add_task",)
"""The operations a sentence may be read two ways for (the grammar's `choose_reading` commands)."""
ME = ("me", "myself", "i")


def _arguments(args: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = args.get(name)
    if not isinstance(value, Mapping):
        raise BadArguments(messages.missing(name))
    return dict(value)


async def choose_reading(context: Context, args: Mapping[str, Any]) -> Reply:
    from bot.operations import default_registry  # the registry holds this operation too

    operation = str(args.get("operation") or "")
    if operation not in READ_TWO_WAYS:
        raise BadArguments(messages.cannot_read_two_ways(operation))
    person = context.text_arg(args, "person")
    as_person, as_text = _arguments(args, "as_person"), _arguments(args, "as_text")
    name = person.lstrip("@").strip()
    registry = default_registry()
    if person.startswith("@") or name.casefold() in ME or name.casefold() in context.caller.mentions:
        return await registry.run(operation, context, as_person)
    if not await context.directory.people_named(name):
        reply = await registry.run(operation, context, as_text)
        return replace(reply, text=f"{reply.text} {messages.read_as_title(excerpt(name))}") if reply.ok else reply
    card = readings_card(
        messages.readings_question(name),
        [
            (messages.reading_with_owner(str(as_person.get("title") or ""), name), operation, as_person),
            (messages.reading_as_title(str(as_text.get("title") or "")), operation, as_text),
        ],
    )
    return Reply(cards=(card,))  # the card asks: a message beside it would say it twice


OPERATIONS = (
    Operation(
        name="choose_reading",
        summary="Run the one reading of a sentence that fits the people the bot knows, or ask which was meant.",
        usage=(),
        parameters={
            "type": "object",
            "properties": {
                "operation": {"type": "string"},
                "person": {"type": "string"},
                "as_person": {"type": "object"},
                "as_text": {"type": "object"},
            },
            "required": ["operation", "person", "as_person", "as_text"],
        },
        run=choose_reading,
        kind=ActionKind.READ,
        human_only=True,
    ),
)
