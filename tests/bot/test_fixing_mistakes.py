"""Fixing mistakes through the bot, as a leader does in Teams: a task edited, moved, deleted and brought back (by
command and by the card's buttons), a plan edited and archived, the master plan's goals through the strategy gate;
`why` explains each fix, and bad input gets a clear reply and changes nothing."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from bot.cards.edit import deleted_card
from planner.domain.model import Tier
from planner.services.approvals import Approvals
from planner.services.plans import Plans
from tests.bot.cards.card_height import card_height
from tests.bot.cards.test_card_height import HEIGHT_BUDGET_PX
from tests.bot.cards.test_cards import schema_errors
from tests.bot.conftest import TENANT, Running, TeamsUser
from tests.bot.test_teams import NEW_PLAN, find_action


async def plan_with_task(lead: TeamsUser) -> dict[str, Any]:
    """P1 the master plan, P2 a tactical plan, T1 the lead's task; the task's card."""
    await lead.ask(NEW_PLAN)
    await lead.ask("tactical Launch from 2026-01-05 to 2026-02-27")
    await lead.ask("add task Draft launch email due 2026-01-16 owner me")
    return lead.running.connector.cards()[-1]


async def test_a_task_is_edited_field_by_field_from_chat_and_why_tells_what_it_was(lead: TeamsUser) -> None:
    await plan_with_task(lead)
    [renamed] = await lead.ask('edit T1 title "Draft the launch email, for Designer"')
    assert "T1 edited: title “Draft the launch email, for Designer”" in renamed
    [redated] = await lead.ask("edit T1 due 2026-01-20")
    assert "due Tue 20 Jan" in redated
    [reowned] = await lead.ask("edit T1 owner Designer")
    assert "owner Designer" in reowned
    [flagged] = await lead.ask("edit T1 milestone yes")
    assert "now a milestone" in flagged
    task = await Plans(lead.running.store, TENANT).get_task(1)
    assert (task.title, task.due_on, task.owner, task.milestone) == (
        "Draft the launch email, for Designer",
        date(2026, 1, 20),
        "Designer",
        True,
    )
    [why] = await lead.ask("why T1")
    assert "Lead edited task T1: milestone from no to yes" in why
    assert "Lead reassigned task T1: owner from Lead to Designer" in why
    assert "due date from 2026-01-16 to 2026-01-20" in why


async def test_a_task_moves_to_another_tactical_plan(lead: TeamsUser) -> None:
    await plan_with_task(lead)
    await lead.ask("tactical ABM from 2026-01-12 to 2026-03-27")
    [moved] = await lead.ask("move T1 to P3")
    assert "moved to P3 (ABM)" in moved
    assert (await Plans(lead.running.store, TENANT).get_task(1)).plan_id == 3
    [why] = await lead.ask("why T1")
    assert "Lead moved task T1: plan from P2 to P3" in why


async def test_bad_edits_get_a_clear_reply_and_change_nothing(lead: TeamsUser) -> None:
    await plan_with_task(lead)
    before = await Plans(lead.running.store, TENANT).get_task(1)
    [outside] = await lead.ask("edit T1 due 2026-06-01")
    assert "Choose dates within 5 Jan \u2013 27 Feb 2026" in outside
    [unknown_field] = await lead.ask("edit T1 colour red")
    assert "Change what of" in unknown_field
    assert "edit T12 due DATE" in unknown_field
    [no_task] = await lead.ask("edit T9 title Anything")
    assert "No task with id 9" in no_task
    [to_master] = await lead.ask("move T1 to P1")
    assert "tasks live under a tactical plan" in to_master
    [same] = await lead.ask("edit T1 title Draft launch email")
    assert "nothing changed" in same
    [flag] = await lead.ask("edit T1 milestone maybe")
    assert "milestone is yes or no" in flag
    assert await Plans(lead.running.store, TENANT).get_task(1) == before


async def test_a_deleted_task_comes_back_with_its_undo_button_and_its_id(lead: TeamsUser) -> None:
    await plan_with_task(lead)
    connector = lead.running.connector
    [deleted] = await lead.ask("delete T1", replies=1)
    assert "T1 deleted: “Draft launch email”" in deleted
    card, card_message = connector.cards()[-1], connector.sent[-1]
    assert schema_errors(card) == []
    assert await Plans(lead.running.store, TENANT).list_tasks(2) == []
    undo = find_action(card, "Undo")
    before = len(connector.sent)
    await lead.post(lead.activity(text=None, value=undo["data"], replyToId=card_message.activity_id))
    [update] = (await connector.wait_for(before + 1))[before:]
    assert update.method == "update"
    assert "T1 is back, as it was before it was deleted" in json.dumps(update.body)
    task = await Plans(lead.running.store, TENANT).get_task(1)
    assert (task.title, task.owner) == ("Draft launch email", "aad-lead")
    [again] = await lead.ask("undo")
    assert "nothing of yours from the last 10 minutes to undo" in again
    [why] = await lead.ask("why T1")
    assert "Lead restored task T1, as it was." in why
    assert "Lead deleted task T1 (“Draft launch email”, due 2026-01-16, in plan P2)" in why


async def test_undo_typed_brings_back_the_task_deleted_last(lead: TeamsUser) -> None:
    await plan_with_task(lead)
    await lead.ask("delete T1")
    [back] = await lead.ask("undo")
    assert "T1 is back" in back
    assert (await Plans(lead.running.store, TENANT).get_task(1)).title == "Draft launch email"


async def test_the_edit_button_saves_the_form_and_the_card_updates_in_place(lead: TeamsUser) -> None:
    card = await plan_with_task(lead)
    assert schema_errors(card) == []
    edit = find_action(card, "Edit")
    assert edit["type"] == "Action.ShowCard"
    assert {i["type"] for i in edit["card"]["body"]} == {"Input.Text", "Input.Date", "Input.ChoiceSet"}
    card_message = lead.running.connector.sent[-1]
    save = find_action(card, "Save")
    # Teams sends every input of the form with the button's data; unchanged ones change nothing.
    form = {"title": "Launch email, final", "due": "2026-01-23", "owner": "Lead", "plan": "P2", "milestone": "no"}
    before = len(lead.running.connector.sent)
    await lead.post(lead.activity(text=None, value=save["data"] | form, replyToId=card_message.activity_id))
    [update] = (await lead.running.connector.wait_for(before + 1))[before:]
    assert update.method == "update"
    updated = update.body["attachments"][0]["content"]
    assert schema_errors(updated) == []
    assert "Launch email, final" in json.dumps(updated)
    assert "T1 edited: title “Launch email, final”; due Fri 23 Jan" in json.dumps(updated, ensure_ascii=False)
    task = await Plans(lead.running.store, TENANT).get_task(1)
    assert (task.title, task.due_on, task.owner, task.version) == (
        "Launch email, final",
        date(2026, 1, 23),
        "aad-lead",
        2,
    )
    # The same form again, from the card that is now stale: the task is shown as it is, nothing changes.
    before = len(lead.running.connector.sent)
    await lead.post(lead.activity(text=None, value=save["data"] | form | {"title": "Other"}, replyToId="card-1"))
    [stale] = (await lead.running.connector.wait_for(before + 1))[before:]
    assert "changed since the card was sent" in json.dumps(stale.body)
    assert (await Plans(lead.running.store, TENANT).get_task(1)).title == "Launch email, final"


async def test_a_tactical_plan_is_edited_within_its_parent_and_archived_out_of_sight(lead: TeamsUser) -> None:
    await plan_with_task(lead)
    plans = Plans(lead.running.store, TENANT)
    [renamed] = await lead.ask("edit P2 title Spring launch")
    assert "P2 edited: title “Spring launch”" in renamed
    [too_long] = await lead.ask("edit P2 to 2026-04-30")
    assert "ends Thu 30 Apr 2026, after master plan 1 ends Tue 31 Mar 2026" in too_long
    [cuts_task] = await lead.ask("edit P2 from 2026-01-20")
    assert "due date of task 1" in cuts_task
    assert (await plans.get_plan(2)).window.end == date(2026, 2, 27)
    [master] = await lead.ask("edit P1 title Anything")
    assert "edit master P1 north star TEXT" in master
    [archived] = await lead.ask("archive P2")
    assert "P2 archived" in archived
    [listed] = await lead.ask("plans")
    assert "P2" not in listed
    [everything] = await lead.ask("plans all")
    assert "P2 Spring launch (5 Jan \u2013 27 Feb 2026, archived)" in everything
    [no_default] = await lead.ask("add task Brief the agency due 2026-01-20")  # the archived plan is no default
    assert "Task T2 added" not in no_default
    assert [t.id for t in await plans.list_tasks(2)] == [1]
    [refused] = await lead.ask("archive P1")
    assert "a master plan ends with its window" in refused
    [why] = await lead.ask("why P2")
    assert "Lead archived plan P2" in why
    assert "title from “Launch” to “Spring launch”" in why
    await lead.ask("unarchive P2")
    assert [p.id for p in await plans.list_plans(Tier.TACTICAL)] == [2]


async def test_master_plan_goals_change_for_their_leader_and_wait_for_them_otherwise(running: Running) -> None:
    lead = TeamsUser(running)
    member = TeamsUser(running, user_id="aad-member", name="Member", conversation_id="a:member")
    await lead.ask(NEW_PLAN)
    [changed] = await lead.ask("edit master P1 to 2026-04-30 constraint no paid social")
    assert "P1 changed: window, constraints" in changed
    plans = Plans(running.store, TENANT)
    plan = await plans.get_plan(1)
    assert (plan.window.end, plan.constraints) == (date(2026, 4, 30), ("no paid social",))
    [why] = await lead.ask("why P1")
    assert "window from 2026-01-01 to 2026-03-31 to 2026-01-01 to 2026-04-30" in why
    [held] = await member.ask("edit master P1 to 2026-06-30")
    assert "needs approval first" in held
    [target] = await member.ask("set target SQLs 900")
    assert "needs approval first" in target
    assert (await plans.get_plan(1)).window.end == date(2026, 4, 30)
    assert (await plans.list_metrics(1))[0].target == 500


def test_the_deleted_card_and_its_undo_button_are_valid_adaptive_cards() -> None:
    from tests.bot.cards.test_cards import open_task

    card = deleted_card(open_task(), plan_title="Launch", today=date(2026, 1, 5), minutes=10)
    assert schema_errors(card) == []
    assert find_action(card, "Undo")["data"] == {"task": 12, "verb": "restore_task"}


async def test_a_task_whose_id_was_taken_meanwhile_comes_back_under_a_new_id_and_the_reply_says_so(
    lead: TeamsUser,
) -> None:
    await plan_with_task(lead)
    await lead.ask("add task Book the venue due 2026-01-20")
    await lead.ask("delete T2")
    [added] = await lead.ask("add task Order badges due 2026-01-21")  # SQLite may give it the freed id 2
    plans = Plans(lead.running.store, TENANT)
    [back] = await lead.ask("undo T2")
    titles = {t.id: t.title for t in await plans.list_tasks(2)}
    restored = next(i for i, title in titles.items() if title == "Book the venue")
    if "Task T2 added" in added:
        assert f"T2 is back as T{restored}: its old id was taken meanwhile" in back
        assert titles[2] == "Order badges"
    else:
        assert (restored, "T2 is back, as it was") == (2, back.split(" before")[0])


async def test_undo_takes_back_the_last_edit_typed_or_from_the_edited_cards_button_and_why_tells(
    lead: TeamsUser,
) -> None:
    await plan_with_task(lead)
    connector = lead.running.connector
    plans = Plans(lead.running.store, TENANT)
    await lead.ask("edit T1 due 2026-01-20")
    [renamed] = await lead.ask('edit T1 title "Launch email, final"', replies=1)
    assert "T1 edited: title “Launch email, final”" in renamed
    card, card_message = connector.cards()[-1], connector.sent[-1]
    assert schema_errors(card) == []
    undo = find_action(card, "Undo")
    assert undo["data"] == {"task": 1, "version": 3, "verb": "restore_task"}
    before = len(connector.sent)
    await lead.post(lead.activity(text=None, value=undo["data"], replyToId=card_message.activity_id))
    [update] = (await connector.wait_for(before + 1))[before:]
    assert update.method == "update"
    updated = update.body["attachments"][0]["content"]
    assert schema_errors(updated) == []
    said = json.dumps(updated, ensure_ascii=False)
    assert "Undone: T1 is as it was before your change (title “Draft launch email”)" in said
    assert (await plans.get_task(1)).title == "Draft launch email"
    [typed] = await lead.ask("undo")  # the edit before: the due date
    assert "Undone: T1 is as it was before your change (due Fri 16 Jan)" in typed
    assert (await plans.get_task(1)).due_on == date(2026, 1, 16)
    [nothing] = await lead.ask("undo")
    assert "nothing of yours from the last 10 minutes to undo" in nothing
    [why] = await lead.ask("why T1")
    assert "Lead undid an edit of task T1: title from “Launch email, final” to “Draft launch email”" in why
    assert "Lead undid an edit of task T1: due date from 2026-01-20 to 2026-01-16" in why


async def test_a_stale_undo_is_refused_with_a_clear_reply_and_changes_nothing(running: Running) -> None:
    lead = TeamsUser(running)
    member = TeamsUser(running, user_id="aad-member", name="Member", conversation_id="a:member")
    await plan_with_task(lead)
    await lead.ask("edit T1 title Launch email, final")
    await member.ask("edit T1 due 2026-01-23")
    [refused] = await lead.ask("undo")
    assert "T1 has changed since your edit (someone else changed it)" in refused
    assert "nothing was undone" in refused
    task = await Plans(running.store, TENANT).get_task(1)
    assert (task.title, task.due_on) == ("Launch email, final", date(2026, 1, 23))


async def test_a_plan_edit_and_an_archive_are_undone(lead: TeamsUser) -> None:
    await plan_with_task(lead)
    plans = Plans(lead.running.store, TENANT)
    await lead.ask("edit P2 title Spring launch")
    card, card_message = lead.running.connector.cards()[-1], lead.running.connector.sent[-1]
    undo = find_action(card, "Undo")
    assert undo["data"] == {"plan": 2, "version": 2, "verb": "restore_task"}
    await lead.ask("archive P2")
    [back] = await lead.ask("undo")
    assert "Undone: P2 is as it was before your change (back in use)" in back
    assert (await plans.get_plan(2)).archived_at is None
    before = len(lead.running.connector.sent)
    await lead.post(lead.activity(text=None, value=undo["data"], replyToId=card_message.activity_id))
    [update] = (await lead.running.connector.wait_for(before + 1))[before:]
    assert update.method == "update"
    assert "Undone: P2 is as it was before your change (title “Launch”)" in json.dumps(update.body, ensure_ascii=False)
    assert (await plans.get_plan(2)).title == "Launch"
    [why] = await lead.ask("why P2")
    assert "Lead undid an edit of plan P2: archived no more, back in use" in why
    assert "Lead undid an edit of plan P2: title from “Spring launch” to “Launch”" in why


async def press(user: TeamsUser, card_message_id: str, data: dict[str, Any], form: dict[str, Any] | None = None) -> Any:
    """Press a card's button (with the form's inputs, as Teams sends them) and wait for the one message it brings."""
    connector = user.running.connector
    before = len(connector.sent)
    await user.post(user.activity(text=None, value=data | (form or {}), replyToId=card_message_id))
    [answer] = (await connector.wait_for(before + 1))[before:]
    return answer


async def edit_form(user: TeamsUser, card: dict[str, Any], card_message_id: str) -> dict[str, Any]:
    """Press a card's Edit button: the form it turns into."""
    answer = await press(user, card_message_id, find_action(card, "Edit")["data"])
    form: dict[str, Any] = answer.body["attachments"][0]["content"]
    return form


