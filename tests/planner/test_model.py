from __future__ import annotations

from datetime import date

import pytest

from bot.text.errors import describe_plain
from planner.domain.errors import Dated, Expected, Field, InvalidValue, InvalidWindow, WindowConflict
from planner.domain.model import Direction, Health, MetricSpec, Window, iso_week_of, iso_week_window


def test_window_counts_its_days_inclusively() -> None:
    assert Window(start=date(2026, 1, 1), end=date(2026, 3, 31)).days == 90


def test_window_ending_before_it_starts_is_refused_with_both_dates() -> None:
    with pytest.raises(InvalidWindow, match="ends 2026-01-01, before it starts 2026-02-01"):
        Window(start=date(2026, 2, 1), end=date(2026, 1, 1))


def test_elapsed_fraction_counts_the_as_of_day_as_gone() -> None:
    window = Window(start=date(2026, 1, 1), end=date(2026, 3, 31))
    assert window.elapsed_fraction(date(2025, 12, 31)) == 0.0
    assert window.elapsed_fraction(date(2026, 1, 1)) == pytest.approx(1 / 90)
    assert window.elapsed_fraction(date(2026, 2, 14)) == pytest.approx(0.5)
    assert window.elapsed_fraction(date(2026, 3, 31)) == 1.0
    assert window.elapsed_fraction(date(2026, 5, 1)) == 1.0


def test_child_window_outside_parent_names_the_conflicting_dates() -> None:
    parent = Window(start=date(2026, 1, 1), end=date(2026, 3, 31))
    child = Window(start=date(2025, 12, 20), end=date(2026, 4, 10))
    with pytest.raises(WindowConflict) as caught:
        child.require_inside(
            parent, what=Dated(kind="plan", tier="tactical"), parent_name=Dated(kind="plan", tier="master", ref=1)
        )
    message = describe_plain(caught.value)
    assert "starts Sat 20 Dec 2025, before master plan 1 starts Thu 1 Jan 2026" in message
    assert "ends Fri 10 Apr 2026, after master plan 1 ends Tue 31 Mar 2026" in message
    assert message.endswith("Choose dates within 1 Jan \u2013 31 Mar 2026.")


def test_iso_week_window_runs_monday_to_sunday() -> None:
    week = iso_week_window("2026-W07")
    assert (week.start, week.end) == (date(2026, 2, 9), date(2026, 2, 15))
    assert iso_week_of(date(2026, 2, 15)) == "2026-W07"
    assert iso_week_of(date(2027, 1, 1)) == "2026-W53"


@pytest.mark.parametrize("text", ["2026-7", "W07", "2026-W54", "next week"])
def test_malformed_iso_week_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        iso_week_window(text)
    assert refused.value.expected is Expected.ISO_WEEK


def test_metric_direction_follows_target_when_not_given() -> None:
    assert MetricSpec(name="SQLs", target=500).resolved_direction() is Direction.UP
    assert MetricSpec(name="CPL", baseline=100, target=60).resolved_direction() is Direction.DOWN


def test_metric_target_on_the_wrong_side_of_its_direction_is_refused() -> None:
    with pytest.raises(InvalidValue) as refused:
        MetricSpec(name="SQLs", baseline=10, target=5, direction=Direction.UP).validate()
    assert (refused.value.field, refused.value.expected) == (Field.TARGET, Expected.AT_LEAST_BASELINE)
    assert refused.value.details == {"baseline": 10, "metric": "SQLs"}
    with pytest.raises(InvalidValue) as refused:
        MetricSpec(name="SQLs", target=5, tolerance=1.5).validate()
    assert (refused.value.field, refused.value.expected, refused.value.details) == (
        Field.TOLERANCE,
        Expected.FRACTION,
        {"metric": "SQLs"},
    )


def test_worst_health_wins() -> None:
    assert Health.worst(Health.ON_TRACK, Health.OFF_TRACK, Health.AT_RISK) is Health.OFF_TRACK
    assert Health.worst() is Health.ON_TRACK
