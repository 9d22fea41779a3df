"""The bot through its HTTP endpoint, with a real CloudAdapter replying to a loopback Bot Connector."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from bot.http.app import create_app
from bot.settings import Settings
from bot.teams.botbuilder import create_adapter
from bot.teams.handler import ChiefOfStaffBot
from planner.services.directory import Directory
from planner.services.plans import Plans
from planner.store import Store
from planner.store.schema import plans, tasks
from tests.bot.cards.test_cards import all_text
from tests.bot.conftest import TENANT, Running, TeamsUser, start_bot
from tests.conftest import FakeClock
from tests.fakes.connector import FakeConnector

NEW_PLAN = "new plan 500 SQLs by 31 March from 2026-01-01 to 2026-03-31 kpi SQLs 500 tolerance 10%"


async def count(store: Store, table) -> int:
    async with store.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def test_health_answers_ok_while_the_database_is_reachable(running: Running) -> None:
    async with running.session.get(running.server.make_url("/healthz")) as response:
        assert response.status == 200
        assert (await response.json())["database"] == "ok"


async def test_health_answers_503_when_the_database_is_unreachable(
    connector: FakeConnector, clock: FakeClock, tmp_path: Path
) -> None:
    threads = set(threading.enumerate())
    broken = Store.from_url(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'cos.db'}")
    running = await start_bot(broken, connector, clock)
    try:
        async with running.session.get(running.server.make_url("/healthz")) as response:
            assert response.status == 503
            assert (await response.json())["database"] == "unreachable"
    finally:
        await running.session.close()
        await running.server.close()
        await broken.close()
        # A connection that failed to open tells its worker thread to stop without waiting for it (aiosqlite): on a
        # busy machine the thread then reported to this test's event loop after it had closed, failing the next test.
        for worker in set(threading.enumerate()) - threads:
            if "connection_worker" in worker.name:
                await asyncio.to_thread(worker.join, 30)
                assert not worker.is_alive()


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"Content-Type": "text/plain"}, b"hello", 415),
        ({}, b"{}", 415),
        ({"Content-Type": "application/json"}, b"{not json", 400),
        ({"Content-Type": "application/json"}, b"[1, 2]", 400),
        ({"Content-Type": "application/json"}, b'{"text": "no type"}', 400),
        ({"Content-Type": "application/json"}, b'{"type": "message", "from": "x"}', 400),
        ({"Content-Type": "application/json"}, json.dumps({"type": "message", "text": "x" * 300_000}).encode(), 413),
    ],
)
async def test_malformed_requests_get_a_4xx_and_change_nothing(
    running: Running, headers: dict[str, str], body: bytes, status: int
) -> None:
    async with running.session.post(running.url, data=body, headers=headers) as response:
        assert response.status == status
        assert "error" in await response.json()
    assert running.connector.sent == []
    assert await Directory(running.store, TENANT).conversations() == []


async def test_a_reply_never_goes_to_a_service_url_an_attacker_wrote(lead: TeamsUser) -> None:
    response = await lead.post(lead.activity(text="help", serviceUrl="https://evil.example.com/"))
    assert response.status == 403
    assert await Directory(lead.running.store, TENANT).conversations() == []


async def test_install_welcomes_with_a_card_and_remembers_the_conversation(lead: TeamsUser) -> None:
    await lead.post(lead.activity(type="conversationUpdate", membersAdded=[{"id": "28:bot"}], text=None))
    [sent] = await lead.running.connector.wait_for(1)
    assert sent.conversation_id == lead.conversation_id
    [card] = lead.running.connector.cards()
    assert card["type"] == "AdaptiveCard"
    [conversation] = await Directory(lead.running.store, TENANT).conversations(kind="personal")
    assert conversation.user_id == "aad-lead"
    assert conversation.address["serviceUrl"] == lead.running.connector.url
    person = await Directory(lead.running.store, TENANT).person("aad-lead")
    assert person is not None
    assert (person.name, person.time_zone) == ("Lead", "Europe/London")


async def test_leader_builds_a_plan_and_a_member_finishes_a_task(lead: TeamsUser, clock: FakeClock) -> None:
    connector = lead.running.connector
    [created] = await lead.ask(NEW_PLAN)
    assert "Master plan P1 created with 1 KPI" in created
    assert connector.cards()[-1]["type"] == "AdaptiveCard"

    [tactical] = await lead.ask("tactical January push from 2026-01-01 to 2026-01-31 kpi SQLs 150")
    assert "Tactical plan P2 created" in tactical
    member = TeamsUser(lead.running, user_id="aad-writer", name="Writer One", conversation_id="a:personal-writer")
    await member.ask("help")  # the writer says hello first, so the bot knows the name
    [added] = await lead.ask("add task Draft launch email to P2 due 2026-01-09 for Writer milestone")
    assert "Task T1 added to P2: Draft launch email, due Fri 9 Jan, owned by" in added
    assert "owned by Writer One" in added
    [_week] = await lead.ask("week P2 2026-W02")

    await member.ask("my tasks")
    week_card = json.dumps(connector.cards()[-1])
    assert "Draft launch email" in week_card

    [done] = await member.ask("done T1")
    assert "T1 done by Writer One" in done
    store = Plans(lead.running.store, TENANT)
    task = await store.get_task(1)
    assert (task.status.value, task.owner, task.milestone) == ("done", "aad-writer", True)

    [recorded] = await lead.ask("record SQLs 60 in P1")
    assert "Recorded SQLs = 60 on P1" in recorded
    assert await count(lead.running.store, plans) == 3  # master, tactical, week


async def test_malformed_command_shows_usage_and_changes_nothing(lead: TeamsUser) -> None:
    [reply] = await lead.ask("new plan Grow pipeline from 2026-13-01 to 2026-03-31")
    assert "YYYY-MM-DD" in reply
    assert "Usage" in reply
    [reply] = await lead.ask("add task Write brief")
    assert "`due DATE`" in reply
    [reply] = await lead.ask("dnoe T1")
    assert "Did you mean `done`" in reply
    assert await count(lead.running.store, plans) == 0
    assert await count(lead.running.store, tasks) == 0


async def test_plan_shows_the_master_plan_active_today_by_its_owners_names_or_asks_which(lead: TeamsUser) -> None:
    [reply] = await lead.ask("plan")
    assert "There is no plan yet" in reply
    await lead.ask(NEW_PLAN)
    member = TeamsUser(lead.running, user_id="aad-member", name="Member", conversation_id="a:personal-member")
    await member.ask("help")  # the member says hello first, so the bot knows the name
    await lead.ask("tactical January push from 2026-01-01 to 2026-01-31 owner Member")

    await lead.ask("plan")
    card = json.dumps(lead.running.connector.cards()[-1])
    assert "500 SQLs by 31 March" in card
    assert "January push" in card
    assert "Member" in card
    assert "aad-member" not in card
    assert "aad-lead" not in card  # the lead, asking, is named as Teams says

    await lead.ask("new plan Second north star from 2026-01-01 to 2026-06-30")
    [reply] = await lead.ask("plan")
    assert "Which plan?" in reply
    assert "P1 (500 SQLs by 31 March)" in reply
    assert "P3 (Second north star)" in reply
    await lead.ask("plan P3")
    assert "Second north star" in json.dumps(lead.running.connector.cards()[-1])
    [reply] = await lead.ask("plan P9")
    assert "No plan with id 9" in reply


async def test_a_week_long_plan_is_not_at_risk_the_day_it_opens(lead: TeamsUser, clock: FakeClock) -> None:
    assert clock.now.date() == date(2026, 1, 5)  # a Monday morning
    await lead.ask("new plan 50 MQLs this week from 2026-01-05 to 2026-01-11 kpi MQLs 50")
    await lead.ask("tactical Push from 2026-01-05 to 2026-01-11")
    await lead.ask("add task Draft launch email due 2026-01-09 owner me")
    await lead.ask("plan")
    card = json.dumps(lead.running.connector.cards()[-1], ensure_ascii=False)
    assert "At risk" not in card
    assert "Off track" not in card
    assert "No reading yet; target 50 (expected 0 by now)" in card
    clock.advance(days=1)  # by Tuesday a day has gone: the KPI with no reading is a risk again
    await lead.ask("plan")
    card = json.dumps(lead.running.connector.cards()[-1], ensure_ascii=False)
    assert "Why: no reading of MQLs yet (14 expected by now)" in card


async def test_on_a_sunday_this_week_is_the_week_ending_today_said_with_its_days_and_next_week_is_offered(
    lead: TeamsUser, clock: FakeClock
) -> None:
    await lead.ask(NEW_PLAN)
    await lead.ask("tactical Launch from 2026-01-05 to 2026-02-27")
    await lead.ask("add task Send the recap due 2026-01-11 owner me")
    await lead.ask("add task Brief the agency due 2026-01-14 owner me")
    clock.now = datetime(2026, 1, 11, 18, 0, tzinfo=UTC)  # Sunday evening: weekly plans run Monday to Sunday
    [said] = await lead.ask("what's due this week?")
    assert said == "This week, 5 Jan \u2013 11 Jan 2026, ends today. For the week ahead, ask `what's due next week`."
    card = all_text(lead.running.connector.cards()[-1])
    assert "5 Jan \u2013 11 Jan 2026" in card
    assert "Due this week (1)" in card
    assert card.index("Send the recap") < card.index("Later (1)") < card.index("Brief the agency")

    [said] = await lead.ask("what's due next week")
    assert said == ""  # the card says it all
    card = all_text(lead.running.connector.cards()[-1])
    assert "12 Jan \u2013 18 Jan 2026" in card
    assert "Due next week (1)" in card
    assert "Brief the agency" in card
    assert card.index("Due before next week (1)") < card.index("Send the recap") < card.index("Due next week")

    clock.now = datetime(2026, 1, 14, 9, 0, tzinfo=UTC)  # midweek "this week" needs no word on its days
    [said] = await lead.ask("what's due this week?")
    assert said == ""
    assert "Due this week (1)" in all_text(lead.running.connector.cards()[-1])


async def test_the_plans_list_shows_each_window_as_the_plan_card_does(lead: TeamsUser) -> None:
    await lead.ask(NEW_PLAN)
    await lead.ask("tactical February push from 2026-02-01 to 2026-02-28")
    await lead.ask("plan")
    card = json.dumps(lead.running.connector.cards()[-1], ensure_ascii=False)
    assert "1 Jan \u2013 31 Mar 2026" in card
    [listed] = await lead.ask("plans")
    assert "- P1 500 SQLs by 31 March (1 Jan \u2013 31 Mar 2026)" in listed
    assert "  - P2 February push (1 Feb \u2013 28 Feb 2026)" in listed
    assert "2026-" not in listed


async def test_a_retried_activity_is_processed_once(lead: TeamsUser) -> None:
    activity = lead.activity(text=NEW_PLAN)
    await lead.post(activity)
    await lead.running.connector.wait_for(1)
    await lead.post(activity)  # Teams retries when it got no answer in 15 s
    await lead.ask("plans")
    assert await count(lead.running.store, plans) == 1
    # The retry stopped at its first write and said so: the command's answer, "done already", and `plans`.
    texts = [s.body.get("text") for s in lead.running.connector.sent]
    assert texts[1] == "Done already: that was taken care of the first time."
    assert len(texts) == 3


async def test_an_activity_delivered_twice_at_once_writes_once(lead: TeamsUser) -> None:
    activity = lead.activity(text=NEW_PLAN)
    statuses = await asyncio.gather(lead.post(activity), lead.post(activity))
    assert {s.status for s in statuses} <= {200, 201}
    assert await count(lead.running.store, plans) == 1
    assert await lead.running.store.processed(TENANT, f"activity:{lead.conversation_id}:{activity['id']}")


async def test_channel_mentions_are_stripped_and_other_mentions_resolve_people(running: Running) -> None:
    channel = TeamsUser(running, conversation_id="19:general@thread.tacv2;messageid=1", kind="channel")
    await channel.ask(NEW_PLAN)
    await channel.ask("tactical Launch from 2026-01-05 to 2026-02-27")
    mention_bot = {
        "type": "mention",
        "text": "<at>Chief of Staff</at>",
        "mentioned": {"id": "28:bot", "name": "Chief of Staff"},
    }
    mention_ana = {
        "type": "mention",
        "text": "<at>Campaign Analyst</at>",
        "mentioned": {"id": "29:analyst", "aadObjectId": "aad-analyst", "name": "Campaign Analyst"},
    }
    before = len(running.connector.sent)
    await channel.post(
        channel.activity(
            text="<at>Chief of Staff</at> add task Brief agency due 2026-01-16 for <at>Campaign Analyst</at>",
            entities=[mention_bot, mention_ana],
        )
    )
    await running.connector.wait_for(before + 1)
    task = await Plans(running.store, TENANT).get_task(1)
    assert (task.title, task.owner, task.due_on) == ("Brief agency", "aad-analyst", date(2026, 1, 16))


def find_action(card: dict, title: str) -> dict:  # type: ignore[type-arg]
    """The action of a card (its own or inside a ShowCard) with this title."""
    stack = [card]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type", "").startswith("Action.") and node.get("title") == title:
                return node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    raise AssertionError(f"no action {title!r}")


async def _plan_with_task(lead: TeamsUser) -> dict:  # type: ignore[type-arg]
    await lead.ask(NEW_PLAN)
    await lead.ask("tactical Launch from 2026-01-05 to 2026-02-27")
    await lead.ask("add task Draft launch email due 2026-01-16 for me")
    return lead.running.connector.cards()[-1]


async def test_task_card_done_button_updates_the_task_and_the_card_in_place(lead: TeamsUser) -> None:
    card = await _plan_with_task(lead)
    card_message = lead.running.connector.sent[-1]
    done = find_action(card, "Done")
    before = len(lead.running.connector.sent)
    # Action.Submit path: Teams posts a message whose value is the action's data, replying to the card.
    await lead.post(lead.activity(text=None, value=done["data"], replyToId=card_message.activity_id))
    [update] = (await lead.running.connector.wait_for(before + 1))[before:]
    assert update.method == "update"
    assert update.activity_id == card_message.activity_id
    updated = update.body["attachments"][0]["content"]
    assert "Reopen" in json.dumps(updated)
    assert "Marked" in json.dumps(updated) or "done" in json.dumps(updated)
    task = await Plans(lead.running.store, TENANT).get_task(1)
    assert task.status.value == "done"


async def test_universal_action_returns_the_updated_card_in_the_invoke_response(lead: TeamsUser) -> None:
    card = await _plan_with_task(lead)
    snooze = find_action(card, "Snooze 24 h")
    invoke = lead.activity(
        type="invoke",
        name="adaptiveCard/action",
        text=None,
        value={
            "action": {"type": "Action.Execute", "verb": snooze["verb"], "data": snooze["data"]},
            "trigger": "manual",
        },
    )
    async with lead.running.session.post(lead.running.url, json=invoke) as response:
        assert response.status == 200
        body = await response.json()
    assert body["statusCode"] == 200
    assert body["type"] == "application/vnd.microsoft.card.adaptive"
    assert "snoozed until" in json.dumps(body["value"])
    task = await Plans(lead.running.store, TENANT).get_task(1)
    assert task.snoozed_until is not None
    # Teams delivers the click again (it had no answer in time): the card says it was done, and nothing changes.
    async with lead.running.session.post(lead.running.url, json=invoke) as response:
        assert response.status == 200
        again = await response.json()
    assert (again["statusCode"], again["value"]) == (200, "Done already: that was taken care of the first time.")
    assert await Plans(lead.running.store, TENANT).get_task(1) == task


async def test_a_stale_card_does_not_overwrite_a_newer_change(lead: TeamsUser) -> None:
    card = await _plan_with_task(lead)
    await lead.ask("start T1")
    blocked = find_action(card, "Mark blocked")
    before = len(lead.running.connector.sent)
    await lead.post(
        lead.activity(text=None, value=blocked["data"] | {"reason": "waiting on legal"}, replyToId="card-1")
    )
    [update] = (await lead.running.connector.wait_for(before + 1))[before:]
    assert "changed since the card was sent" in json.dumps(update.body)
    task = await Plans(lead.running.store, TENANT).get_task(1)
    assert task.status.value == "doing"


async def test_a_forged_card_verb_is_refused_politely(lead: TeamsUser) -> None:
    [reply] = await lead.ask_value({"verb": "delete_everything", "plan": 1})
    assert "out of date or was not meant for you" in reply
    # The same as a universal action: the card shows the message.
    action = {"type": "Action.Execute", "verb": "delete_everything", "data": {"plan": 1}}
    invoke = lead.activity(type="invoke", name="adaptiveCard/action", text=None, value={"action": action})
    async with lead.running.session.post(lead.running.url, json=invoke) as response:
        assert response.status == 200
        answer = await response.json()
    assert answer["type"] == "application/vnd.microsoft.activity.message"
    assert "out of date or was not meant for you" in answer["value"]


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-jwt", "Basic dXNlcjpwYXNz"],
)
async def test_with_credentials_an_unsigned_or_forged_activity_is_refused_before_the_bot(
    store: Store, connector: FakeConnector, authorization: str | None
) -> None:
    settings = Settings.from_env(
        {
            "MICROSOFT_APP_ID": "00000000-0000-0000-0000-000000000001",
            "MICROSOFT_APP_PASSWORD": "secret",
            "COS_ALLOWED_SERVICE_HOSTS": "127.0.0.1",
        }
    )
    adapter = create_adapter(settings)
    bot = ChiefOfStaffBot(store, settings)
    server = TestServer(create_app(store, adapter, bot, settings), host="127.0.0.1")
    await server.start_server()
    try:
        activity = TeamsUser(Running(store, bot, server, connector, None)).activity(  # type: ignore[arg-type]
            text=NEW_PLAN, serviceUrl="https://smba.trafficmanager.net/amer/"
        )
        headers = {"Authorization": authorization} if authorization else {}
        async with (
            aiohttp.ClientSession() as session,
            session.post(server.make_url("/api/messages"), json=activity, headers=headers) as response,
        ):
            assert response.status in (401, 403)
    finally:
        await server.close()
    assert connector.sent == []
    assert await count(store, plans) == 0
    assert await Directory(store, TENANT).conversations() == []
