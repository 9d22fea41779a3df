"""The trigger rules on plain values, with no database: the engine's decisions a test can work out by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from planner.domain.ingestion import MetricFeed, is_due
from planner.domain.triggers import (
    DueTask,
    Pace,
    Trigger,
    TriggerRules,
    day_start,
    deadline_is_near,
    escalates,
    next_morning,
    nudge_time,
    overrides,
    pace,
    weekly_phase,
    with_overrides,
)

TUESDAY_NOON = datetime(2026, 2, 10, 12, tzinfo=UTC)


def task(*, due_on: date, owner: str | None = "aad-writer") -> DueTask:
    return DueTask(
        id=7,
        tenant_id="contoso",
        title="Brief",
        owner=owner,
        due_on=due_on,
        snoozed_until=None,
        plan_owner="aad-lead",
        time_zone=None,
    )


def test_the_weekly_cycle_is_monday_to_wednesday_and_friday_to_sunday() -> None:
    assert weekly_phase(date(2026, 2, 11)) == ("weekly_start", "2026-W07", date(2026, 2, 9))
    assert weekly_phase(date(2026, 2, 12)) is None
    assert weekly_phase(date(2026, 2, 15)) == ("weekly_review", "2026-W07", date(2026, 2, 13))


def test_a_deadline_is_near_when_slipped_or_within_the_lead_days() -> None:
    rules = TriggerRules(approaching_days=2)
    today = TUESDAY_NOON.date()
    assert deadline_is_near(task(due_on=today - timedelta(days=3)), today, rules)
    assert deadline_is_near(task(due_on=today + timedelta(days=2)), today, rules)
    assert not deadline_is_near(task(due_on=today + timedelta(days=3)), today, rules)


def test_only_a_slip_someone_else_owns_escalates_and_only_after_the_wait() -> None:
    slipped = task(due_on=TUESDAY_NOON.date() - timedelta(days=1))
    nudged = TUESDAY_NOON - timedelta(hours=25)
    assert escalates(slipped, TUESDAY_NOON, nudged, TriggerRules())
    assert not escalates(slipped, TUESDAY_NOON, TUESDAY_NOON - timedelta(hours=2), TriggerRules())
    assert not escalates(task(due_on=slipped.due_on, owner="aad-lead"), TUESDAY_NOON, nudged, TriggerRules())
    assert not escalates(slipped, TUESDAY_NOON, nudged, TriggerRules(enabled=frozenset({Trigger.DEADLINE_SLIPPED})))


def test_a_spent_budget_moves_a_nudge_to_the_end_of_tomorrows_quiet_hours() -> None:
    rules = TriggerRules(daily_budget=2)
    assert nudge_time(TUESDAY_NOON, 1, None, rules) == TUESDAY_NOON
    assert nudge_time(TUESDAY_NOON, 2, None, rules) == datetime(2026, 2, 11, 8, tzinfo=UTC)


def test_stored_overrides_keep_only_what_differs_and_read_back_the_same_rules() -> None:
    defaults = TriggerRules()
    chosen = TriggerRules(approaching_days=3, enabled=frozenset({Trigger.WEEKLY_CYCLE}))
    stored = overrides(chosen, defaults)
    assert stored == {"lead": "3", "enabled": ["weekly_cycle"]}
    assert with_overrides(stored, defaults) == chosen
    assert with_overrides({"lead": "not a number"}, defaults) == defaults


def test_a_feed_is_due_when_never_pulled_or_its_interval_has_passed() -> None:
    feed = MetricFeed(
        id=1,
        tenant_id="contoso",
        metric_id=1,
        adapter="hubspot",
        capability="get_campaign_metrics",
        input={},
        field="sqls",
        unit="SQL",
        every_minutes=60,
    )
    assert is_due(feed, TUESDAY_NOON)
    pulled = replace(feed, last_pulled_at=TUESDAY_NOON - timedelta(minutes=59))
    assert not is_due(pulled, TUESDAY_NOON)
    assert is_due(pulled, TUESDAY_NOON + timedelta(minutes=1))


def test_a_persons_day_is_paced_against_their_budget() -> None:
    assert pace(1, delivered_today=0, budget=5) is Pace.EACH
    assert pace(3, delivered_today=0, budget=5) is Pace.FOLD  # one pass, one card
    assert pace(9, delivered_today=4, budget=5) is Pace.FOLD  # the last one of the day holds them all
    assert pace(1, delivered_today=5, budget=5) is Pace.TOMORROW


def test_a_persons_day_starts_and_their_next_morning_comes_where_they_are() -> None:
    rules = TriggerRules()
    at = datetime(2026, 2, 11, 3, 0, tzinfo=UTC)  # still 10 February in Los Angeles
    assert day_start(at, "America/Los_Angeles", rules) == datetime(2026, 2, 10, 8, 0, tzinfo=UTC)
    assert day_start(at, None, rules) == datetime(2026, 2, 11, tzinfo=UTC)
    # Midnight of 11 February there, then the end of the quiet hours there.
    there = ZoneInfo("America/Los_Angeles")
    expected = datetime.combine(date(2026, 2, 11), rules.quiet_until, tzinfo=there).astimezone(UTC)
    assert next_morning(at, "America/Los_Angeles", rules) == expected
