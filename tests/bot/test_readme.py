"""The README's walk-throughs, run as written: each chat line is said to the bot, each shell line run as `cos`."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine

from bot.cli import main
from tests.bot.conftest import LOCAL_ADMIN, TeamsUser
from tests.conftest import Database, FakeClock

README = Path(__file__).resolve().parents[2] / "README.md"
# A Tuesday morning in the person's time zone (Europe/London): outside quiet hours, "friday" three days ahead.
MORNING = datetime(2026, 3, 3, 10, tzinfo=UTC)


def section(title: str) -> str:
    """The README's text under a heading, up to the next heading."""
    text = README.read_text(encoding="utf-8")
    start = text.index(title)
    following = re.search(r"^#{1,6} ", text[start + len(title) :], re.MULTILINE)
    return text[start : start + len(title) + following.start()] if following else text[start:]


def fenced_blocks(text: str) -> list[tuple[str, list[str]]]:
    """The fenced code blocks of `text`: (info string, non-empty lines), in order."""
    blocks = re.findall(r"^[ \t]*```(\w*)\n(.*?)^[ \t]*```", text, re.MULTILINE | re.DOTALL)
    return [(info, [line.strip() for line in body.splitlines() if line.strip()]) for info, body in blocks]


def cos_argv(line: str) -> list[str]:
    words = shlex.split(line)
    assert words[0] == ".venv/bin/cos", line
    return words[1:]


def all_text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


async def test_try_an_approval_locally_works_as_written(
    lead: TeamsUser, clock: FakeClock, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if database.backend != "sqlite":
        pytest.skip("the walk-through is the embedded default: SQLite")
    monkeypatch.setenv("DATABASE_URL", database.url)
    for name in ("MICROSOFT_APP_ID", "COS_SECRET_KEYS", "COS_ADMINS"):
        monkeypatch.delenv(name, raising=False)
    assert lead.user_id == LOCAL_ADMIN  # step 2's `cos serve --local-admin <your user id>`
    connector = lead.running.connector
    clock.now = MORNING

    async def say(line: str) -> str:
        before = len(connector.sent)
        assert (await lead.say(line)).status in (200, 201), line
        await lead.running.bot.drain()
        await connector.wait_for(before + 1)
        return "\n".join(all_text(s.body) for s in connector.sent[before:])

    async def shell(line: str) -> None:
        assert await asyncio.to_thread(main, cos_argv(line)) == 0, line
        await lead.running.bot.drain()

    steps = fenced_blocks(section("### Try an approval locally"))
    assert [info for info, _ in steps] == ["sh", "text", "text", "sh", "text"]
    (_, starting), (_, asking), (_, setting_up), (_, ticking), (_, deciding) = steps
    assert starting == [
        ".venv/bin/cos serve",  # the test's bot, local mode
        "npx agentsplayground start -e http://localhost:3978/api/messages -c msteams",  # the test's TeamsUser
    ]
    with time_machine.travel(MORNING, tick=True):
        [whoami] = asking
        assert f"User id: `{lead.user_id}`" in await say(whoami)

        replies = [await say(line) for line in setting_up]
        for line, reply in zip(setting_up, replies, strict=True):
            assert "Usage" not in reply, (line, reply)
            assert "Only an admin" not in reply, (line, reply)
        assert "now approves what needs the leader role" in replies[0]
        assert "in force" in replies[1]
        assert "P1" in replies[2]
        assert "P2" in replies[3]
        assert "T1" in replies[4]

        [tick] = ticking
        before = len(connector.sent)
        await shell(tick)
        arrived = "\n".join(all_text(s.body) for s in connector.sent[before:])
        assert "A1" in arrived
        assert "deadline approaching message to" in arrived
        assert "Heads up: T1" not in arrived  # held: the approval card came instead

        approvals, approve, why = [await say(line) for line in deciding]
        assert "A1" in approvals
        assert "The message goes out at the next delivery" in approve
        assert "Lead approved deadline_approaching for task T1: rule reminders-checked matched" in why

        before = len(connector.sent)
        await shell(tick)
        reminder = "\n".join(all_text(s.body) for s in connector.sent[before:])
        assert "Heads up: T1 Draft launch email is due 2026-03-04." in reminder


async def test_the_readmes_record_form_works_once_tactical_plans_carry_the_kpi(lead: TeamsUser) -> None:
    assert "typed in chat (`record SQLs 140`)" in README.read_text(encoding="utf-8")
    await lead.ask("new plan 500 SQLs by 31 March from 2026-01-01 to 2026-03-31 kpi SQLs 500")
    [first] = await lead.ask("record SQLs 140")
    assert "Recorded SQLs" in first
    await lead.ask("derive tactical P1 monthly")
    await lead.ask("save draft 1")
    [plans] = await lead.ask("plans")
    assert "P4" in plans  # three tactical plans, each carrying the master plan's SQLs
    for value in ("140", "310"):
        [recorded] = await lead.ask(f"record SQLs {value}")
        assert "Recorded SQLs" in recorded
        assert "on P1" in recorded  # where the KPI is defined: the master plan