def inputs_of(form: dict[str, Any]) -> dict[str, Any]:
    """A form's inputs and the values it shows."""
    return {i["id"]: i.get("value") for i in form["body"] if i["type"].startswith("Input.")}


async def test_a_tactical_plans_card_turns_into_its_form_and_saving_updates_it_in_place(lead: TeamsUser) -> None:
    await plan_with_task(lead)
    connector = lead.running.connector
    await lead.ask("plan P2")
    card, card_message = connector.cards()[-1], connector.sent[-1]
    form_message = await press(lead, card_message.activity_id, find_action(card, "Edit")["data"])
    assert form_message.method == "update"
    form = form_message.body["attachments"][0]["content"]
    assert schema_errors(form) == []
    assert card_height(form) <= HEIGHT_BUDGET_PX
    inputs = inputs_of(form)
    assert inputs == {"title": "Launch", "owner": "Lead", "start": "2026-01-05", "end": "2026-02-27"}
    filled = inputs | {"title": "Spring launch", "end": "2026-03-06"}
    saved = await press(lead, card_message.activity_id, find_action(form, "Save")["data"], filled)
    assert saved.method == "update"
    updated = saved.body["attachments"][0]["content"]
    assert schema_errors(updated) == []
    said = json.dumps(updated, ensure_ascii=False)
    assert "P2 edited: title “Spring launch”; dates 5 Jan \u2013 6 Mar 2026" in said
    assert find_action(updated, "Undo")["data"] == {"plan": 2, "version": 2, "verb": "restore_task"}
    plan = await Plans(lead.running.store, TENANT).get_plan(2)
    assert (plan.title, plan.window.end, plan.owner) == ("Spring launch", date(2026, 3, 6), "aad-lead")
    # The same form again, from the card now stale: nothing saved, the plan shown as it is.
    stale = await press(lead, card_message.activity_id, find_action(form, "Save")["data"], filled | {"title": "Other"})
    assert "This plan changed since the card was sent; nothing was saved" in json.dumps(stale.body)
    assert (await Plans(lead.running.store, TENANT).get_plan(2)).title == "Spring launch"
    cancelled = await press(lead, card_message.activity_id, find_action(form, "Cancel")["data"])
    assert cancelled.method == "update"
    assert "Spring launch" in json.dumps(cancelled.body)


