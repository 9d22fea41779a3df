"""Text that attacks the bot as text: a message built to make the grammar backtrack, one too long to read, control
characters PostgreSQL refuses, Markdown that would pass for the bot's own buttons, and an @mention whose words name
someone other than the person it points at.

The store suite's backends apply: with COS_TEST_DATABASE_URL set, every turn here runs on PostgreSQL too.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from datetime import date

import pytest

from bot.grammar import GrammarError, parse
from bot.teams.handler import MAX_MESSAGE_CHARS
from bot.text import messages
from planner.domain.people import printable
from planner.services.directory import Directory
from planner.services.plans import Plans
from planner.store import Store
from tests.bot.conftest import TENANT, Running, TeamsUser, start_bot
from tests.conftest import FakeClock
from tests.fakes.connector import FakeConnector
from tests.security.conftest import stop_bot


@pytest.fixture
async def running(store: Store, connector: FakeConnector, clock: FakeClock) -> AsyncIterator[Running]:
    bot = await start_bot(store, connector, clock)
    yield bot
    await stop_bot(bot)


@pytest.fixture
def lead(running: Running) -> TeamsUser:
    return TeamsUser(running)


# ---- no message freezes the bot ------------------------------------------------------------------------------------

ADVERSARIAL_CHARS = 200_000
PARSE_SECONDS = 0.5
"""CPU seconds one parse may take. Linear, the slowest of these takes some 0.05 s; the window's regular expression,
quadratic, took 17 s on 100 KB of `from` (some 66 s on 200 KB)."""
HEADS = [
    "new plan Launch",
    "tactical Launch",
    "add task Draft",
    "record SQLs",
    "use playbook launch for May",
    "why",
    "approve A1",
    "block T1",
    "snooze T1",
    "assign T1 to",
    "delegate T1 to hubspot draft",
    "save playbook P1 as",
    "new plan Launch from 2026-01-05 to 2026-03-31 kpi SQLs",
    "adapter add mcp vendor",
    "policy load",
    "frobnicate",
]
BODIES = {
    "a chain of from": "from ",
    "a chain of to": "to ",
    "spaces": " " * 9 + "x",
    "an = chain": "a=",
    "digits": "1",
    "mixed separators": "from 1 = to : - until kpi owner due for in milestone 2.5k% T1 ",
}


@pytest.mark.parametrize("body", list(BODIES))
def test_no_text_of_200_kb_keeps_the_grammar_busy(body: str) -> None:
    slowest = 0.0
    for head in HEADS:
        text = (head + " " + BODIES[body] * ADVERSARIAL_CHARS)[:ADVERSARIAL_CHARS] + " x"
        started = time.process_time()
        with contextlib.suppress(GrammarError):
            parse(text)
        slowest = max(slowest, time.process_time() - started)
    assert slowest < PARSE_SECONDS, f"{body}: {slowest:.2f} s"


async def test_a_message_longer_than_the_bot_reads_is_refused_politely_and_does_nothing(lead: TeamsUser) -> None:
    long = "new plan Launch from 2026-01-05 to 2026-03-31 " + "from " * MAX_MESSAGE_CHARS
    [said] = await lead.ask(long)
    assert said == messages.too_long(MAX_MESSAGE_CHARS)
    assert "4,000 characters" in said
    assert await Plans(lead.running.store, TENANT).list_plans() == []


async def test_a_message_as_long_as_the_bot_reads_is_read(lead: TeamsUser) -> None:
    [long] = await lead.ask("plans " + "x" * (MAX_MESSAGE_CHARS - len("plans ")))
    assert long != messages.too_long(MAX_MESSAGE_CHARS)
    assert "`plans all`" in long  # read whole, and answered as the command it starts with


async def test_an_unknown_word_is_repeated_back_cut_short(lead: TeamsUser) -> None:
    [said] = await lead.ask("[✅Approve](https://evil.example)" + "x" * 3000)
    assert said.startswith("I don't know the command `")
    assert len(said) < 250  # 60 characters of the 3,000 typed, a suggestion and how free text is read
    assert "…`" in said


# ---- NUL and control characters -------------------------------------------------------------------------------------


async def test_a_display_name_holding_nul_works_on_every_backend(running: Running) -> None:
    named = TeamsUser(running, name="Lead\x00 Mark\x07eter\x9b")
    [said] = await named.ask("new plan Lau\x00nch from 2026-01-05 to 2026-03-31 kpi SQLs 500")
    assert said.startswith("Master plan P1 created")
    [plan] = await Plans(running.store, TENANT).list_plans()
    assert plan.title == "Launch"
    person = await Directory(running.store, TENANT).person(named.user_id)
    assert person is not None
    assert person.name == "Lead Marketer"
    [again] = await named.ask("plans")  # and every later turn of that person works too
    assert "P1" in again or running.connector.cards()


async def test_a_card_input_holding_nul_is_stored_without_it(lead: TeamsUser) -> None:
    await lead.ask("new plan Launch from 2026-01-05 to 2026-03-31")
    await lead.ask("tactical January from 2026-01-05 to 2026-01-30")
    await lead.ask("add task Draft the email due 2026-01-09 for me")
    await lead.ask_value({"verb": "set_task_status", "task": 1, "status": "blocked", "reason": "wait\x00ing on legal"})
    task = await Plans(lead.running.store, TENANT).get_task(1)
    assert task.blocked_reason == "waiting on legal"


async def test_the_directory_keeps_no_control_character_in_a_name(store: Store) -> None:
    person = await Directory(store, TENANT).remember_person("aad-someone", "New\x00 User\x1b[31m", "Europe/\x00Paris")
    assert (person.name, person.time_zone) == ("New User[31m", "Europe/Paris")


def test_printable_keeps_tabs_line_breaks_and_every_visible_character() -> None:
    assert printable("a\tb\nc\r\nd é ✅ \u2060") == "a\tb\nc\r\nd é ✅ \u2060"
    assert printable("\x00\x01\x08\x0b\x0c\x0e\x1f\x7f\x80\x9f") == ""


# ---- a reply names the person actually meant ------------------------------------------------------------------------


def _mention(words: str, user_id: str, teams_name: str) -> dict[str, object]:
    return {
        "type": "mention",
        "text": f"<at>{words}</at>",
        "mentioned": {"id": f"29:{user_id}", "aadObjectId": user_id, "name": teams_name},
    }


async def _plan_for_tasks(lead: TeamsUser) -> None:
    await lead.ask("new plan Launch from 2026-01-05 to 2026-03-31")
    await lead.ask("tactical January from 2026-01-05 to 2026-01-30")


async def test_a_mention_whose_words_name_someone_else_is_answered_with_the_stored_name(lead: TeamsUser) -> None:
    await Directory(lead.running.store, TENANT).remember_person("aad-analyst", "Campaign Analyst")
    await _plan_for_tasks(lead)
    before = len(lead.running.connector.sent)
    await lead.say(
        "add task Brief the agency due 2026-01-16 for <at>Chief Executive</at>",
        entities=[_mention("Chief Executive", "aad-analyst", "Chief Executive")],
    )
    [said] = [s.body.get("text") or "" for s in await lead.running.connector.wait_for(before + 1)][before:]
    task = await Plans(lead.running.store, TENANT).get_task(1)
    assert task.owner == "aad-analyst"
    assert "owned by Campaign Analyst" in said
    assert "Chief Executive" not in said


async def test_a_mention_of_someone_new_stores_them_by_id_under_their_teams_name(lead: TeamsUser) -> None:
    await _plan_for_tasks(lead)
    before = len(lead.running.connector.sent)
    await lead.say(
        "add task Brief the agency due 2026-01-16 for <at>Boss</at>",
        entities=[_mention("Boss", "aad-newcomer", "New Colleague")],
    )
    [said] = [s.body.get("text") or "" for s in await lead.running.connector.wait_for(before + 1)][before:]
    assert "owned by New Colleague" in said
    stored = await Directory(lead.running.store, TENANT).person("aad-newcomer")
    assert stored is not None
    assert stored.name == "New Colleague"
    assert (await Plans(lead.running.store, TENANT).get_task(1)).due_on == date(2026, 1, 16)
