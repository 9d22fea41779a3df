"""The rules' recommendations in words: bot/text/recommendations.py."""

from __future__ import annotations

from bot.text.recommendations import rule_recommendations
from planner.domain.measurement import MeasurementFacts, MetricSeries, measure
from tests.planner.test_measurement import AS_OF, FACTS, MASTER, SQLS, at, reading


def test_rules_recommend_unblocking_pushing_or_a_first_reading_with_the_numbers() -> None:
    sqls, cost, signups = rule_recommendations(measure(FACTS, AS_OF))
    assert sqls.action == "Unblock the late work behind SQLs first: T4."
    assert "reaches 240 by Sun 1 Feb, against a target of 280 (86 %)" in sqls.rationale
    assert "needs 80 a week" in sqls.rationale
    assert cost.action == "Push Cost per lead a little harder this week."
    assert "within its tolerance of 30 %" in cost.rationale
    assert signups.action.startswith("Record a first reading of Launch signups")
    assert {r.by for r in (sqls, cost, signups)} == {"rules"}


def test_a_kpi_on_course_is_told_to_keep_it() -> None:
    ahead = MetricSeries(metric=SQLS, plan=MASTER, readings=(reading(1, at(18), 150),))
    facts = MeasurementFacts(master=MASTER, series=(ahead,))
    [advice] = rule_recommendations(measure(facts, AS_OF))
    assert advice.action == "Keep the course on SQLs."
    assert "reaches 300 by Sun 1 Feb" in advice.rationale


def test_a_kpi_behind_with_nothing_late_is_told_to_re_plan() -> None:
    behind = MetricSeries(metric=SQLS, plan=MASTER, readings=(reading(1, at(18), 50),))
    facts = MeasurementFacts(master=MASTER, series=(behind,))
    [advice] = rule_recommendations(measure(facts, AS_OF))
    assert advice.action.startswith("Re-plan SQLs")
    assert "nothing in its plan is late" in advice.rationale


def test_a_kpi_far_ahead_says_its_attainment_with_a_thousands_separator() -> None:
    ahead = MetricSeries(metric=SQLS, plan=MASTER, readings=(reading(1, at(18), 3_000),))
    facts = MeasurementFacts(master=MASTER, series=(ahead,))
    [advice] = rule_recommendations(measure(facts, AS_OF))
    assert "against a target of 280 (2,143 %)" in advice.rationale