async def test_the_master_plans_form_changes_its_goals_for_its_leader_and_holds_a_members(running: Running) -> None:
    lead = TeamsUser(running)
    member = TeamsUser(running, user_id="aad-member", name="Member", conversation_id="a:member")
    await lead.ask(NEW_PLAN)
    plans = Plans(running.store, TENANT)
    [sqls] = await plans.list_metrics(1)
    await member.ask("plan P1")
    card, card_message = running.connector.cards()[-1], running.connector.sent[-1]
    form = await edit_form(member, card, card_message.activity_id)
    assert schema_errors(form) == []
    inputs = inputs_of(form)
    assert set(inputs) == {"title", "start", "end", "constraints", f"target_{sqls.id}"}
    held = await press(
        member,
        card_message.activity_id,
        find_action(form, "Save")["data"],
        inputs | {"constraints": "no paid social\nno events", f"target_{sqls.id}": "600"},
    )
    assert "needs approval first" in json.dumps(held.body)
    assert ((await plans.get_plan(1)).constraints, (await plans.get_metric(sqls.id)).target) == ((), 500)
    [approved, *_] = await lead.ask("approve A1")  # the plan's leader approves: the form's change is made as sent
    assert "P1 changed: constraints, SQLs target 600" in approved
    assert ((await plans.get_plan(1)).constraints, (await plans.get_metric(sqls.id)).target) == (
        ("no paid social", "no events"),
        600,
    )
    await lead.ask("plan P1")
    card, card_message = running.connector.cards()[-1], running.connector.sent[-1]
    form = await edit_form(lead, card, card_message.activity_id)
    inputs = inputs_of(form)
    assert (inputs["constraints"], inputs[f"target_{sqls.id}"]) == ("no paid social\nno events", 600)
    changes = {"title": "600 SQLs by 31 March", "end": "2026-04-30"}
    saved = await press(lead, card_message.activity_id, find_action(form, "Save")["data"], inputs | changes)
    assert saved.method == "update"
    assert "P1 changed: north star, window" in json.dumps(saved.body, ensure_ascii=False)
    plan = await plans.get_plan(1)
    assert (plan.title, plan.window.end) == ("600 SQLs by 31 March", date(2026, 4, 30))


