"""End to end: `cos serve` and Microsoft's Teams emulator (Agents Playground), chatting as a Teams user would."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from planner.store import Store
from planner.store.schema import tasks
from tests.e2e.playground import Frame, Playground, from_bot, write_config

ROOT = Path(__file__).resolve().parents[2]
PLAYGROUND = ROOT / "node_modules" / ".bin" / "agentsplayground"
LOOPBACK_ONLY = Path(__file__).with_name("loopback-only.cjs")

pytestmark = pytest.mark.skipif(
    not PLAYGROUND.exists() or shutil.which("node") is None,
    reason="the Teams emulator is installed by `npm ci` (bash .ci/run does it)",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until_up(url: str, process: subprocess.Popen[bytes], within: float = 60.0) -> None:
    """Poll `url` until it answers 200, failing early if the process died (bounded)."""
    async with asyncio.timeout(within), aiohttp.ClientSession() as session:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
            try:
                async with session.get(url) as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'e2e.db'}"


@pytest.fixture
async def peers(tmp_path: Path, database_url: str) -> AsyncIterator[str]:
    """`cos serve` on a free loopback port, the emulator pointed at it; yields the emulator's base URL."""
    bot_port, playground_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MICROSOFT_APP", "ANTHROPIC"))}
    env |= {"DATABASE_URL": database_url, "COS_PORT": str(bot_port), "COS_LOG_LEVEL": "WARNING"}
    env["COS_SECRET_KEY_FILE"] = str(tmp_path / "local.key")  # local mode keeps its key there
    bot_log = (tmp_path / "bot.log").open("wb")
    bot = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve"],
        cwd=ROOT,
        env=env,
        stdout=bot_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    playground_log = (tmp_path / "playground.log").open("wb")
    playground = subprocess.Popen(
        [
            str(PLAYGROUND),
            "start",
            "-p",
            str(playground_port),
            "-e",
            f"http://127.0.0.1:{bot_port}/api/messages",
            "-c",
            "msteams",
            "--dt",
        ],
        cwd=tmp_path,
        env=env
        | write_config(tmp_path)  # its people named by role, not its sample tenant's
        | {"TEAMSAPPTESTER_BROWSER": "none", "NODE_OPTIONS": f"--require {LOOPBACK_ONLY}"},
        stdout=playground_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        await wait_until_up(f"http://127.0.0.1:{bot_port}/healthz", bot)
        await wait_until_up(f"http://127.0.0.1:{playground_port}/_internal/v1/testConfig", playground)
        yield f"http://127.0.0.1:{playground_port}"
    finally:
        stop(playground)
        stop(bot)
        bot_log.close()
        playground_log.close()
        if os.environ.get("COS_E2E_SHOW_LOGS"):
            print((tmp_path / "bot.log").read_text(), (tmp_path / "playground.log").read_text())


def card_containing(text: str) -> Callable[[Frame], bool]:
    """Matches a new message from the bot carrying an Adaptive Card that contains `text`."""

    def matches(frame: Frame) -> bool:
        attachments = (frame.get("message") or {}).get("attachments") or []
        return frame.get("action") == "createMessage" and any(
            a.get("contentType") == "application/vnd.microsoft.card.adaptive" and text in json.dumps(a)
            for a in attachments
        )

    return matches


def action_titled(card: dict, title: str) -> dict:  # type: ignore[type-arg]
    stack: list[object] = [card]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if str(node.get("type", "")).startswith("Action.") and node.get("title") == title:
                return node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    raise AssertionError(f"no action {title!r} in the card")


@pytest.fixture
def today() -> date:
    return date.today()


async def test_a_leader_plans_and_finishes_a_task_through_the_teams_emulator(
    peers: str, database_url: str, today: date
) -> None:
    start, end = today - timedelta(days=20), today + timedelta(days=70)
    due = today + timedelta(days=2)
    async with Playground(peers) as teams:
        chat = teams.conversation("personal")
        await teams.install(chat)
        welcome = await teams.wait_for(from_bot(containing="AdaptiveCard"))
        assert "chief of staff" in json.dumps(welcome).lower()

        n = len(teams.frames)
        await teams.say(chat, f"new plan 500 SQLs this quarter from {start} to {end} kpi SQLs 500")
        await teams.wait_for(from_bot(containing="Master plan P1 created"), start=n)
        # Like Teams, the emulator shows the text and the card of one reply as two messages.
        overview = await teams.wait_for(card_containing("500 SQLs this quarter"), start=n)
        assert "progress-P1" in json.dumps(overview)

        n = len(teams.frames)
        await teams.say(chat, f"tactical Launch from {start} to {end - timedelta(days=10)}")
        await teams.wait_for(from_bot(containing="Tactical plan P2 created"), start=n)

        n = len(teams.frames)
        await teams.say(chat, f"add task Draft launch email to P2 due {due} for me")
        task_frame = await teams.wait_for(card_containing("Draft launch email"), start=n)
        card_id = task_frame["message"]["messageId"]
        card_conversation = task_frame["actionConversationId"]
        card = task_frame["message"]["attachments"][0]["content"]

        # Action.Execute: the emulator invokes the bot and shows the card it answers with.
        snooze = action_titled(card, "Snooze 24 h")
        answer = await teams.execute(card_conversation, card_id, snooze["verb"], snooze["data"])
        assert answer["type"] == "application/vnd.microsoft.card.adaptive"
        assert "snoozed until" in json.dumps(answer["value"])

        # Action.Submit: the bot updates the same message in place through the emulator's connector.
        n = len(teams.frames)
        done = action_titled(card, "Done")
        await teams.submit(card_conversation, card_id, done["data"] | {"version": 2})
        updated = await teams.wait_for(from_bot("updateMessage", "Reopen"), start=n)
        assert updated["message"]["messageId"] == card_id

        n = len(teams.frames)
        await teams.say(chat, "dnoe T1")
        await teams.wait_for(from_bot(containing="Did you mean `done`"), start=n)

        group = teams.conversation("group")
        n = len(teams.frames)
        await teams.say(group, "plan", mention_bot=True)
        await teams.wait_for(from_bot(containing="500 SQLs this quarter"), start=n)

    # What the emulator showed is what the database holds.
    store = Store.from_url(database_url)
    try:
        async with store.engine.connect() as conn:
            [(tenant, status)] = (await conn.execute(select(tasks.c.tenant_id, tasks.c.status))).all()
        assert status == "done"
        assert tenant  # the emulator's Teams tenant, taken from the activities
    finally:
        await store.close()
