"""The plan card for a quarter with a month already over: that month reads met or missed, never at risk."""

from __future__ import annotations

from datetime import date

from bot.cards.plan import plan_overview
from planner.domain.model import Tier, Window
from planner.domain.rollup import MetricFacts, PlanFacts, TaskCounts, roll_up
from tests.bot.cards.test_cards import NAMES, TODAY, all_text, make_plan, of_type, schema_errors, sqls, texts


def test_an_ended_month_shows_met_or_missed_with_its_final_figure_and_no_pace() -> None:
    master = make_plan(1, Tier.MASTER, title="500 SQLs by 31 March")
    january = make_plan(
        2, Tier.TACTICAL, title="January", window=Window(start=date(2026, 1, 1), end=date(2026, 1, 31)), parent_id=1
    )
    february = make_plan(
        3, Tier.TACTICAL, title="February", window=Window(start=date(2026, 2, 1), end=date(2026, 2, 28)), parent_id=1
    )
    tree = roll_up(
        PlanFacts(plan=master, counts=TaskCounts(), metrics=(MetricFacts(metric=sqls(1), latest=240),)),
        [
            PlanFacts(
                plan=january,
                counts=TaskCounts(total=3, done=3),
                metrics=(MetricFacts(metric=sqls(2, target=170, metric_id=2), latest=150),),
            ),
            PlanFacts(
                plan=february,
                counts=TaskCounts(total=4, done=2),
                metrics=(MetricFacts(metric=sqls(3, target=160, metric_id=3), latest=85),),
            ),
        ],
        [],
        TODAY,
    )
    card = plan_overview(tree, names=NAMES, today=TODAY)
    assert schema_errors(card) == []
    labels = [block["text"] for block in of_type(card, "TextBlock") if block["text"] in ("Met", "Missed", "At risk")]
    assert "Missed" in labels  # January: 150 of 170
    shown = all_text(card)
    assert "SQLs: 150 of 170 (window ended) · Missed" in shown
    assert "SQLs ended at 150 against a target of 170" in shown
    assert "Met" not in texts(card)  # the running February is judged on pace instead
    assert "SQLs: 85 of 160 (expected" in shown


def test_the_plans_still_running_come_before_the_ended_ones_so_they_are_not_folded() -> None:
    master = make_plan(1, Tier.MASTER, title="500 SQLs by 31 March")
    months = [
        make_plan(
            2 + n,
            Tier.TACTICAL,
            title=title,
            window=Window(start=date(2026, 1 + n, 1), end=date(2026, 1 + n, 28)),
            parent_id=1,
        )
        for n, title in enumerate(["January", "February", "March"])
    ]
    today = date(2026, 3, 10)
    tree = roll_up(
        PlanFacts(plan=master, counts=TaskCounts()),
        [PlanFacts(plan=month, counts=TaskCounts(total=2, done=1)) for month in months],
        [],
        today,
    )
    card = plan_overview(tree, names=NAMES, today=today)
    unfolded = [
        block["text"]
        for block in of_type({"body": [e for e in card["body"] if e.get("isVisible") is not False]}, "TextBlock")
        if block["text"].startswith("**")
    ]
    assert [text.split("**")[1] for text in unfolded] == ["March", "January"]
    assert "February" in all_text(card)  # folded behind Show more, not dropped


def test_a_tactical_plan_without_tasks_says_so_with_no_empty_progress_bar() -> None:
    master = make_plan(1, Tier.MASTER, title="500 SQLs by 31 March")
    january = make_plan(
        2, Tier.TACTICAL, title="January", window=Window(start=date(2026, 1, 1), end=date(2026, 1, 31)), parent_id=1
    )
    february = make_plan(
        3, Tier.TACTICAL, title="February", window=Window(start=date(2026, 2, 1), end=date(2026, 2, 28)), parent_id=1
    )
    tree = roll_up(
        PlanFacts(plan=master, counts=TaskCounts()),
        [PlanFacts(plan=january, counts=TaskCounts()), PlanFacts(plan=february, counts=TaskCounts(total=2, done=1))],
        [],
        TODAY,
    )
    card = plan_overview(tree, names=NAMES, today=TODAY)
    bars = {e.get("id") for e in of_type(card, "ColumnSet") if str(e.get("id", "")).startswith("progress-")}
    assert bars == {"progress-P1", "progress-P3"}
    assert any(text.endswith("No tasks yet") for text in texts(card))