async def test_a_reassignment_is_undone_from_its_cards_button(running: Running) -> None:
    lead = TeamsUser(running)
    await plan_with_task(lead)
    await lead.ask("assign T1 to Designer", replies=1)
    card, card_message = running.connector.cards()[-1], running.connector.sent[-1]
    undone = await press(lead, card_message.activity_id, find_action(card, "Undo")["data"])
    assert undone.method == "update"
    assert "Undone: T1 is as it was before your change (owner Lead)" in json.dumps(undone.body, ensure_ascii=False)
    assert (await Plans(running.store, TENANT).get_task(1)).owner == "aad-lead"


async def test_an_archive_answers_with_the_plans_card_and_its_undo_button_brings_the_plan_back(
    lead: TeamsUser,
) -> None:
    await plan_with_task(lead)
    plans = Plans(lead.running.store, TENANT)
    [archived] = await lead.ask("archive P2", replies=1)
    assert "P2 archived" in archived
    card, card_message = lead.running.connector.cards()[-1], lead.running.connector.sent[-1]
    assert schema_errors(card) == []
    assert "Launch" in json.dumps(card)
    # The card the leader gets back looks like any plan's: it says the plan is put away, and how to bring it back.
    assert "Archived on " in json.dumps(card)
    assert "unarchive P2 brings it back" in json.dumps(card)
    undo = find_action(card, "Undo")
    assert undo["data"] == {"plan": 2, "version": 2, "verb": "restore_task"}
    undone = await press(lead, card_message.activity_id, undo["data"])
    assert undone.method == "update"
    assert "Undone: P2 is as it was before your change (back in use)" in json.dumps(undone.body, ensure_ascii=False)
    assert "Archived on " not in json.dumps(undone.body)
    assert (await plans.get_plan(2)).archived_at is None
    [again] = await lead.ask("unarchive P2")  # already in use: nothing to bring back, and no Undo offered
    assert not any(a.get("title") == "Undo" for a in lead.running.connector.cards()[-1].get("actions", []))
    assert "P2" in again


