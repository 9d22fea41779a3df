"""Say what you mean, get what you said: a task's title may hold any words, and a sentence that reads two ways is
asked about, never guessed."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.grammar import Command, GrammarError, UnknownCommand, parse
from bot.operations import Caller, Context, Reply, default_registry
from bot.text import messages
from planner.domain.model import Window
from planner.services.directory import Directory
from planner.services.plans import Plans
from planner.services.tenants import Tenants
from planner.store import Store
from tests.bot.cards.test_cards import all_text, schema_errors
from tests.bot.conftest import TENANT as BOT_TENANT
from tests.bot.conftest import TeamsUser
from tests.conftest import FakeClock

TENANT = "contoso"


@pytest.mark.parametrize(
    ("text", "args"),
    [
        (
            "add task Draft brief for launch event owner Designer due Friday",
            {"title": "Draft brief for launch event", "owner": "Designer", "due": "Friday"},
        ),
        ("add task Send invite to partners due friday", {"title": "Send invite to partners", "due": "friday"}),
        ("add task Launch in Paris due 31 March", {"title": "Launch in Paris", "due": "31 March"}),
        ("add task Launch in Paris due Tue 31 March", {"title": "Launch in Paris", "due": "Tue 31 March"}),
        ("add task Check due diligence pack due friday", {"title": "Check due diligence pack", "due": "friday"}),
        ("add task Prepare milestone review due friday", {"title": "Prepare milestone review", "due": "friday"}),
        (
            "add task Send invite to partners to P2 due friday for me milestone",
            {"title": "Send invite to partners", "plan": "P2", "due": "friday", "owner": "me", "milestone": True},
        ),
        (
            "add task Plan for Q1 webinar due friday for Designer",
            {"title": "Plan for Q1 webinar", "due": "friday", "owner": "Designer"},
        ),
        (
            'add task "Plan for Q1 webinar for Designer" due friday',
            {"title": "Plan for Q1 webinar for Designer", "due": "friday"},
        ),
        ("add task 'Move it to P3' due friday", {"title": "Move it to P3", "due": "friday"}),
        (
            "add task \u201cMove the stand to Hall 4 due to works\u201d due 31 March owner @Designer",
            {"title": "Move the stand to Hall 4 due to works", "due": "31 March", "owner": "@Designer"},
        ),
        ("add task Designer's brief due tomorrow", {"title": "Designer's brief", "due": "tomorrow"}),
        ("add task Draft the brief by friday", {"title": "Draft the brief", "due": "friday"}),
        ("add task Grow SQLs by 10% by friday", {"title": "Grow SQLs by 10%", "due": "friday"}),
    ],
)
def test_a_task_title_keeps_every_word_it_was_given(text: str, args: dict[str, Any]) -> None:
    assert parse(text) == Command("add_task", args)


def test_a_title_keeps_its_words_as_typed_in_both_readings() -> None:
    command = parse("add task Plan For Q1 webinar FOR Designer due friday")
    assert command.args["as_person"]["title"] == "Plan For Q1 webinar"
    assert command.args["as_text"]["title"] == "Plan For Q1 webinar FOR Designer"
    assert parse("add task for Designer due friday") == Command("add_task", {"title": "for Designer", "due": "friday"})


@pytest.mark.parametrize(
    ("text", "args"),
    [
        (
            "tactical Launch in Paris from 2026-01-05 to 2026-02-27 in P1 owner Designer",
            {"title": "Launch in Paris", "start": "2026-01-05", "end": "2026-02-27", "kpis": [], "master": "P1"}
            | {"owner": "Designer"},
        ),
        ("set target SQLs in EMEA 600", {"targets": [{"name": "SQLs in EMEA", "target": "600"}]}),
        ("set target SQLs 600 in P1", {"targets": [{"name": "SQLs", "target": "600"}], "plan": "P1"}),
        ("edit master north star Grow from 500 to 600 SQLs", {"title": "Grow from 500 to 600 SQLs"}),
        ("record sign ups in EMEA 40", {"metric": "sign ups in EMEA", "value": "40"}),
        ("record SQLs 140 on 2026-02-15 in P2", {"metric": "SQLs", "value": "140", "on": "2026-02-15", "plan": "P2"}),
        (
            "use playbook launch for Launch in Paris from 2026-05-04 in P1",
            {"name": "launch", "title": "Launch in Paris", "start": "2026-05-04", "master": "P1"},
        ),
    ],
)
def test_in_for_on_from_and_to_start_a_clause_only_where_one_reads(text: str, args: dict[str, Any]) -> None:
    assert parse(text).args == args


def test_a_for_right_after_the_title_is_read_both_ways_for_the_bot_to_weigh() -> None:
    command = parse("add task Plan for Q1 webinar for Designer due friday")
    assert command == Command(
        "choose_reading",
        {
            "operation": "add_task",
            "person": "Designer",
            "as_person": {"title": "Plan for Q1 webinar", "due": "friday", "owner": "Designer"},
            "as_text": {"title": "Plan for Q1 webinar for Designer", "due": "friday"},
        },
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("add task Plan for Q1 webinar for Designer", "When is it due?"),
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
    return await default_registry().run(command.operation, Context(Tenants(store), caller, clock=clock), command.args)


async def tasks_of(store: Store) -> list[tuple[str, str | None]]:
    plans = Plans(store, TENANT)
    return [(t.title, t.owner) for t in await plans.list_tasks(2)]


async def test_a_name_nobody_has_stays_in_the_title(store: Store, clock: FakeClock) -> None:
    await a_plan(store)
    reply = await say(store, clock, "add task Plan for Q1 webinar for Designer due friday")
    assert reply.ok, reply.text
    assert await tasks_of(store) == [("Plan for Q1 webinar for Designer", None)]
    assert "Nobody owns it yet" in reply.text
    assert "I kept “for Designer” in the title: nobody called Designer has talked to me yet." in reply.text


async def test_an_at_mention_or_me_after_for_is_the_owner(store: Store, clock: FakeClock) -> None:
    await a_plan(store)
    await say(store, clock, "add task Plan for Q1 webinar for @Designer due friday", {"designer": "aad-designer"})
    await say(store, clock, "add task Book travel for me due friday")
    assert await tasks_of(store) == [("Plan for Q1 webinar", "aad-designer"), ("Book travel", "aad-lead")]


async def test_a_known_persons_name_is_asked_about_and_nothing_changes_until_a_reading_is_picked(
    store: Store, clock: FakeClock
) -> None:
    await a_plan(store)
    await Directory(store, TENANT).remember_person("aad-designer", "Designer")
    reply = await say(store, clock, "add task Thank-you note for Designer due friday")
    assert await tasks_of(store) == []
    [card] = reply.cards
    assert schema_errors(card) == []
    assert "Is Designer the task's owner, or part of its title? I changed nothing yet." in all_text(card)
    owner, title = card["actions"]
    assert owner["title"] == "\u201cThank-you note\u201d, owned by Designer"
    assert title["title"] == "\u201cThank-you note for Designer\u201d, no owner yet"
    assert owner["data"] == {"verb": "add_task", "title": "Thank-you note", "due": "friday", "owner": "Designer"}
    assert title["data"] == {"verb": "add_task", "title": "Thank-you note for Designer", "due": "friday"}

    # The button carries the whole operation; the task it adds replaces the question on the card.
    args = {k: v for k, v in owner["data"].items() if k != "verb"} | {"from_card": True}
    caller = Caller(tenant_id=TENANT, user_id="aad-lead", name="Lead")
    picked = await default_registry().run("add_task", Context(Tenants(store), caller, clock=clock), args)
    assert picked.card_update is not None
    assert "Thank-you note" in all_text(picked.card_update)
    assert await tasks_of(store) == [("Thank-you note", "aad-designer")]


async def test_the_reading_operation_runs_only_the_operations_it_weighs(store: Store, clock: FakeClock) -> None:
    caller = Caller(tenant_id=TENANT, user_id="aad-lead", name="Lead")
    args = {"operation": "load_policy", "person": "me", "as_person": {}, "as_text": {}}
    reply = await default_registry().run("choose_reading", Context(Tenants(store), caller, clock=clock), args)
    assert not reply.ok
    assert "only weigh" in reply.text


# ---- without an LLM key: everyday phrasings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("show me the plan", Command("show_plan")),
        ("Show me the plan P4?", Command("show_plan", {"plan": "P4"})),
        ("plan P4", Command("show_plan", {"plan": "P4"})),
        ("show all plans", Command("list_plans")),
        ("show P2", Command("show_plan", {"plan": "P2"})),
        ("show T3", Command("show_task", {"task": "T3"})),
        ("what's due this week?", Command("my_tasks")),
        ("What is due today", Command("my_tasks")),
        ("what's due next week?", Command("my_tasks", {"week": "next"})),
        ("my tasks next week", Command("my_tasks", {"week": "next"})),
        ("show me my tasks for next week", Command("my_tasks", {"week": "next"})),
        ("mark T3 done", Command("set_task_status", {"task": "T3", "status": "done"})),
        ("mark T3 as in progress", Command("set_task_status", {"task": "T3", "status": "doing"})),
        ("T3 is blocked", Command("set_task_status", {"task": "T3", "status": "blocked"})),
        ("how are we doing", Command("how_are_we_doing")),
        ("how are we doing?", Command("how_are_we_doing")),
        ("how are we doing P4", Command("how_are_we_doing", {"plan": "P4"})),
        ("how is it going on P4?", Command("how_are_we_doing", {"plan": "P4"})),
    ],
)
def test_everyday_phrasings_read_as_the_command_they_mean(text: str, command: Command) -> None:
    assert parse(text) == command


def test_a_reminder_asked_for_in_words_is_answered_with_the_command_that_gives_one() -> None:
    with pytest.raises(UnknownCommand) as unknown:
        parse("remind Designer about the blog on Wednesday")
    assert unknown.value.suggestion == 'add task "the blog" due Wednesday owner Designer'
    assert parse(unknown.value.suggestion) == Command(
        "add_task", {"title": "the blog", "due": "Wednesday", "owner": "Designer"}
    )
    said = messages.unknown_command(unknown.value.word, unknown.value.suggestion)
    assert 'Did you mean `add task "the blog" due Wednesday owner Designer`?' in said
    assert "without an Anthropic key (ANTHROPIC_API_KEY) I read commands, not free text" in said


@pytest.mark.parametrize(
    ("text", "closest"),
    [
        ("dnoe T1", "done"),
        ("shw plan", "show plan"),
        ("what is our pipeline looking like", "how are we doing"),
        ("is anything overdue", "my tasks"),
        ("who signs off the budget", "approvals"),
        ("show me the overdue tasks", "my tasks"),
    ],
)
def test_text_that_is_no_command_is_answered_with_the_closest_command(text: str, closest: str) -> None:
    with pytest.raises(UnknownCommand) as unknown:
        parse(text)
    assert unknown.value.suggestion == closest


async def plans_of_a_quarter(store: Store) -> None:
    """P1 the quarter, P2 and P3 tactical plans, P4 the weekly plan of P3 for next week."""
    plans = Plans(store, TENANT)
    quarter = Window(start=date(2026, 1, 1), end=date(2026, 3, 31))
    master = await plans.create_master_plan(title="Q1", owner="aad-lead", window=quarter, actor="aad-lead")
    await plans.create_tactical_plan(master.id, title="Webinars", owner="aad-lead", window=quarter, actor="aad-lead")
    launch = await plans.create_tactical_plan(
        master.id, title="Launch", owner="aad-lead", window=quarter, actor="aad-lead"
    )
    await plans.add_task(launch.id, title="Brief the agency", due_on=date(2026, 1, 14), actor="aad-lead")
    weekly, _ = await plans.derive_weekly_plan(launch.id, "2026-W03", actor="aad-lead")
    assert weekly.id == 4


@pytest.mark.parametrize(("plan", "title"), [("P3", "Launch"), ("P4", "Launch")])
async def test_plan_and_how_are_we_doing_answer_about_the_plan_named(
    store: Store, clock: FakeClock, plan: str, title: str
) -> None:
    await plans_of_a_quarter(store)
    [card] = (await say(store, clock, f"plan {plan}")).cards
    assert card["body"][0]["text"].startswith(title)
    assert plan in card["body"][1]["text"]
    doing = await say(store, clock, f"how are we doing {plan}")
    assert doing.ok, doing.text
    assert "Q1" not in doing.text
    assert plan in doing.text


async def test_plans_lists_every_plan_weekly_plans_too(store: Store, clock: FakeClock) -> None:
    await plans_of_a_quarter(store)
    listed = (await say(store, clock, "plans")).text
    assert [line.split()[1] for line in listed.splitlines()[1:]] == ["P1", "P2", "P3", "P4"]


async def test_without_a_key_the_bot_answers_free_text_with_the_command_to_use(lead: TeamsUser) -> None:
    [reply] = await lead.ask("remind Designer about the blog on Wednesday")
    assert 'Did you mean `add task "the blog" due Wednesday owner Designer`?' in reply
    assert "ANTHROPIC_API_KEY" in reply
    [reply] = await lead.ask("show me the plan")
    assert "There is no plan yet" in reply


async def test_in_teams_the_reading_picked_on_the_card_replaces_the_question_with_the_task(lead: TeamsUser) -> None:
    connector = lead.running.connector
    designer = TeamsUser(lead.running, user_id="aad-designer", name="Designer", conversation_id="a:personal-designer")
    await designer.ask("help")  # Designer says hello first, so the bot knows the name
    await lead.ask("new plan Q1 from 2026-01-01 to 2026-03-31")
    await lead.ask("tactical Launch from 2026-01-01 to 2026-03-31")
    before = len(connector.sent)
    [question_text] = await lead.ask("add task Thank-you note for Designer due 2026-01-09")
    assert question_text == ""  # the card asks, alone
    question = connector.sent[before]
    [card] = [a["content"] for a in question.body["attachments"]]
    assert await Plans(lead.running.store, BOT_TENANT).list_tasks(2) == []

    as_title = card["actions"][1]["data"]
    clicked = len(connector.sent)
    await lead.post(lead.activity(text=None, value=as_title, replyToId=question.activity_id))
    await connector.wait_for(clicked + 1)
    [update] = [s for s in connector.sent[before:] if s.method == "update"]
    assert update.activity_id == question.activity_id
    assert "Thank-you note for Designer" in all_text(update.body["attachments"][0]["content"])
    [task] = await Plans(lead.running.store, BOT_TENANT).list_tasks(2)
    assert (task.title, task.owner) == ("Thank-you note for Designer", None)


_MARKERS = {"due", "by", "owner", "for", "to", "in", "milestone"}
_TITLE_WORDS = [*_MARKERS, "Designer", "P2", "launch", "friday", "brief", "2026-03-20", "10%", "Paris"]


def _words(args: dict[str, Any]) -> list[str]:
    """The words of an add_task's arguments that are not markers, in no particular order."""
    text = " ".join(str(v) for k, v in args.items() if k != "milestone")
    return sorted(w.lower() for w in text.split() if w.lower() not in _MARKERS)


