"""Who the caller is to the bot: the id an admin needs to make them an admin."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.operations.base import Context, Operation, Reply
from bot.text import messages
from planner.domain.governance import ActionKind


async def who_am_i(context: Context, args: Mapping[str, Any]) -> Reply:
    caller = context.caller
    return Reply(
        text=messages.who_you_are(
            name=caller.name or caller.user_id,
            user_id=caller.user_id,
            tenant_id=caller.tenant_id,
            is_admin=caller.is_admin,
        )
    )


OPERATIONS = (
    Operation(
        name="whoami",
        summary="Show your Teams user id (what an admin lists in COS_ADMINS), name, tenant, and whether you are an "
        "admin.",
        usage=("whoami",),
        parameters={"type": "object", "properties": {}},
        run=who_am_i,
        kind=ActionKind.READ,
    ),
)
