"""No card the bot builds is taller than a Teams screen comfortably shows (about 1,200 px at Teams' card width)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bot.cards import member_week, plan_overview, task_card, welcome_card
from bot.cards.digest import measurement_card, of_kpis
from bot.cards.task_list import TaskFilter, task_list_card
from bot.charts import chart_png, data_uri
from planner.domain.model import TaskStatus, Tier
from tests.bot.cards.card_height import card_height
from tests.bot.cards.test_cards import (
    NAMES,
    PLAN_TITLES,
    THIS_WEEK,
    TODAY,
    all_text,
    make_plan,
    make_rollup,
    make_task,
    schema_errors,
)
from tests.bot.test_measurement import report_with_advice

HEIGHT_BUDGET_PX = 1200
LONG_TITLE = "Rewrite the nurture sequence for the enterprise segment after the pricing change"


def large_week() -> list:  # type: ignore[type-arg]
    return [
        make_task(n, due_on=TODAY + timedelta(days=n % 9 - 3), title=f"{LONG_TITLE} ({n})", plan_id=2 + n % 3)
        for n in range(1, 41)
    ]


def test_the_estimate_counts_wrapped_lines_and_ignores_folded_content() -> None:
    short = {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "x" * 100, "wrap": True}]}
    longer = {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "x" * 201, "wrap": True}]}
    assert card_height(longer) - card_height(short) == 40
    folded = {"type": "Container", "isVisible": False, "items": short["body"] * 50}
    assert card_height({"type": "AdaptiveCard", "body": [*short["body"], folded]}) == card_height(short)


def test_a_large_plan_card_fits_a_teams_screen_and_folds_the_rest() -> None:
    card = plan_overview(make_rollup(tacticals=12, overdue=4, sqls_reading=40), names=NAMES, today=TODAY)
    assert schema_errors(card) == []
    assert card_height(card) <= HEIGHT_BUDGET_PX
    assert "Show more" in str(card)
    assert all_text(card).count("**Tactical programme") == 12  # folded, not dropped


def test_a_large_week_card_fits_a_teams_screen() -> None:
    card = member_week(
        person_name="Content Writer", iso_week=THIS_WEEK, tasks=large_week(), today=TODAY, plan_titles=PLAN_TITLES
    )
    assert schema_errors(card) == []
    assert card_height(card) <= HEIGHT_BUDGET_PX


def test_a_large_task_list_fits_a_teams_screen() -> None:
    tasks = [replace(t, status=TaskStatus.BLOCKED) if t.id % 5 == 0 else t for t in large_week()]
    card = task_list_card(
        make_plan(2, Tier.TACTICAL, title="Product launch"), tasks, task_filter=TaskFilter(), names=NAMES, today=TODAY
    )
    assert schema_errors(card) == []
    assert card_height(card) <= HEIGHT_BUDGET_PX


def test_the_how_are_we_doing_card_with_its_chart_fits_a_teams_screen() -> None:
    report = report_with_advice()
    card = measurement_card(report, chart_url=data_uri(chart_png(report)))
    assert schema_errors(card) == []
    assert of_kpis(card)
    assert card_height(card) <= HEIGHT_BUDGET_PX


def test_the_task_card_and_the_welcome_fit_a_teams_screen() -> None:
    task = make_task(7, due_on=TODAY, title=LONG_TITLE * 2, blocked_reason=LONG_TITLE * 3, status=TaskStatus.BLOCKED)
    for card in (
        task_card(task, plan_title="Product launch", owner_name="Content Writer", today=TODAY, note=LONG_TITLE),
        welcome_card(name="Content Writer", is_channel=False, today=TODAY),
        welcome_card(name=None, is_channel=True, today=TODAY),
    ):
        assert schema_errors(card) == []
        assert card_height(card) <= HEIGHT_BUDGET_PX
