"""Trigger rules: when each trigger fires and for whom, with a tenant's own settings over the defaults.

A tenant changes its rules from Teams (`triggers set lead 2`, `triggers off weekly`); what it set is stored as
overrides, so a default that improves later reaches every tenant that did not choose otherwise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from planner.domain.errors import InvalidValue
from planner.store import Store, upsert
from planner.store.schema import trigger_settings


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
    """One rule a tenant may change: its name in Teams, the field, how to read and write it."""

    name: str
    field: str
    description: str
    parse: Any
    show: Any


def _whole(low: int, high: int, unit: str) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise InvalidValue(unit, text, f"a whole number from {low} to {high}") from None
        if not low <= value <= high:
            raise InvalidValue(unit, text, f"a whole number from {low} to {high}")
        return value

    return parse


def _clock(text: str) -> time:
    try:
        return time.fromisoformat(text if ":" in text else f"{int(text):02d}:00")
    except ValueError:
        raise InvalidValue("time", text, "a time of day such as 20:00") from None


def _zone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidValue("time zone", text, "an IANA time zone such as Europe/Paris") from None
    return text


def _hours(text: str) -> timedelta:
    return timedelta(hours=_whole(1, 24 * 14, "hours")(text))


SETTINGS = (
    Setting("lead", "approaching_days", "days of warning before a deadline", _whole(0, 30, "days"), str),
    Setting("quiet-from", "quiet_from", "start of quiet hours", _clock, lambda v: v.strftime("%H:%M")),
    Setting("quiet-until", "quiet_until", "end of quiet hours", _clock, lambda v: v.strftime("%H:%M")),
    Setting("time-zone", "default_time_zone", "time zone of people whose zone is unknown", _zone, str),
    Setting("budget", "daily_budget", "nudges per person per day", _whole(1, 100, "nudges"), str),
    Setting(
        "escalate-after",
        "escalate_after",
        "hours before an unanswered slip goes to the plan owner",
        _hours,
        lambda v: str(int(v.total_seconds() // 3600)),
    ),
    Setting("monday-hour", "week_start_hour", "hour Monday's week plan arrives", _whole(0, 23, "hour"), str),
    Setting("friday-hour", "review_hour", "hour Friday's review and digest arrive", _whole(0, 23, "hour"), str),
)
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


def trigger_named(name: str) -> Trigger:
    """The trigger a person means by `name` (`weekly`, `drift`… or the full name)."""
    key = name.strip().lower().replace("-", "_")
    if key in TRIGGERS:
        return Trigger(key)
    if key in TRIGGER_ALIASES:
        return TRIGGER_ALIASES[key]
    raise InvalidValue("trigger", name, "one of " + ", ".join(TRIGGER_ALIASES))


def _to_json(rules: TriggerRules, defaults: TriggerRules) -> dict[str, Any]:
    """The fields of `rules` that differ from `defaults`, as JSON."""
    overrides: dict[str, Any] = {}
    for setting in SETTINGS:
        value = getattr(rules, setting.field)
        if value != getattr(defaults, setting.field):
            overrides[setting.name] = setting.show(value)
    if rules.enabled != defaults.enabled:
        overrides["enabled"] = sorted(rules.enabled)
    return overrides


def _from_json(overrides: Mapping[str, Any], defaults: TriggerRules) -> TriggerRules:
    changes: dict[str, Any] = {}
    for name, value in overrides.items():
        if name == "enabled":
            changes["enabled"] = frozenset(t for t in value if t in TRIGGERS)
        elif name in SETTINGS_BY_NAME:
            setting = SETTINGS_BY_NAME[name]
            try:
                changes[setting.field] = setting.parse(str(value))
            except InvalidValue:
                continue  # a value that an older version accepted: the default serves until it is set again
    return dataclasses.replace(defaults, **changes)


class TenantTriggerRules:
    """The rules of every tenant: their stored overrides on top of the engine's defaults."""

    def __init__(self, store: Store, defaults: TriggerRules | None = None) -> None:
        self._store = store
        self.defaults = defaults or TriggerRules()

    async def all(self) -> dict[str, TriggerRules]:
        """Every tenant that changed something, with its rules (others use the defaults)."""
        async with self._store.engine.connect() as conn:
            rows = (await conn.execute(select(trigger_settings.c.tenant_id, trigger_settings.c.settings))).all()
        return {tenant: _from_json(overrides, self.defaults) for tenant, overrides in rows}

    async def of(self, tenant_id: str) -> TriggerRules:
        async with self._store.engine.connect() as conn:
            overrides = (
                await conn.execute(select(trigger_settings.c.settings).where(trigger_settings.c.tenant_id == tenant_id))
            ).scalar()
        return _from_json(overrides or {}, self.defaults)

    async def _save(self, tenant_id: str, rules: TriggerRules, actor: str) -> TriggerRules:
        now = self._store.clock()
        overrides = _to_json(rules, self.defaults)
        async with self._store.transaction() as conn:
            await upsert(
                conn,
                trigger_settings,
                trigger_settings.c.tenant_id == tenant_id,
                dict(settings=overrides, updated_by=actor, updated_at=now),
                dict(tenant_id=tenant_id, settings=overrides, updated_by=actor, updated_at=now),
            )
        return rules

    async def change(self, tenant_id: str, name: str, value: str, *, actor: str) -> TriggerRules:
        """Set one rule from its Teams name and text value. Raises InvalidValue saying what is accepted."""
        setting = SETTINGS_BY_NAME.get(name.strip().lower())
        if setting is None:
            raise InvalidValue("setting", name, "one of " + ", ".join(SETTINGS_BY_NAME))
        rules = dataclasses.replace(await self.of(tenant_id), **{setting.field: setting.parse(value.strip())})
        return await self._save(tenant_id, rules, actor)

    async def switch(self, tenant_id: str, trigger: str, *, on: bool, actor: str) -> TriggerRules:
        """Turn one trigger on or off for the tenant."""
        name = trigger_named(trigger)
        rules = await self.of(tenant_id)
        enabled = rules.enabled | {name} if on else rules.enabled - {name}
        return await self._save(tenant_id, dataclasses.replace(rules, enabled=frozenset(enabled)), actor)

    async def reset(self, tenant_id: str, *, actor: str) -> TriggerRules:
        return await self._save(tenant_id, self.defaults, actor)


def describe(rules: TriggerRules) -> list[str]:
    """The rules as lines a person reads in Teams."""
    lines = [f"{trigger.replace('_', ' ')}: {'on' if rules.fires(trigger) else 'off'}" for trigger in TRIGGERS]
    lines += [f"{s.name} = {s.show(getattr(rules, s.field))} ({s.description})" for s in SETTINGS]
    return lines


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
