"""The operations a leader or a member can ask for, one registry for the command grammar and the LLM."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.operations import (
    approvals,
    budgets,
    decisions,
    delegation,
    drafts,
    follow_up,
    identity,
    measurement,
    metrics,
    plans,
    policy,
    readings,
    tasks,
)
from bot.operations.base import BadArguments, Caller, Context, Operation, Registry, Reply, UnknownOperation
from bot.text import messages
from planner.domain.governance import ActionKind


async def show_help(context: Context, args: Mapping[str, Any]) -> Reply:
    topic = str(args.get("topic") or "").strip().lower()
    if topic:
        matches = [
            op
            for op in default_registry()
            if topic in op.name.replace("_", " ") or any(line.lower().startswith(topic) for line in op.usage)
        ]
        if matches:
            return Reply(text="\n\n".join(f"{op.summary}\n\n{messages.usage_of(op.usage)}" for op in matches))
    return Reply(text=messages.HELP)


HELP = Operation(
    name="help",
    summary="What the bot understands.",
    usage=("help [command]",),
    parameters={"type": "object", "properties": {"topic": {"type": "string"}}},
    run=show_help,
    kind=ActionKind.READ,
)


def default_registry() -> Registry:
    """Every operation of the bot."""
    return Registry(
        (
            HELP,
            *plans.OPERATIONS,
            *tasks.OPERATIONS,
            *metrics.OPERATIONS,
            *budgets.OPERATIONS,
            *measurement.OPERATIONS,
            *drafts.OPERATIONS,
            *follow_up.OPERATIONS,
            *delegation.OPERATIONS,
            *approvals.OPERATIONS,
            *decisions.OPERATIONS,
            *policy.OPERATIONS,
            *readings.OPERATIONS,
            *identity.OPERATIONS,
        )
    )


__all__ = [
    "BadArguments",
    "Caller",
    "Context",
    "Operation",
    "Registry",
    "Reply",
    "UnknownOperation",
    "default_registry",
]
