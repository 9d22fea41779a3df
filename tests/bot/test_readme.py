"""The README's walk-throughs, run as written: each chat line is said to the bot, each shell line run as `cos`."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shlex
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine

from bot.cli import build_parser, main
from tests.bot.conftest import LOCAL_ADMIN, TeamsUser
from tests.conftest import Database, FakeClock

README = Path(__file__).resolve().parents[2] / "README.md"
# A Tuesday morning in the person's time zone (Europe/London): outside quiet hours, "friday" three days ahead.
MORNING = datetime(2026, 3, 3, 10, tzinfo=UTC)


def section(title: str) -> str:
    """The README's text under a heading, up to the next heading."""
    text = README.read_text(encoding="utf-8")
    start = text.index(title)
    following = re.search(r"^#{2,6} ", text[start + len(title) :], re.MULTILINE)  # `# ` starts a shell comment
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


def as_on_a_developers_machine(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk-through's setting: the embedded SQLite database, local mode, no admins but the local one."""
    if database.backend != "sqlite":
        pytest.skip("the walk-through is the embedded default: SQLite")
    monkeypatch.setenv("DATABASE_URL", database.url)
    for name in ("MICROSOFT_APP_ID", "COS_SECRET_KEYS", "COS_ADMINS"):
        monkeypatch.delenv(name, raising=False)


async def test_try_an_approval_locally_works_as_written(
    lead: TeamsUser, clock: FakeClock, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_on_a_developers_machine(database, monkeypatch)
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
        assert "Lead approved the deadline approaching message for task T1: rule reminders-checked matched" in why

        before = len(connector.sent)
        await shell(tick)
        reminder = "\n".join(all_text(s.body) for s in connector.sent[before:])
        assert "Heads up: T1 Draft launch email is due Wed 4 Mar." in reminder


async def test_a_tick_that_only_holds_a_reminder_sends_its_approval_card_at_once(
    lead: TeamsUser, clock: FakeClock, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step 4's `cos tick` when the held reminder is all it has to send: the card arrives with it, not a minute on."""
    as_on_a_developers_machine(database, monkeypatch)
    connector = lead.running.connector
    clock.now = MORNING
    with time_machine.travel(MORNING, tick=True):
        # Nothing else to say this morning: no week plan, no KPI drift, no change of health.
        for trigger in ("weekly", "drift", "health"):
            await lead.ask(f"triggers off {trigger}")
        steps = fenced_blocks(section("### Try an approval locally"))
        for line in steps[2][1]:
            await lead.ask(line)
        await lead.running.bot.drain()
        before = len(connector.sent)
        said = io.StringIO()
        with redirect_stdout(said):
            assert await asyncio.to_thread(main, cos_argv(steps[3][1][0])) == 0
        await lead.running.bot.drain()
        assert "1 sent, 1 held for approval" in said.getvalue()
        arrived = "\n".join(all_text(s.body) for s in connector.sent[before:])
    assert "Approval needed" in arrived
    assert "the deadline approaching message to" in arrived


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


# ---- every `cos` command the README shows ---------------------------------------------------------------------------

PLACEHOLDERS = re.compile(r"[\[<…]|\\\||\b(?:FILE|NAME|ID|URL|GUID|PATH|REVISION|USER_ID|ISO-8601-TIME|H|P|X\.Y\.Z)\b")


def readme_cos_commands() -> list[str]:
    """Every `cos …` the README shows, in order: inline code and the lines of its shell blocks."""
    text = README.read_text(encoding="utf-8")
    found = re.findall(r"`(?:\.venv/bin/)?(cos [^`\n]+)`", text)
    for info, lines in fenced_blocks(text):
        if info == "sh":
            found += [line.removeprefix(".venv/bin/") for line in lines if line.startswith((".venv/bin/cos ", "cos "))]
    return list(dict.fromkeys(found))


def parses(command: str) -> bool:
    """Whether `command` is complete: `cos` would run it."""
    try:
        build_parser().parse_args(shlex.split(command)[1:])
    except SystemExit:
        return False
    return True


def names_a_command(command: str) -> bool:
    """Whether the words of `command` before its first placeholder name a `cos` command (`cos adapters list|…`)."""
    words = PLACEHOLDERS.split(command)[0].split()[1:]
    words = [w for w in words if not w.startswith("-")][:2] or words[:1]
    try:
        with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            build_parser().parse_args([*words, "--help"])
    except SystemExit as exit_:
        return exit_.code == 0
    return False


def test_every_cos_command_in_the_readme_is_a_real_one() -> None:
    commands = readme_cos_commands()
    assert len(commands) > 30
    for command in commands:
        # A synopsis (placeholders, options in brackets, alternatives) or a mention (`cos policy load`) names a real
        # command; a complete one is an example, and runs as written (below).
        assert parses(command) or names_a_command(command), command
    assert not names_a_command("cos adapter list")


def test_the_readmes_cos_examples_run_as_written_from_any_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.metadata

    examples = [c for c in readme_cos_commands() if not PLACEHOLDERS.search(c) and parses(c)]
    for name in ("DATABASE_URL", "MICROSOFT_APP_ID", "MICROSOFT_APP_PASSWORD", "COS_SECRET_KEYS", "COS_ADMINS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    # The shell block's own settings, and its `pip install mcp-server-time` (installed with the test extras here).
    for _, lines in fenced_blocks(README.read_text(encoding="utf-8")):
        for line in lines:
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").partition("=")
                monkeypatch.setenv(name, value)
            elif line.startswith(".venv/bin/pip install "):
                for package in line.split()[2:]:
                    assert importlib.metadata.version(package)
    assert os.environ["COS_STDIO_COMMANDS"] == "mcp-server-time"

    ran: list[str] = []
    for command in ["cos db upgrade", *examples]:
        if command == "cos serve":
            continue  # test_the_quick_start_serves_on_loopback_and_makes_its_files
        if command.startswith("cos adapters import-codegen"):
            continue  # needs a recording of the reader's own: tests/adapters/test_browser_codegen.py runs one
        if command.startswith("cos manifest"):
            monkeypatch.setenv("MICROSOFT_APP_ID", "00000000-0000-0000-0000-000000000001")  # an install needs one
        assert main(shlex.split(command)[1:]) == 0, (command, capsys.readouterr())
        monkeypatch.delenv("MICROSOFT_APP_ID", raising=False)
        ran.append(command)
    out = capsys.readouterr().out
    assert {
        "cos where",
        "cos tick",
        "cos tick --at 2026-02-16T09:00:00+00:00",
        'cos adapters register --tenant T mcp clock \'{"transport": "stdio", "command": "mcp-server-time"}\'',
        "cos adapters test --tenant T clock",
        "cos decisions verify",
    } <= set(ran)
    assert "mcp:clock registered" in out
    assert "clock: ok in " in out
    assert "get_current_time (off)" in out
    assert "cos adapters enable --tenant T clock get_current_time" in ran
    assert not [p for p in tmp_path.iterdir() if p.name not in ("data", "chief-of-staff.zip")]  # nothing in the cwd


async def test_the_quick_start_serves_on_loopback_and_makes_its_files_in_the_data_folder(tmp_path: Path) -> None:
    from tests.e2e.test_playground import free_port, stop, wait_until_up

    [(_, quick_start), *_] = fenced_blocks(section("## Quick start"))
    assert quick_start[1] == "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/cos serve"
    port, data = free_port(), tmp_path / "data"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("MICROSOFT_APP", "ANTHROPIC", "DATABASE_URL", "COS_"))
    }
    env |= {"COS_DATA_DIR": str(data), "COS_PORT": str(port), "PYTHONPATH": str(README.parent)}
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve"],  # `.venv/bin/cos serve`, from a folder of its own
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        await wait_until_up(f"http://127.0.0.1:{port}/healthz", serve)
    finally:
        stop(serve)
        log.close()
    made_its_files_in_the_data_folder(tmp_path, data)


def made_its_files_in_the_data_folder(folder: Path, data: Path) -> None:
    assert (data / "chief_of_staff.db").exists()
    assert (data / "chief_of_staff.key").stat().st_mode & 0o077 == 0  # owner-only
    assert sorted(p.name for p in folder.iterdir()) == ["data", "serve.log"]  # nothing in the folder it ran from
    assert f"database: SQLite file {data / 'chief_of_staff.db'}" in (folder / "serve.log").read_text()
