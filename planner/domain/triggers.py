"""Trigger rules: when each trigger fires and for whom, computed from values the engine loaded.

A tenant changes its rules from Teams (`triggers set lead 2`, `triggers off weekly`); what it set is stored as
overrides (`overrides`, `with_overrides`), so a default that improves later reaches every tenant that did not choose
otherwise. Each firing has a key per subject and time window (`deadline_key` …): the outbox decides a key once, so
any number of evaluations fire it once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from planner.domain.errors import Expected, Field, InvalidValue
from planner.domain.model import iso_week_of, iso_week_window


class Trigger(StrEnum):
    """A rule that fires when something needs a person (what it queues is a `MessageKind`). A tenant turns each
    on or off by its name; the values are stored in the tenant's settings: never change one, only add."""

    DEADLINE_APPROACHING = "deadline_approaching"
    DEADLINE_SLIPPED = "deadline_slipped"
    ESCALATION = "escalation"
    MILESTONE_COMPLETED = "milestone_completed"
    METRIC_DRIFT = "metric_drift"
    PLAN_HEALTH = "plan_health"
    WEEKLY_CYCLE = "weekly_cycle"


TRIGGERS = tuple(Trigger)
TRIGGER_ALIASES = {
    "approaching": Trigger.DEADLINE_APPROACHING,
    "slipped": Trigger.DEADLINE_SLIPPED,
    "escalation": Trigger.ESCALATION,
    "milestones": Trigger.MILESTONE_COMPLETED,
    "drift": Trigger.METRIC_DRIFT,
    "health": Trigger.PLAN_HEALTH,
    "weekly": Trigger.WEEKLY_CYCLE,
}


@dataclass(frozen=True, kw_only=True)
class TriggerRules:
    enabled: frozenset[str] = field(default_factory=lambda: frozenset(TRIGGERS))
    """The triggers that fire (all by default)."""
    approaching_days: int = 1
    """A nudge goes out this many days before a task is due."""
    catch_up_days: int = 7
    """How far back a slipped deadline is still noticed (covers downtime without re-reading all history)."""
    quiet_from: time = time(20, 0)
    quiet_until: time = time(8, 0)
    """Recipients' quiet hours, in their own time zone: a nudge due then waits for the morning."""
    default_time_zone: str = "UTC"
    daily_budget: int = 5
    """Nudges a person gets in one day at most; the rest wait for the next morning."""
    escalate_after: timedelta = timedelta(hours=24)
    """A slipped task still open this long after its owner was nudged goes to the plan's owner."""
    week_start_hour: int = 9
    """Monday's plan for the week arrives at this hour of each person's Monday."""
    review_hour: int = 15
    """Friday's review prompt and the leader's digest arrive at this hour of each person's Friday."""

    def fires(self, trigger: str) -> bool:
        return trigger in self.enabled


@dataclass(frozen=True)
class Setting:
    """One rule a tenant may change: its name in Teams, the field, how to read and write it (what it means to a
    person is said in bot/text/triggers.py)."""

    name: str
    field: str
    parse: Any
    show: Any


def _whole(low: int, high: int, unit: Field) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise InvalidValue(unit, text, Expected.WHOLE_NUMBER_FROM, low=low, high=high) from None
        if not low <= value <= high:
            raise InvalidValue(unit, text, Expected.WHOLE_NUMBER_FROM, low=low, high=high)
        return value

    return parse


def _clock(text: str) -> time:
    try:
        return time.fromisoformat(text if ":" in text else f"{int(text):02d}:00")
    except ValueError:
        raise InvalidValue(Field.TIME, text, Expected.TIME_OF_DAY) from None


def _zone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidValue(Field.TIME_ZONE, text, Expected.TIME_ZONE) from None
    return text


def _hours(text: str) -> timedelta:
    return timedelta(hours=_whole(1, 24 * 14, Field.HOURS)(text))