@settings(max_examples=400, deadline=None)
@given(
    title=st.lists(st.sampled_from(_TITLE_WORDS), min_size=1, max_size=7), owner=st.sampled_from(["", " owner Writer"])
)
def test_no_word_of_a_task_sentence_is_ever_dropped(title: list[str], owner: str) -> None:
    text = f"add task {' '.join(title)} due 2026-03-31{owner}"
    try:
        command = parse(text)
    except GrammarError:
        return  # refused, so nothing changes
    typed = sorted(w.lower() for w in [*title, "2026-03-31", *owner.split()] if w.lower() not in _MARKERS)
    readings = (
        [command.args] if command.operation == "add_task" else [command.args["as_person"], command.args["as_text"]]
    )
    for args in readings:
        assert _words(args) == typed, (text, args)
        assert args["due"] == "2026-03-31"
        if owner:
            assert args["owner"] == "Writer"


@pytest.mark.parametrize(
    ("text", "command"),
    [
        (
            'edit T12 title "Plan for Q1 webinar, to P2"',
            Command("edit_task", {"task": "T12", "title": "Plan for Q1 webinar, to P2"}),
        ),
        (
            "edit T12 title Plan for Q1 due friday",
            Command("edit_task", {"task": "T12", "title": "Plan for Q1 due friday"}),
        ),
        ("edit T12 due friday", Command("edit_task", {"task": "T12", "due": "friday"})),
        ("edit T12 due date 31 March", Command("edit_task", {"task": "T12", "due": "31 March"})),
        ("edit T12 owner @Designer", Command("edit_task", {"task": "T12", "owner": "@Designer"})),
        ("edit T12 milestone no", Command("edit_task", {"task": "T12", "milestone": "no"})),
        ("rename T12 Final brief", Command("edit_task", {"task": "T12", "title": "Final brief"})),
        ("rename P2 to Spring launch", Command("edit_plan", {"plan": "P2", "title": "Spring launch"})),
        ("rename Launch", None),
        ("move T12 to P3", Command("edit_task", {"task": "T12", "plan": "P3"})),
        ("delete T12", Command("delete_task", {"task": "T12"})),
        ("undo", Command("restore_task")),
        ("undo T12", Command("restore_task", {"task": "T12"})),
        ("undo P2", Command("restore_task", {"plan": "P2"})),
        ("edit P2 title Spring launch", Command("edit_plan", {"plan": "P2", "title": "Spring launch"})),
        ("edit P2 owner Designer", Command("edit_plan", {"plan": "P2", "owner": "Designer"})),
        (
            "edit P2 from 2 February to 13 March",
            Command("edit_plan", {"plan": "P2", "start": "2 February", "end": "13 March"}),
        ),
        ("edit P2 to 2026-03-13", Command("edit_plan", {"plan": "P2", "end": "2026-03-13"})),
        ("archive P2", Command("archive_plan", {"plan": "P2", "archived": True})),
        ("unarchive P2", Command("archive_plan", {"plan": "P2", "archived": False})),
        ("plans all", Command("list_plans", {"all": True})),
        ("edit master P1 north star 600 SQLs", Command("edit_master_plan", {"plan": "P1", "title": "600 SQLs"})),
    ],
)
def test_fixes_read_as_the_edit_they_mean(text: str, command: Command | None) -> None:
    if command is None:
        with pytest.raises(GrammarError):
            parse(text)
        return
    assert parse(text) == command


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("edit T12", "Change what of `T12`"),
        ("edit T12 colour red", "Change what of `T12`"),
        ("edit T12 plan Launch", "move T12 to P3"),
        ('edit T12 title "Brief" due friday', "nothing, not `due friday`"),
        ("edit something", "Edit which task or plan?"),
        ("move T12 to Launch", "move T12 to P3"),
        ("delete P2", "archive P2"),
        ("delete T12 T13", "one task at a time"),
        ("archive Launch", "archive P2"),
        ("plans old", "plans all"),
    ],
)
def test_a_fix_that_does_not_read_is_refused_saying_how(text: str, says: str) -> None:
    with pytest.raises(GrammarError) as error:
        parse(text)
    assert says in str(error.value)


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("budget P1 250k USD", Command("set_budget", {"amount": "250k", "currency": "USD", "plan": "P1"})),
        ("budget 1.2m eur", Command("set_budget", {"amount": "1.2m", "currency": "EUR"})),
        ("allocate 60k USD to P2", Command("allocate_budget", {"amount": "60k", "currency": "USD", "plan": "P2"})),
        ("allocate 60,000 to P2", Command("allocate_budget", {"amount": "60,000", "plan": "P2"})),
        (
            "move 10k USD from P2 to P3",
            Command("move_budget", {"amount": "10k", "currency": "USD", "from": "P2", "to": "P3"}),
        ),
        ("spend 12k USD on P2", Command("record_spend", {"amount": "12k", "currency": "USD", "plan": "P2"})),
        (
            "spend P2 12,500 USD on 2026-10-15",
            Command("record_spend", {"amount": "12,500", "currency": "USD", "plan": "P2", "on": "2026-10-15"}),
        ),
        ("spend 800 on P3 on yesterday", Command("record_spend", {"amount": "800", "plan": "P3", "on": "yesterday"})),
    ],
)
def test_budget_sentences_read_as_the_money_they_name(text: str, command: Command) -> None:
    assert parse(text) == command


