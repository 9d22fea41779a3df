"""Every card the bot sends, validated against the official Adaptive Card 1.5 schema and read as a user would."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema.exceptions import best_match

from bot.cards import (
    ADAPTIVE_CARD_CONTENT_TYPE,
    VERB_CONFIRM_DRAFT,
    VERB_DISCARD_DRAFT,
    VERB_MY_TASKS,
    VERB_SHOW_PLAN,
    VERB_SNOOZE,
    VERB_TASK_STATUS,
    UnknownDraftState,
    attachment,
    draft_card,
    execute,
    member_week,
    message_card,
    plan_overview,
    task_card,
    welcome_card,
)
from bot.cards.actions import UnknownActionStyle
from bot.cards.plan import MAX_TACTICAL_PLANS, progress_bar_id
from bot.cards.wording import RANGE_DASH
from planner.domain.model import Direction, Metric, Plan, Task, TaskStatus, Tier, Window, iso_week_of, iso_week_window
from planner.domain.rollup import MetricFacts, PlanFacts, PlanRollup, TaskCounts, roll_up

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "adaptive-card-1.5.schema.json"
TEAMS_CARD_LIMIT_BYTES = 28_000

Card = dict[str, Any]

TODAY = date(2026, 2, 14)  # a Saturday in 2026-W07; half of the master window (1 Jan - 31 Mar) has gone
THIS_WEEK = iso_week_of(TODAY)
CREATED = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
MASTER_WINDOW = Window(start=date(2026, 1, 1), end=date(2026, 3, 31))
NAMES = {"aad-lea": "Lead Marketer", "aad-sam": "Content Writer", "aad-ana": "Campaign Analyst"}
OWNERS = tuple(NAMES)


# --- the schema -------------------------------------------------------------------------------------------------------


def _anchor_patterns(node: Any) -> Any:
    """Anchor every alternative of the schema's enum patterns, as its authors meant."""
    # The schema spells case-insensitive enums as `^(auto)|(stretch)$`, which anchors only the first alternative at
    # the start and the last at the end, so "goodish" passes as a colour; `^(?:...)$` rejects it.
    if isinstance(node, dict):
        return {
            key: f"^(?:{value[1:-1]})$"
            if key == "pattern" and isinstance(value, str) and value.startswith("^") and value.endswith("$")
            else _anchor_patterns(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_anchor_patterns(value) for value in node]
    return node


@cache
def card_validator() -> jsonschema.Draft6Validator:
    schema = _anchor_patterns(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    jsonschema.Draft6Validator.check_schema(schema)
    return jsonschema.Draft6Validator(schema)


def schema_errors(card: Card) -> list[str]:
    """The most specific reason for each violation (the schema's `anyOf` layers otherwise only say "not valid")."""
    return [
        f"{error.json_path}: {error.message[:300]}"
        for error in (best_match([violation]) for violation in card_validator().iter_errors(card))
        if error is not None
    ]


def elements(node: Any) -> Iterator[dict[str, Any]]:
    """Every typed object in a card, nested ShowCard cards included, in document order."""
    if isinstance(node, dict):
        if "type" in node:
            yield node
        for value in node.values():
            yield from elements(value)
    elif isinstance(node, list):
        for value in node:
            yield from elements(value)


def of_type(card: Card, kind: str) -> list[dict[str, Any]]:
    return [element for element in elements(card) if element["type"] == kind]


def texts(card: Card) -> list[str]:
    return [block["text"] for block in of_type(card, "TextBlock")]


def all_text(card: Card) -> str:
    facts = [f"{fact['title']}: {fact['value']}" for fact_set in of_type(card, "FactSet") for fact in fact_set["facts"]]
    return "\n".join(texts(card) + facts)


def element_by_id(card: Card, element_id: str) -> dict[str, Any]:
    (found,) = [element for element in elements(card) if element.get("id") == element_id]
    return found


def top_actions(card: Card) -> list[dict[str, Any]]:
    return list(card.get("actions", []))


# --- realistic inputs -------------------------------------------------------------------------------------------------


def make_plan(
    plan_id: int,
    tier: Tier,
    *,
    title: str,
    owner: str = "aad-lea",
    window: Window = MASTER_WINDOW,
    parent_id: int | None = None,
    iso_week: str | None = None,
) -> Plan:
    return Plan(
        id=plan_id,
        tenant_id="contoso",
        tier=tier,
        parent_id=parent_id,
        master_id=None if tier is Tier.MASTER else 1,
        title=title,
        owner=owner,
        window=window,
        iso_week=iso_week,
        created_at=CREATED,
    )


def sqls(plan_id: int, *, target: float = 500, metric_id: int = 1, name: str = "SQLs", unit: str = "") -> Metric:
    return Metric(
        id=metric_id,
        tenant_id="contoso",
        plan_id=plan_id,
        name=name,
        unit=unit,
        direction=Direction.UP,
        baseline=0.0,
        target=target,
        tolerance=0.1,
    )


def weekly_facts(tactical: Plan, next_id: int, *, done: int, total: int, overdue: int = 0) -> list[PlanFacts]:
    """Weekly plans of 2026-W05 to 2026-W08 under `tactical`: two weeks ago, last week, this week and next week."""
    weeklies = []
    for offset, week_start in enumerate(TODAY - timedelta(days=days) for days in (19, 12, 5, -2)):
        week = iso_week_of(week_start)
        plan = make_plan(
            next_id + offset,
            Tier.WEEKLY,
            title=f"{tactical.title}, week {week[-2:]}",
            owner=tactical.owner,
            window=iso_week_window(week),
            parent_id=tactical.id,
            iso_week=week,
        )
        weeklies.append(PlanFacts(plan=plan, counts=TaskCounts(total=total, done=done, overdue=overdue)))
    return weeklies


def make_rollup(
    *,
    tacticals: int = 4,
    done: int = 31,
    total: int = 50,
    overdue: int = 0,
    sqls_reading: float | None = 240,
    title_suffix: str = "",
) -> PlanRollup:
    master = make_plan(1, Tier.MASTER, title=f"500 SQLs by 31 March{title_suffix}")
    master_facts = PlanFacts(
        plan=master,
        counts=TaskCounts(),
        metrics=(
            MetricFacts(metric=sqls(1), latest=sqls_reading),
            MetricFacts(
                metric=sqls(1, metric_id=2, name="Pipeline", target=2_000_000, unit="EUR"),
                latest=None if sqls_reading is None else sqls_reading * 4_000,
            ),
        ),
    )
    tactical_facts: list[PlanFacts] = []
    weekly: list[PlanFacts] = []
    for index in range(tacticals):
        plan_id = 2 + index
        tactical = make_plan(
            plan_id,
            Tier.TACTICAL,
            title=f"Tactical programme {index + 1}: ABM for enterprise accounts{title_suffix}",
            owner=OWNERS[index % len(OWNERS)],
            window=Window(start=date(2026, 1, 5), end=date(2026, 3, 27)),
            parent_id=1,
        )
        tactical_facts.append(
            PlanFacts(
                plan=tactical,
                counts=TaskCounts(total=total, done=done, overdue=overdue),
                metrics=(MetricFacts(metric=sqls(plan_id, target=100, metric_id=10 + plan_id), latest=sqls_reading),),
            )
        )
        weekly_done = round(5 * done / total) if total else 0
        weekly.extend(weekly_facts(tactical, 100 + 10 * index, done=weekly_done, total=5, overdue=min(overdue, 2)))
    return roll_up(master_facts, tactical_facts, weekly, TODAY)


def make_task(
    task_id: int,
    *,
    due_on: date,
    status: TaskStatus = TaskStatus.TODO,
    milestone: bool = False,
    title: str = "Draft the launch email",
    plan_id: int = 2,
    blocked_reason: str | None = None,
    snoozed_until: datetime | None = None,
    version: int = 3,
) -> Task:
    return Task(
        id=task_id,
        tenant_id="contoso",
        plan_id=plan_id,
        master_id=1,
        title=title,
        owner="aad-sam",
        due_on=due_on,
        status=status,
        milestone=milestone,
        created_at=CREATED,
        blocked_reason=blocked_reason,
        snoozed_until=snoozed_until,
        version=version,
    )


LONG_TEXT = "Rewrite the nurture sequence for the enterprise segment after the pricing change " * 6

PLAN_TITLES = {2: "Product launch", 3: "ABM programme", 4: "SEO and GEO"}


def week_tasks(count: int = 6) -> list[Task]:
    due_days = [
        TODAY - timedelta(days=4),
        TODAY + timedelta(days=1),
        TODAY - timedelta(days=3),
        TODAY + timedelta(days=6),
    ]
    statuses = [TaskStatus.TODO, TaskStatus.DOING, TaskStatus.DONE, TaskStatus.BLOCKED]
    return [
        make_task(
            index + 1,
            due_on=due_days[index % len(due_days)],
            status=statuses[index % len(statuses)],
            milestone=index % 5 == 0,
            title=f"Task {index + 1}: brief the agency on the webinar landing page and the follow-up sequence",
            plan_id=2 + index % 3,
        )
        for index in range(count)
    ]


def draft_items(count: int = 3) -> list[dict[str, object]]:
    return [
        {
            "title": f"Tactical plan {index + 1}: webinar series for mid-market prospects",
            "start": "2026-01-05",
            "end": date(2026, 3, 27),
            "owner": "Content Writer",
            "kpis": [
                {"name": "SQLs", "target": 120, "unit": ""},
                {"name": "Pipeline", "target": 400_000, "unit": "EUR"},
            ],
            "channels": ["email", "webinar", "LinkedIn"],
            "budget_eur": 12_500,
        }
        for index in range(count)
    ]


def open_task(**changes: Any) -> Task:
    return make_task(12, due_on=TODAY + timedelta(days=2), **changes)


CARDS: dict[str, Callable[[], Card]] = {
    "plan overview": lambda: plan_overview(make_rollup(), names=NAMES, today=TODAY),
    "plan overview at 0%": lambda: plan_overview(make_rollup(done=0), names=NAMES, today=TODAY),
    "plan overview at 100%": lambda: plan_overview(make_rollup(done=50), names=NAMES, today=TODAY),
    "plan overview with no tasks or readings": lambda: plan_overview(
        make_rollup(tacticals=0, total=0, done=0, sqls_reading=None), names={}, today=TODAY
    ),
    "plan overview off track with reasons": lambda: plan_overview(
        make_rollup(done=2, overdue=7, sqls_reading=40), names=NAMES, today=TODAY
    ),
    "plan overview with 20 tactical plans": lambda: plan_overview(
        make_rollup(tacticals=20, done=5, overdue=3, sqls_reading=90, title_suffix=" and its partner channel push"),
        names=NAMES,
        today=TODAY,
    ),
    "member week": lambda: member_week(
        person_name="Content Writer", iso_week=THIS_WEEK, tasks=week_tasks(), today=TODAY, plan_titles=PLAN_TITLES
    ),
    "member week, empty": lambda: member_week(
        person_name="Content Writer", iso_week=THIS_WEEK, tasks=[], today=TODAY, plan_titles=PLAN_TITLES
    ),
    "member week with 60 tasks": lambda: member_week(
        person_name="Content Writer", iso_week=THIS_WEEK, tasks=week_tasks(60), today=TODAY, plan_titles=PLAN_TITLES
    ),
    "task": lambda: task_card(open_task(), plan_title="Product launch", owner_name="Content Writer", today=TODAY),
    "task, done": lambda: task_card(
        open_task(status=TaskStatus.DONE), plan_title="Product launch", owner_name=None, today=TODAY
    ),
    "task, blocked and snoozed milestone with a note": lambda: task_card(
        open_task(
            status=TaskStatus.BLOCKED,
            milestone=True,
            blocked_reason="Waiting for legal to approve the claims",
            snoozed_until=datetime(2026, 2, 15, 9, 0, tzinfo=UTC),
        ),
        plan_title="Product launch",
        owner_name="Content Writer",
        today=TODAY,
        note="Marked blocked by Content Writer.",
    ),
    "welcome in a chat": lambda: welcome_card(name="Lead Marketer", is_channel=False, today=date(2026, 2, 2)),
    "welcome in a channel": lambda: welcome_card(name=None, is_channel=True, today=date(2026, 2, 2)),
    "draft, pending": lambda: draft_card(
        draft_id=7, title="Tactical plans for P1", items=draft_items(), state="pending"
    ),
    "draft, saved": lambda: draft_card(
        draft_id=7, title="Tactical plans for P1", items=draft_items(), state="saved", note="Saved by Lead Marketer."
    ),
    "draft, discarded": lambda: draft_card(draft_id=7, title="Tactical plans", items=draft_items(), state="discarded"),
    "draft, empty": lambda: draft_card(draft_id=8, title="Week 2026-W07", items=[], state="pending"),
    "draft with 40 items": lambda: draft_card(draft_id=9, title="Tasks", items=draft_items(40), state="pending"),
    "member week with very long titles": lambda: member_week(
        person_name="Content Writer",
        iso_week=THIS_WEEK,
        tasks=[make_task(n, due_on=TODAY, title=LONG_TEXT) for n in range(1, 26)],
        today=TODAY,
        plan_titles={2: LONG_TEXT},
    ),
    "draft with very long values": lambda: draft_card(
        draft_id=9,
        title="Tasks",
        items=[{"title": LONG_TEXT, "rationale": LONG_TEXT} for _ in range(30)],
        state="pending",
    ),
    "message": lambda: message_card("Recorded", ["SQLs is now 240.", "", "That is 96% of the expected pace."]),
}


@pytest.fixture(params=list(CARDS))
def card(request: pytest.FixtureRequest) -> Card:
    return CARDS[request.param]()


# --- every card -------------------------------------------------------------------------------------------------------


def test_every_card_validates_against_the_adaptive_card_1_5_schema(card: Card) -> None:
    assert schema_errors(card) == []
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.5"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"


def _misspelled_color(card: Card) -> str:
    card["body"][0]["color"] = "goodish"
    return "$.body[0].color"


def _text_as_number(card: Card) -> str:
    card["body"][1]["text"] = 240
    return "$.body[1].text"


def _unknown_property(card: Card) -> str:
    card["body"][1]["colour"] = "good"
    return "$.body[1]"


@pytest.mark.parametrize("breakage", [_misspelled_color, _text_as_number, _unknown_property])
def test_the_schema_check_rejects_a_card_teams_would_not_render(breakage: Callable[[Card], str]) -> None:
    card = message_card("Recorded", ["SQLs is now 240."])
    where = breakage(card)
    assert [error.split(":")[0] for error in schema_errors(card)] == [where]


def test_every_card_stays_under_the_teams_size_limit(card: Card) -> None:
    assert len(json.dumps(card).encode("utf-8")) < TEAMS_CARD_LIMIT_BYTES


def test_every_text_block_wraps_and_says_something(card: Card) -> None:
    blocks = of_type(card, "TextBlock")
    assert blocks
    assert all(block["wrap"] is True and block["text"].strip() for block in blocks)


def test_every_card_leaves_out_empty_action_lists(card: Card) -> None:
    assert all(element.get("actions") != [] for element in [card, *elements(card)])


def test_every_column_width_is_one_renderers_understand(card: Card) -> None:
    for column in of_type(card, "Column"):
        width = column["width"]
        assert width in ("auto", "stretch") or (width.isdigit() and int(width) >= 1), width


def test_every_execute_action_repeats_its_verb_in_its_data(card: Card) -> None:
    for action in of_type(card, "Action.Execute"):
        assert action["data"]["verb"] == action["verb"]


def test_element_ids_are_unique_within_a_card(card: Card) -> None:
    ids = [element["id"] for element in elements(card) if "id" in element]
    assert len(ids) == len(set(ids))


# --- actions and attachment -------------------------------------------------------------------------------------------


def test_execute_action_carries_the_verb_in_its_data_for_submit_fallback() -> None:
    action = execute("Done", VERB_TASK_STATUS, {"task": 4, "status": "done"}, style="positive")
    assert action == {
        "type": "Action.Execute",
        "title": "Done",
        "verb": "set_task_status",
        "data": {"task": 4, "status": "done", "verb": "set_task_status"},
        "style": "positive",
    }


def test_execute_action_refuses_a_style_the_schema_does_not_know() -> None:
    with pytest.raises(UnknownActionStyle, match="positive"):
        execute("Done", VERB_TASK_STATUS, {}, style="primary")


def test_attachment_wraps_a_card_with_the_adaptive_card_content_type() -> None:
    card = message_card("Hi", ["there"])
    assert attachment(card) == {"contentType": ADAPTIVE_CARD_CONTENT_TYPE, "content": card}
    assert ADAPTIVE_CARD_CONTENT_TYPE == "application/vnd.microsoft.card.adaptive"


# --- plan overview ----------------------------------------------------------------------------------------------------


def bar_columns(card: Card, plan_id: int) -> list[dict[str, Any]]:
    return element_by_id(card, progress_bar_id(plan_id))["columns"]


def test_progress_bar_widths_for_62_percent_are_62_and_38() -> None:
    card = plan_overview(make_rollup(done=31, total=50), names=NAMES, today=TODAY)
    done, rest = bar_columns(card, 2)
    assert (done["width"], rest["width"]) == ("62", "38")
    assert rest["style"] == "emphasis"
    assert done["style"] in ("good", "warning", "attention")
    assert any(line.endswith("31 of 50 tasks done, 62 %") for line in texts(card))


def test_progress_bar_at_0_percent_reads_empty_and_at_100_percent_full() -> None:
    empty = bar_columns(plan_overview(make_rollup(done=0), names=NAMES, today=TODAY), 2)
    full = bar_columns(plan_overview(make_rollup(done=50), names=NAMES, today=TODAY), 2)
    assert all(int(column["width"]) >= 1 for column in empty + full)
    assert [column["style"] for column in empty] == ["emphasis", "emphasis"]
    assert full[0]["style"] == full[1]["style"] != "emphasis"


def test_plan_rows_show_ref_owner_window_and_health() -> None:
    card = plan_overview(make_rollup(tacticals=2), names=NAMES, today=TODAY)
    text = texts(card)
    assert text[0] == "500 SQLs by 31 March"
    assert f"P1 · Lead Marketer · 1 Jan {RANGE_DASH} 31 Mar 2026" in text
    assert any(line.startswith(f"Content Writer · 5 Jan {RANGE_DASH} 27 Mar 2026 · ") for line in text)
    assert any(line.endswith("· P3") for line in text)
    health = [block for block in of_type(card, "TextBlock") if block["text"] in ("On track", "At risk", "Off track")]
    assert {block["color"] for block in health} <= {"good", "warning", "attention"}
    assert len(health) >= 3


def test_owner_falls_back_to_the_raw_owner_when_no_name_is_known() -> None:
    card = plan_overview(make_rollup(tacticals=1), names={}, today=TODAY)
    assert f"P1 · aad-lea · 1 Jan {RANGE_DASH} 31 Mar 2026" in texts(card)


def test_off_track_plan_lists_its_reasons_as_bullets() -> None:
    rollup = make_rollup(done=2, overdue=7, sqls_reading=40)
    card = plan_overview(rollup, names=NAMES, today=TODAY)
    assert rollup.health.value == "off track"
    bullets = [line for line in texts(card) if line.startswith("- ")]
    assert any("7 tasks overdue" in line for line in bullets)
    assert any("SQLs at 40" in line for line in bullets)
    assert any(block["text"] == "Off track" and block["color"] == "attention" for block in of_type(card, "TextBlock"))


def test_on_track_plan_shows_no_reasons() -> None:
    card = plan_overview(make_rollup(tacticals=1, done=50), names=NAMES, today=TODAY)
    assert not [line for line in texts(card) if line.startswith("- ")]


def test_kpis_read_actual_target_and_expected_pace() -> None:
    card = plan_overview(make_rollup(tacticals=0), names=NAMES, today=TODAY)
    facts = {fact["title"]: fact["value"] for fact in of_type(card, "FactSet")[0]["facts"]}
    assert facts["SQLs"] == "240 of 500 (expected 250 by now)"
    assert facts["Pipeline"] == "€960,000 of €2M (expected €1M by now)"


def test_plan_overview_shows_only_this_and_last_weeks_weekly_plans() -> None:
    card = all_text(plan_overview(make_rollup(tacticals=1), names=NAMES, today=TODAY))
    assert "This week (2026-W07)" in card
    assert "Last week (2026-W06)" in card
    assert "2026-W05" not in card
    assert "2026-W08" not in card


def test_plan_overview_caps_tactical_plans_and_says_how_many_more() -> None:
    card = plan_overview(make_rollup(tacticals=20), names=NAMES, today=TODAY)
    shown = [line for line in texts(card) if line.startswith("**Tactical programme")]
    assert len(shown) == MAX_TACTICAL_PLANS
    assert "and 8 more tactical plans" in texts(card)


def test_plan_overview_drops_tactical_plans_rather_than_exceed_the_size_limit() -> None:
    rollup = make_rollup(tacticals=12, done=5, overdue=3, sqls_reading=90, title_suffix=" and more words" * 20)
    card = plan_overview(rollup, names=NAMES, today=TODAY)
    shown = [line for line in texts(card) if line.startswith("**Tactical programme")]
    assert len(json.dumps(card).encode("utf-8")) < TEAMS_CARD_LIMIT_BYTES
    assert 0 < len(shown) < 12
    assert f"and {12 - len(shown)} more tactical plans" in texts(card)


def test_plan_overview_offers_its_task_list_my_tasks_and_refresh_in_place() -> None:
    card = plan_overview(make_rollup(), names=NAMES, today=TODAY)
    assert [(a["title"], a["verb"], a["data"]) for a in top_actions(card)] == [
        ("Task list", "tasks", {"plan": "P1", "verb": "tasks"}),
        ("My tasks", VERB_MY_TASKS, {"verb": VERB_MY_TASKS}),
        ("Refresh", VERB_SHOW_PLAN, {"plan": 1, "card": "plan", "verb": VERB_SHOW_PLAN}),
        ("Edit", "plan_edit_form", {"plan": 1, "card": "plan", "verb": "plan_edit_form"}),
    ]


# --- member week ------------------------------------------------------------------------------------------------------


def test_member_week_groups_tasks_into_overdue_due_this_week_and_later() -> None:
    tasks = [
        make_task(1, due_on=date(2026, 2, 10)),
        make_task(2, due_on=date(2026, 2, 15), milestone=True),
        make_task(3, due_on=date(2026, 2, 11), status=TaskStatus.DONE),
        make_task(4, due_on=date(2026, 2, 20)),
    ]
    card = member_week(
        person_name="Content Writer", iso_week="2026-W07", tasks=tasks, today=TODAY, plan_titles=PLAN_TITLES
    )
    text = texts(card)
    assert text[0] == "Your week, 2026-W07"
    order = [line for line in text if line.endswith(")") or line.startswith("**T")]
    assert order == [
        "Overdue (1)",
        "**T1** · Draft the launch email",
        "Due this week (2)",
        "**T3** · Draft the launch email",
        "**T2** · Draft the launch email",
        "Later (1)",
        "**T4** · Draft the launch email",
    ]
    assert "Tue 10 Feb · Product launch · To do" in text
    assert "Milestone" in text
    done_buttons = [a["data"] for a in of_type(card, "Action.Execute")]
    assert done_buttons == [
        {"card": "week", "week": "2026-W07", "task": task, "status": "done", "verb": VERB_TASK_STATUS}
        for task in (1, 2, 4)
    ]


def test_empty_week_says_nothing_is_due() -> None:
    card = member_week(person_name="Content Writer", iso_week="2026-W07", tasks=[], today=TODAY, plan_titles={})
    assert "Nothing due this week." in texts(card)
    assert "actions" not in card


def test_member_week_caps_the_rows_and_counts_the_rest() -> None:
    card = member_week(person_name="Writer", iso_week=THIS_WEEK, tasks=week_tasks(60), today=TODAY, plan_titles={})
    rows = [line for line in texts(card) if line.startswith("**T")]
    assert f"and {60 - len(rows)} more tasks" in texts(card)


@pytest.mark.parametrize("name", ["member week with very long titles", "draft with very long values"])
def test_long_cards_show_fewer_rows_and_count_the_rest_rather_than_break_the_size_limit(name: str) -> None:
    card = CARDS[name]()
    assert len(json.dumps(card).encode("utf-8")) < TEAMS_CARD_LIMIT_BYTES
    assert any(line.startswith("and ") and " more " in line for line in texts(card))


# --- task -------------------------------------------------------------------------------------------------------------


def test_task_card_actions_carry_task_id_status_and_version() -> None:
    card = task_card(open_task(version=5), plan_title="Product launch", owner_name="Content Writer", today=TODAY)
    done, snooze, blocked, edit = top_actions(card)
    assert edit["title"] == "Edit"
    assert (done["title"], done["verb"], done["data"]) == (
        "Done",
        VERB_TASK_STATUS,
        {"task": 12, "status": "done", "version": 5, "verb": VERB_TASK_STATUS},
    )
    assert (snooze["verb"], snooze["data"]) == (
        VERB_SNOOZE,
        {"task": 12, "hours": 24, "version": 5, "verb": VERB_SNOOZE},
    )
    (mark_blocked,) = blocked["card"]["actions"]
    assert mark_blocked["data"] == {"task": 12, "status": "blocked", "version": 5, "verb": VERB_TASK_STATUS}


def test_blocked_show_card_asks_for_the_reason() -> None:
    card = task_card(open_task(), plan_title="Product launch", owner_name="Content Writer", today=TODAY)
    blocked = top_actions(card)[2]
    assert (blocked["type"], blocked["title"]) == ("Action.ShowCard", "Blocked")
    (reason,) = blocked["card"]["body"]
    assert reason["type"] == "Input.Text"
    assert reason["id"] == "reason"
    assert reason["placeholder"] == "What is blocking it?"
    assert reason["isMultiline"] is False
    assert reason["maxLength"] == 300


def test_done_task_offers_only_reopen() -> None:
    card = task_card(open_task(status=TaskStatus.DONE), plan_title="Launch", owner_name="Content Writer", today=TODAY)
    reopen, edit = top_actions(card)
    assert edit["title"] == "Edit"
    assert (reopen["title"], reopen["data"]) == (
        "Reopen",
        {"task": 12, "status": "todo", "version": 3, "verb": VERB_TASK_STATUS},
    )


@pytest.mark.parametrize(
    ("due_on", "wording"),
    [
        (date(2026, 2, 11), "Wed 11 Feb 2026 (overdue by 3 days)"),
        (date(2026, 2, 13), "Fri 13 Feb 2026 (overdue by 1 day)"),
        (TODAY, "Sat 14 Feb 2026 (due today)"),
        (date(2026, 2, 19), "Thu 19 Feb 2026 (due in 5 days)"),
    ],
)
def test_task_card_says_how_far_the_due_date_is(due_on: date, wording: str) -> None:
    card = task_card(make_task(12, due_on=due_on), plan_title="Launch", owner_name="Writer", today=TODAY)
    assert {"title": "Due", "value": wording} in of_type(card, "FactSet")[0]["facts"]


def test_task_card_shows_note_first_and_blocked_reason_and_snooze_as_facts() -> None:
    card = CARDS["task, blocked and snoozed milestone with a note"]()
    assert texts(card)[0] == "Marked blocked by Content Writer."
    facts = {fact["title"]: fact["value"] for fact in of_type(card, "FactSet")[0]["facts"]}
    assert facts["Task"] == "T12"
    assert facts["Status"] == "Blocked"
    assert facts["Blocked because"] == "Waiting for legal to approve the claims"
    assert facts["Snoozed until"] == "Sun 15 Feb 2026, 09:00 UTC"
    assert "Milestone" in texts(card)


# --- draft, welcome, message ------------------------------------------------------------------------------------------


def test_pending_draft_offers_save_and_discard() -> None:
    card = draft_card(draft_id=7, title="Tactical plans", items=draft_items(1), state="pending")
    assert [(a["title"], a["verb"], a["data"]) for a in top_actions(card)] == [
        ("Save", VERB_CONFIRM_DRAFT, {"draft": 7, "verb": VERB_CONFIRM_DRAFT}),
        ("Discard", VERB_DISCARD_DRAFT, {"draft": 7, "verb": VERB_DISCARD_DRAFT}),
    ]


@pytest.mark.parametrize(("state", "line"), [("saved", "Saved."), ("discarded", "Discarded.")])
def test_decided_draft_has_no_buttons_and_says_what_happened(state: str, line: str) -> None:
    card = draft_card(draft_id=7, title="Tactical plans", items=draft_items(1), state=state)
    assert "actions" not in card
    assert not of_type(card, "Action.Execute")
    assert line in texts(card)


def test_draft_items_show_window_owner_kpis_and_other_keys_as_facts() -> None:
    card = draft_card(draft_id=7, title="Tactical plans", items=draft_items(1), state="pending")
    facts = {fact["title"]: fact["value"] for fact in of_type(card, "FactSet")[0]["facts"]}
    assert facts == {
        "Window": f"5 Jan {RANGE_DASH} 27 Mar 2026",
        "Owner": "Content Writer",
        "KPIs": "SQLs 120; Pipeline €400,000",
        "Channels": "email, webinar, LinkedIn",
        "Budget eur": "12,500",
    }


def test_a_derived_draft_names_its_owner_and_rounds_prorated_counts_to_whole_numbers() -> None:
    item = {
        "title": "500 SQLs by 31 March: January 2026",
        "start": "2026-01-01",
        "end": "2026-01-31",
        "owner": "aad-lead",
        "kpis": [
            {"name": "SQLs", "target": 172.2222, "unit": ""},
            {"name": "Pipeline", "target": 689_655.17, "unit": "USD"},
        ],
    }
    card = draft_card(draft_id=1, title="Tactical plans", items=[item], state="pending", names={"aad-lead": "Lead"})
    facts = {fact["title"]: fact["value"] for fact in of_type(card, "FactSet")[0]["facts"]}
    assert facts["Owner"] == "Lead"
    assert facts["KPIs"] == "SQLs 172; Pipeline $689,655"
    unnamed = draft_card(draft_id=1, title="Tactical plans", items=[item | {"owner": "29:1a2b"}], state="pending")
    assert "29:1a2b" not in all_text(unnamed)


def test_draft_card_refuses_an_unknown_state() -> None:
    with pytest.raises(UnknownDraftState, match="pending, saved, discarded"):
        draft_card(draft_id=7, title="Plans", items=[], state="approved")


def test_welcome_card_lists_the_five_commands_and_offers_my_tasks() -> None:
    card = welcome_card(name="Lead Marketer", is_channel=False, today=date(2026, 2, 2))
    text = texts(card)
    assert text[0] == "Hi Lead Marketer, I'm your Chief of Staff"
    for example in (
        "new plan 500 SQLs by 31 March from 2026-01-01 to 2026-03-31 kpi SQLs 500",
        "plan",
        "my tasks",
        "add task Draft launch email to P2 due 2026-02-16 for @name",
        "help",
    ):
        assert example in text
    assert [(a["title"], a["verb"]) for a in top_actions(card)] == [("Show my tasks", VERB_MY_TASKS)]
    assert not any("@mention" in line for line in text)


def test_welcome_card_in_a_channel_says_to_mention_the_bot() -> None:
    assert any(
        "@mention me" in line for line in texts(welcome_card(name=None, is_channel=True, today=date(2026, 2, 2)))
    )


def test_message_card_shows_a_heading_and_its_non_empty_lines() -> None:
    card = message_card("Recorded", ["SQLs is now 240.", " ", "On pace."])
    assert texts(card) == ["Recorded", "SQLs is now 240.", "On pace."]
    assert "actions" not in card