SETTINGS = (
    Setting("lead", "approaching_days", _whole(0, 30, Field.DAYS), str),
    Setting("quiet-from", "quiet_from", _clock, lambda v: v.strftime("%H:%M")),
    Setting("quiet-until", "quiet_until", _clock, lambda v: v.strftime("%H:%M")),
    Setting("time-zone", "default_time_zone", _zone, str),
    Setting("budget", "daily_budget", _whole(1, 100, Field.NUDGES), str),
    Setting(
        "escalate-after",
        "escalate_after",
        _hours,
        lambda v: str(int(v.total_seconds() // 3600)),
    ),
    Setting("monday-hour", "week_start_hour", _whole(0, 23, Field.HOUR), str),
    Setting("friday-hour", "review_hour", _whole(0, 23, Field.HOUR), str),
)
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


def trigger_named(name: str) -> Trigger:
    """The trigger a person means by `name` (`weekly`, `drift`… or the full name)."""
    key = name.strip().lower().replace("-", "_")
    if key in TRIGGERS:
        return Trigger(key)
    if key in TRIGGER_ALIASES:
        return TRIGGER_ALIASES[key]
    raise InvalidValue(Field.TRIGGER, name, Expected.ONE_OF, choices=tuple(TRIGGER_ALIASES))


def overrides(rules: TriggerRules, defaults: TriggerRules) -> dict[str, Any]:
    """The fields of `rules` that differ from `defaults`, as JSON (what a tenant's settings store)."""
    changed: dict[str, Any] = {}
    for setting in SETTINGS:
        value = getattr(rules, setting.field)
        if value != getattr(defaults, setting.field):
            changed[setting.name] = setting.show(value)
    if rules.enabled != defaults.enabled:
        changed["enabled"] = sorted(rules.enabled)
    return changed


def with_overrides(stored: Mapping[str, Any], defaults: TriggerRules) -> TriggerRules:
    """`defaults` with a tenant's stored overrides; a value no longer accepted leaves its default."""
    changes: dict[str, Any] = {}
    for name, value in stored.items():
        if name == "enabled":
            changes["enabled"] = frozenset(t for t in value if t in TRIGGERS)
        elif name in SETTINGS_BY_NAME:
            setting = SETTINGS_BY_NAME[name]
            try:
                changes[setting.field] = setting.parse(str(value))
            except InvalidValue:
                continue  # a value that an older version accepted: the default serves until it is set again
    return dataclasses.replace(defaults, **changes)


def zone_of(time_zone: str | None, rules: TriggerRules) -> ZoneInfo:
    try:
        return ZoneInfo(time_zone or rules.default_time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(rules.default_time_zone)


def after_quiet_hours(at: datetime, time_zone: str | None, rules: TriggerRules) -> datetime:
    """`at`, or the end of the recipient's quiet hours if `at` falls inside them (in their time zone)."""
    zone = zone_of(time_zone, rules)
    local = at.astimezone(zone)
    start, end = rules.quiet_from, rules.quiet_until
    clock = local.time()
    overnight = start > end
    quiet = (clock >= start or clock < end) if overnight else (start <= clock < end)
    if not quiet:
        return at
    day = local.date() + timedelta(days=1) if overnight and clock >= start else local.date()
    return datetime.combine(day, end, tzinfo=zone).astimezone(UTC)


def local_moment(day: date, hour: int, time_zone: str | None, rules: TriggerRules) -> datetime:
    """`hour` o'clock on `day` in the person's time zone, in UTC."""
    return datetime.combine(day, time(hour), tzinfo=zone_of(time_zone, rules)).astimezone(UTC)


# ---- what fires when -----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DueTask:
    """An open task due near today, with whom to tell and in which time zone."""

    id: int
    tenant_id: str
    title: str
    owner: str | None
    due_on: date
    snoozed_until: datetime | None
    plan_owner: str
    time_zone: str | None
    """The time zone of the person told (the task's owner, else the plan's), None when unknown."""

    @property
    def recipient(self) -> str:
        return self.owner or self.plan_owner


@dataclass(frozen=True, kw_only=True)
class DoneMilestone:
    """A milestone done, with the leader (the master plan's owner) to tell."""

    id: int
    tenant_id: str
    title: str
    owner: str | None
    done_at: datetime
    leader: str
    time_zone: str | None
    """The leader's time zone, None when unknown."""


def deadline_key(trigger: str, task_id: int, due_on: date) -> str:
    """The firing key of a deadline nudge or escalation: once per task and due date."""
    return f"{trigger}:task:{task_id}:{due_on.isoformat()}"


def milestone_key(task_id: int) -> str:
    return f"{Trigger.MILESTONE_COMPLETED}:task:{task_id}"


def health_change_key(plan_id: int, before: str, after: str, day: date) -> str:
    """Once per plan, change and day."""
    return f"{Trigger.PLAN_HEALTH}:plan:{plan_id}:{before}->{after}:{day.isoformat()}"


def drift_key(metric_id: int, health: str, measured_on: date | None, actual: float | None) -> str:
    """Once per metric and state: its health and the reading it is judged on. An unchanged drift is not told again;
    a new reading, or a worse judgement of the same one, is a new state."""
    reading = f"{measured_on.isoformat()}={actual!r}" if measured_on is not None else f"none={actual!r}"
    return f"{Trigger.METRIC_DRIFT}:metric:{metric_id}:{health}:{reading}"


def deadline_trigger(due_on: date, today: date) -> Trigger:
    """Slipped once its due day is past, approaching until then."""
    return Trigger.DEADLINE_SLIPPED if due_on < today else Trigger.DEADLINE_APPROACHING


def deadline_is_near(task: DueTask, today: date, rules: TriggerRules) -> bool:
    """A task past due, or due within the tenant's warning days."""
    return task.due_on < today or task.due_on <= today + timedelta(days=rules.approaching_days)


def escalates(task: DueTask, at: datetime, nudged_at: datetime, rules: TriggerRules) -> bool:
    """A slipped task whose owner (not the plan's) left the nudge unanswered for `escalate_after` goes to the plan's
    owner."""
    return (
        task.due_on < at.date()
        and bool(task.owner)
        and task.owner != task.plan_owner
        and rules.fires(Trigger.ESCALATION)
        and at - nudged_at >= rules.escalate_after
    )


def nudge_time(at: datetime, sent_today: int, time_zone: str | None, rules: TriggerRules) -> datetime:
    """When a budgeted nudge may go: now, or the first thing tomorrow once the person's daily budget is spent (quiet
    hours end then), and never inside their quiet hours."""
    send_at = at
    if sent_today >= rules.daily_budget:
        send_at = datetime.combine(at.date() + timedelta(days=1), time(), tzinfo=UTC)
    return after_quiet_hours(send_at, time_zone, rules)


def weekly_phase(today: date) -> tuple[str, str, date] | None:
    """(phase, ISO week, day it is due) of the weekly cycle evaluated on `today`, None midweek.

    Monday's plan is evaluated Monday to Wednesday and Friday's review Friday to Sunday, so a bot that was down on
    the day still sends each once.
    """
    week = iso_week_of(today)
    window = iso_week_window(week)
    if today.weekday() <= 2:
        return "weekly_start", week, window.start
    if today.weekday() >= 4:
        return "weekly_review", week, window.start + timedelta(days=4)
    return None


# ---- pacing: what one person receives in a day -----------------------------------------------------------------


class Pace(StrEnum):
    """How the messages one delivery pass has for one person go out."""

    EACH = "each"
    """One message, within the day's budget: as it is."""
    FOLD = "fold"
    """Several, or more than the budget has room for: one summary card holding them all."""
    TOMORROW = "tomorrow"
    """The day's budget is spent: the next morning, where they are."""


def pace(waiting: int, delivered_today: int, budget: int) -> Pace:
    """How `waiting` foldable messages for one person go, who has had `delivered_today` messages of their day.

    A person receives at most `budget` messages a day, counting every kind; what one pass has for them beyond one
    message arrives as one summary card, which counts as one.
    """
    if delivered_today >= budget:
        return Pace.TOMORROW
    return Pace.EACH if waiting <= 1 else Pace.FOLD


def day_start(at: datetime, time_zone: str | None, rules: TriggerRules) -> datetime:
    """Midnight of `at`'s day where the person is, in UTC: their day's budget counts from there."""
    zone = zone_of(time_zone, rules)
    return datetime.combine(at.astimezone(zone).date(), time(), tzinfo=zone).astimezone(UTC)


def next_morning(at: datetime, time_zone: str | None, rules: TriggerRules) -> datetime:
    """The first moment of the person's next day outside their quiet hours, in UTC."""
    zone = zone_of(time_zone, rules)
    midnight = datetime.combine(at.astimezone(zone).date() + timedelta(days=1), time(), tzinfo=zone)
    return after_quiet_hours(midnight.astimezone(UTC), time_zone, rules)