async def test_a_kpi_target_change_is_undone_by_its_leader_with_the_goals_changed_with_it(running: Running) -> None:
    lead = TeamsUser(running)
    await lead.ask(NEW_PLAN)
    plans = Plans(running.store, TENANT)
    [sqls] = await plans.list_metrics(1)
    [changed] = await lead.ask("set target SQLs 600", replies=1)
    assert "P1 changed: SQLs target 600" in changed
    card, card_message = running.connector.cards()[-1], running.connector.sent[-1]
    undo = find_action(card, "Undo")
    assert undo["data"] == {"plan": 1, "version": 2, "verb": "restore_task"}
    undone = await press(lead, card_message.activity_id, undo["data"])
    said = json.dumps(undone.body, ensure_ascii=False)
    assert "Undone: P1 is as it was before your change (SQLs target 500)" in said
    assert (await plans.get_metric(sqls.id)).target == 500
    # Typed one after the other, they are two changes: `undo` takes back the last.
    await lead.ask("edit master P1 north star 700 SQLs by 31 March")
    await lead.ask("set target SQLs 700")
    [typed] = await lead.ask("undo")
    assert "Undone: P1 is as it was before your change (SQLs target 500)" in typed
    assert ((await plans.get_plan(1)).title, (await plans.get_metric(sqls.id)).target) == ("700 SQLs by 31 March", 500)
    # Saved together from the card's form, they are one change: its Undo button takes back both.
    await lead.ask("plan P1")
    card, card_message = running.connector.cards()[-1], running.connector.sent[-1]
    form = await edit_form(lead, card, card_message.activity_id)
    changes = {"title": "800 SQLs by 31 March", f"target_{sqls.id}": "800"}
    saved = await press(lead, card_message.activity_id, find_action(form, "Save")["data"], inputs_of(form) | changes)
    assert "P1 changed: north star, SQLs target 800" in json.dumps(saved.body, ensure_ascii=False)
    updated = saved.body["attachments"][0]["content"]
    undone = await press(lead, card_message.activity_id, find_action(updated, "Undo")["data"])
    assert "(title “700 SQLs by 31 March”; SQLs target 500)" in json.dumps(undone.body, ensure_ascii=False)
    assert ((await plans.get_plan(1)).title, (await plans.get_metric(sqls.id)).target) == ("700 SQLs by 31 March", 500)
    [why] = await lead.ask("why P1")
    assert (
        "Lead edited plan P1: title from “700 SQLs by 31 March” to “800 SQLs by 31 March”; "
        "KPI targets from SQLs 500 to SQLs 800" in why
    )
    assert (
        "Lead undid an edit of plan P1: title from “800 SQLs by 31 March” to “700 SQLs by 31 March”; "
        "KPI targets from SQLs 800 to SQLs 500" in why
    )


async def test_undoing_a_change_of_goals_is_a_change_of_strategy_the_leader_makes_or_approves(
    running: Running,
) -> None:
    lead = TeamsUser(running)
    member = TeamsUser(running, user_id="aad-member", name="Member", conversation_id="a:member")
    await lead.ask(NEW_PLAN)
    plans = Plans(running.store, TENANT)
    [sqls] = await plans.list_metrics(1)
    await member.ask("set target SQLs 600")
    await lead.ask("approve A1")
    assert (await plans.get_metric(sqls.id)).target == 600
    # The member's change, made as theirs once approved, is not theirs to take back: they ask, the leader decides.
    [refused] = await member.ask("undo")
    assert "Only P1's leader can undo an edit of its goals" in refused
    assert "`edit master P1 …`" in refused
    assert (await plans.get_metric(sqls.id)).target == 600
    assert [a.id for a in await Approvals(running.store, TENANT).pending()] == []
