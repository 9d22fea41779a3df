"""What the delegation tests share: the writer's task on a plan, the lead (an admin) and the writer in Teams, the MCP
vendor agent registered with some of its tools on, and what reached the writer. The bot that delegates is the
`delegating` fixture (tests/bot/conftest.py), or `a_delegating_bot` for one wired otherwise."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import NamedTuple

from planner.domain.model import Window
from planner.services.plans import Plans
from tests.bot.conftest import TENANT, Running, TeamsUser
from tests.conftest import FakeClock
from tests.fakes.connector import Sent

WRITER = "a:writer"
"""The writer's 1:1 chat, where the results of delegating their task come."""


async def a_task_for_the_writer(running: Running, clock: FakeClock) -> int:
    """A master plan and a tactical plan of the lead's, and a task of the writer's on it, due on 20 February; its id."""
    clock.now = datetime(2026, 2, 10, 9, tzinfo=UTC)
    tenant = Plans(running.store, TENANT)
    window = Window(start=date(2026, 2, 1), end=date(2026, 2, 28))
    master = await tenant.create_master_plan(title="Q1", owner="aad-lead", window=window, actor="aad-lead")
    tactical = await tenant.create_tactical_plan(master.id, title="Launch", owner="aad-lead", window=window, actor="x")
    task = await tenant.add_task(
        tactical.id, title="Launch email", due_on=date(2026, 2, 20), owner="aad-writer", actor="aad-lead"
    )
    return task.id


class Desk(NamedTuple):
    task_id: int
    lead: TeamsUser
    writer: TeamsUser


async def a_desk(running: Running, clock: FakeClock) -> Desk:
    """The writer's task, the lead (an admin) and the writer, who has said hello (so the bot knows their chat)."""
    task_id = await a_task_for_the_writer(running, clock)
    writer = TeamsUser(running, user_id="aad-writer", name="Content Writer", conversation_id=WRITER)
    await writer.ask("help")
    return Desk(task_id, TeamsUser(running), writer)


async def vendor_registered(lead: TeamsUser, url: str, *tools: str) -> None:
    """The lead registers the MCP vendor agent at `url` as `vendor` and enables `tools`."""
    await lead.ask(f"adapter add mcp vendor {json.dumps({'transport': 'http', 'url': url})}")
    for tool in tools:
        await lead.ask(f"adapter enable vendor {tool}")


def to_the_writer(running: Running, since: int) -> list[Sent]:
    """What reached the writer's chat after the first `since` messages the bot sent."""
    return [s for s in running.connector.sent[since:] if s.conversation_id == WRITER]
