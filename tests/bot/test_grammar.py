"""Say what you mean, get what you said: a task's title may hold any words, and a sentence that reads two ways is
asked about, never guessed."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from bot.grammar import Command, GrammarError, parse
from bot.operations import Caller, Context, Reply, default_registry
from planner.domain.model import Window
from planner.services.directory import Directory
from planner.services.plans import Plans
from planner.store import Store
from tests.bot.cards.test_cards import all_text, schema_errors
from tests.conftest import FakeClock

TENANT = "contoso"


@pytest.mark.parametrize(
    ("text", "args"),
    [
        (
            "add task Draft brief for launch event owner Sam due Friday",
            {"title": "Draft brief for launch event", "owner": "Sam", "due": "Friday"},
        ),
        ("add task Send invite to partners due friday", {"title": "Send invite to partners", "due": "friday"}),
        ("add task Launch in Paris due 31 March", {"title": "Launch in Paris", "due": "31 March"}),
        ("add task Check due diligence pack due friday", {"title": "Check due diligence pack", "due": "friday"}),
        ("add task Prepare milestone review due friday", {"title": "Prepare milestone review", "due": "friday"}),
        (
            "add task Send invite to partners to P2 due friday for me milestone",
            {"title": "Send invite to partners", "plan": "P2", "due": "friday", "owner": "me", "milestone": True},
        ),
        (
            "add task Plan for Q1 webinar due friday for Sam",
            {"title": "Plan for Q1 webinar", "due": "friday", "owner": "Sam"},
        ),
        (
            'add task "Plan for Q1 webinar for Sam" due friday',
            {"title": "Plan for Q1 webinar for Sam", "due": "friday"},
        ),
        ("add task 'Move it to P3' due friday", {"title": "Move it to P3", "due": "friday"}),
        (
            "add task \u201cMove the stand to Hall 4 due to works\u201d due 31 March owner @Sam",
            {"title": "Move the stand to Hall 4 due to works", "due": "31 March", "owner": "@Sam"},
        ),
        ("add task Sam's brief due tomorrow", {"title": "Sam's brief", "due": "tomorrow"}),
    ],
)
def test_a_task_title_keeps_every_word_it_was_given(text: str, args: dict[str, Any]) -> None:
    assert parse(text) == Command("add_task", args)


def test_a_for_right_after_the_title_is_read_both_ways_for_the_bot_to_weigh() -> None:
    command = parse("add task Plan for Q1 webinar for Sam due friday")
    assert command == Command(
        "choose_reading",
        {
            "operation": "add_task",
            "person": "Sam",
            "as_person": {"title": "Plan for Q1 webinar", "due": "friday", "owner": "Sam"},
            "as_text": {"title": "Plan for Q1 webinar for Sam", "due": "friday"},
        },
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("add task Plan for Q1 webinar for Sam", "When is it due?"),
        ("add task X due friday to celebrate", "X due friday to celebrate"),
        ('add task "Brief" to the agency due friday', "to the agency"),
        ("add task due friday", "needs a title"),
    ],
)
def test_a_task_sentence_that_does_not_read_is_refused_saying_what_was_read(text: str, says: str) -> None:
    with pytest.raises(GrammarError, match=says) as refused:
        parse(text)
    assert refused.value.operation == "add_task"


# ---- against a store: the readings weighed with the people the bot knows ---------------------------------------------


async def a_plan(store: Store) -> None:
    plans = Plans(store, TENANT)
    window = Window(start=date(2026, 1, 1), end=date(2026, 3, 31))
    master = await plans.create_master_plan(title="Q1", owner="aad-lead", window=window, actor="aad-lead")
    await plans.create_tactical_plan(master.id, title="Launch", owner="aad-lead", window=window, actor="aad-lead")


async def say(store: Store, clock: FakeClock, text: str, mentions: dict[str, str] | None = None) -> Reply:
    command = parse(text)
    caller = Caller(tenant_id=TENANT, user_id="aad-lead", name="Lead", mentions=mentions or {})
    return await default_registry().run(command.operation, Context(store, caller, clock=clock), command.args)


async def tasks_of(store: Store) -> list[tuple[str, str | None]]:
    plans = Plans(store, TENANT)
    return [(t.title, t.owner) for t in await plans.list_tasks(2)]


async def test_a_name_nobody_has_stays_in_the_title(store: Store, clock: FakeClock) -> None:
    await a_plan(store)
    reply = await say(store, clock, "add task Plan for Q1 webinar for Sam due friday")
    assert reply.ok, reply.text
    assert await tasks_of(store) == [("Plan for Q1 webinar for Sam", None)]
    assert "Nobody owns it yet" in reply.text


async def test_an_at_mention_or_me_after_for_is_the_owner(store: Store, clock: FakeClock) -> None:
    await a_plan(store)
    await say(store, clock, "add task Plan for Q1 webinar for @Sam due friday", {"sam": "aad-sam"})
    await say(store, clock, "add task Book travel for me due friday")
    assert await tasks_of(store) == [("Plan for Q1 webinar", "aad-sam"), ("Book travel", "aad-lead")]


async def test_a_known_persons_name_is_asked_about_and_nothing_changes_until_a_reading_is_picked(
    store: Store, clock: FakeClock
) -> None:
    await a_plan(store)
    await Directory(store, TENANT).remember_person("aad-sam", "Sam")
    reply = await say(store, clock, "add task Thank-you note for Sam due friday")
    assert await tasks_of(store) == []
    [card] = reply.cards
    assert schema_errors(card) == []
    assert "Is Sam the task's owner, or part of its title? I changed nothing yet." in all_text(card)
    owner, title = card["actions"]
    assert owner["title"] == "\u201cThank-you note\u201d, owned by Sam"
    assert title["title"] == "\u201cThank-you note for Sam\u201d, no owner yet"
    assert owner["data"] == {"verb": "add_task", "title": "Thank-you note", "due": "friday", "owner": "Sam"}
    assert title["data"] == {"verb": "add_task", "title": "Thank-you note for Sam", "due": "friday"}

    # The button carries the whole operation; the task it adds replaces the question on the card.
    args = {k: v for k, v in owner["data"].items() if k != "verb"} | {"from_card": True}
    caller = Caller(tenant_id=TENANT, user_id="aad-lead", name="Lead")
    picked = await default_registry().run("add_task", Context(store, caller, clock=clock), args)
    assert picked.card_update is not None
    assert "Thank-you note" in all_text(picked.card_update)
    assert await tasks_of(store) == [("Thank-you note", "aad-sam")]


async def test_the_reading_operation_runs_only_the_operations_it_weighs(store: Store, clock: FakeClock) -> None:
    caller = Caller(tenant_id=TENANT, user_id="aad-lead", name="Lead")
    args = {"operation": "load_policy", "person": "me", "as_person": {}, "as_text": {}}
    reply = await default_registry().run("choose_reading", Context(store, caller, clock=clock), args)
    assert not reply.ok
    assert "only weigh" in reply.text
