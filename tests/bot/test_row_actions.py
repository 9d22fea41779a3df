"""Row actions and Refresh answer with the card they came from, that row changed and the other rows kept."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from bot.grammar import parse
from bot.operations import Caller, Context, Reply, default_registry
from planner.domain.model import Window
from planner.services.plans import Plans
from planner.services.tenants import Tenants
from planner.store import Store
from tests.bot.cards.test_cards import all_text, of_type, schema_errors
from tests.conftest import FakeClock

TENANT = "contoso"


async def a_plan_with_tasks(store: Store, today: date) -> tuple[int, int, list[int]]:
    plans = Plans(store, TENANT)
    window = Window(start=today - timedelta(days=30), end=today + timedelta(days=60))
    master = await plans.create_master_plan(title="Q1", owner="aad-lead", window=window, actor="aad-lead")
    tactical = await plans.create_tactical_plan(
        master.id, title="Launch", owner="aad-lead", window=window, actor="aad-lead"
    )
    ids = []
    for offset, title, owner in (
        (-2, "Approve holiday email copy", "aad-lead"),
        (1, "Check send time", "aad-lead"),
        (2, "Book the venue", "aad-lead"),
        (-1, "Brief the agency", "3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
    ):
        task = await plans.add_task(
            tactical.id, title=title, due_on=today + timedelta(days=offset), owner=owner, actor="aad-lead"
        )
        ids.append(task.id)
    return master.id, tactical.id, ids


def context(store: Store, clock: FakeClock) -> Context:
    return Context(Tenants(store), Caller(tenant_id=TENANT, user_id="aad-lead", name="Lead"), clock=clock)


async def say(store: Store, clock: FakeClock, text: str) -> Reply:
    command = parse(text)
    return await default_registry().run(command.operation, context(store, clock), command.args)


async def click(store: Store, clock: FakeClock, action: dict[str, Any]) -> Reply:
    args = {k: v for k, v in action["data"].items() if k != "verb"} | {"from_card": True}
    return await default_registry().run(action["verb"], context(store, clock), args)


def button(card: dict[str, Any], title: str, task: int | None = None) -> dict[str, Any]:
    return next(
        a
        for a in of_type(card, "Action.Execute")
        if a["title"] == title and (task is None or a["data"].get("task") == task)
    )


async def test_done_on_one_row_of_the_week_card_redraws_that_week_card_with_its_other_rows(
    store: Store, clock: FakeClock
) -> None:
    _, _, (late, soon, later, _) = await a_plan_with_tasks(store, clock().date())
    [week] = (await say(store, clock, "my tasks")).cards
    assert len([a for a in of_type(week, "Action.Execute") if a["title"] == "Done"]) == 3

    reply = await click(store, clock, button(week, "Done", late))

    assert reply.cards == ()
    card = reply.card_update
    assert card is not None
    assert schema_errors(card) == []
    text = all_text(card)
    assert text.startswith(f"T{late} done by Lead.")
    assert "Your week" in text  # the week card, not a task card
    assert "Check send time" in text
    assert "Book the venue" in text
    assert f"**T{late}** · Approve holiday email copy" in text  # the row changed, shown as done
    assert [a["data"]["task"] for a in of_type(card, "Action.Execute") if a["title"] == "Done"] == [soon, later]


async def test_a_plans_task_list_filters_by_owner_status_and_overdue(store: Store, clock: FakeClock) -> None:
    _, tactical, (late, _soon, _later, theirs) = await a_plan_with_tasks(store, clock().date())
    [everything] = (await say(store, clock, f"tasks P{tactical}")).cards
    assert schema_errors(everything) == []
    text = all_text(everything)
    assert "4 tasks" in text
    assert "someone not yet known" in text
    assert "3f2504e0" not in text
    [overdue] = (await say(store, clock, f"tasks P{tactical} overdue")).cards
    assert [a["data"]["task"] for a in of_type(overdue, "Action.Execute") if a["title"] == "Done"] == [late, theirs]
    [mine] = (await say(store, clock, f"tasks P{tactical} owner me overdue")).cards
    assert [a["data"]["task"] for a in of_type(mine, "Action.Execute") if a["title"] == "Done"] == [late]
    [blocked] = (await say(store, clock, f"tasks P{tactical} status blocked")).cards
    assert "No task matches." in all_text(blocked)


async def test_done_and_snooze_on_a_task_list_row_redraw_the_list_with_that_row_changed(
    store: Store, clock: FakeClock
) -> None:
    _, tactical, (late, soon, later, theirs) = await a_plan_with_tasks(store, clock().date())
    [listed] = (await say(store, clock, f"tasks P{tactical}")).cards

    done = await click(store, clock, button(listed, "Done", soon))
    assert done.card_update is not None
    assert done.cards == ()
    rows = [a["data"]["task"] for a in of_type(done.card_update, "Action.Execute") if a["title"] == "Done"]
    assert rows == [late, theirs, later]  # the done row lost its buttons, the others kept theirs
    assert "1 of 4 tasks in the plan done" in all_text(done.card_update)

    snoozed = await click(store, clock, button(done.card_update, "Snooze a day", later))
    assert snoozed.card_update is not None
    assert f"T{later} snoozed until" in all_text(snoozed.card_update)
    assert "Tasks of P" in all_text(snoozed.card_update)


async def test_refresh_redraws_the_plan_card_and_the_task_list_in_place(store: Store, clock: FakeClock) -> None:
    master, _tactical, _ = await a_plan_with_tasks(store, clock().date())
    [plan_card] = (await say(store, clock, f"plan P{master}")).cards

    refreshed = await click(store, clock, button(plan_card, "Refresh"))
    assert refreshed.cards == ()
    assert refreshed.card_update is not None
    assert all_text(refreshed.card_update) == all_text(plan_card)

    listed = await click(store, clock, button(plan_card, "Task list"))
    assert listed.card_update is None  # the list comes as a new card, under the plan card
    [task_list] = listed.cards
    again = await click(store, clock, button(task_list, "Refresh"))
    assert again.cards == ()
    assert again.card_update is not None