@pytest.mark.parametrize("text", ["allocate lots to P2", "spend P2 on P3 12k", "budget P1", "move 10k from P2"])
def test_a_budget_sentence_missing_a_part_is_answered_with_its_form(text: str) -> None:
    with pytest.raises(GrammarError) as refused:
        parse(text)
    assert "`" in str(refused.value)


def test_moving_something_other_than_money_is_not_read_as_a_budget_shift() -> None:
    with pytest.raises(GrammarError) as refused:
        parse("move the webinar to friday")
    assert "`move T12 to P3`" in str(refused.value)


def test_a_refusal_shows_the_forms_of_a_command_its_reason_does_not_show_already() -> None:
    usage = ["allocate <amount> to <plan>", "allocate 60k USD to P2"]
    assert messages.refused("Allocate how much to which plan? `allocate 60k USD to P2`.", usage) == (
        "Allocate how much to which plan? `allocate 60k USD to P2`.\n\nUsage:\n`allocate AMOUNT to PLAN`"
    )
    assert messages.refused("Which plan?", usage) == (
        "Which plan?\n\nUsage:\n`allocate AMOUNT to PLAN` · `allocate 60k USD to P2`"
    )
    assert messages.refused("Which plan? `allocate 60k USD to P2`", usage[1:]) == "Which plan? `allocate 60k USD to P2`"
