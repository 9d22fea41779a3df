"""Triggers: what needs a human now, decided from the database, written to the outbox once.

The scheduler only wakes the engine; `TriggerEngine.evaluate(at)` reads what is due as of `at` and fires each
trigger at most once per subject and time window (the firing key), so any number of replicas may evaluate at
once, and an evaluation after downtime catches up once instead of once per missed tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, func, select

from planner.model import TaskStatus
from planner.outbox import Message, Outbox
from planner.schema import firings, outbox, people, plans, tasks
from planner.store import Store

DEADLINE_APPROACHING = "deadline_approaching"
DEADLINE_SLIPPED = "deadline_slipped"
ESCALATION = "escalation"


@dataclass(frozen=True, kw_only=True)
class TriggerRules:
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


def after_quiet_hours(at: datetime, time_zone: str | None, rules: TriggerRules) -> datetime:
    """`at`, or the end of the recipient's quiet hours if `at` falls inside them (in their time zone)."""
    try:
        zone = ZoneInfo(time_zone or rules.default_time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(rules.default_time_zone)
    local = at.astimezone(zone)
    start, end = rules.quiet_from, rules.quiet_until
    clock = local.time()
    overnight = start > end
    quiet = (clock >= start or clock < end) if overnight else (start <= clock < end)
    if not quiet:
        return at
    day = local.date() + timedelta(days=1) if overnight and clock >= start else local.date()
    return datetime.combine(day, end, tzinfo=zone).astimezone(UTC)


class TriggerEngine:
    """Evaluates the deadline triggers of every tenant into the outbox."""

    def __init__(self, store: Store, outbox: Outbox | None = None, rules: TriggerRules | None = None) -> None:
        self._store = store
        self._outbox = outbox or Outbox(store)
        self.rules = rules or TriggerRules()

    async def evaluate(self, at: datetime) -> int:
        """Fire what is due as of `at`; returns how many firings were new."""
        today = at.date()
        first = today - timedelta(days=self.rules.catch_up_days)
        last = today + timedelta(days=self.rules.approaching_days)
        # Only tasks due near today are read: the cost follows what is due, not the size of the table.
        query = (
            select(
                tasks.c.id,
                tasks.c.tenant_id,
                tasks.c.title,
                tasks.c.owner,
                tasks.c.due_on,
                tasks.c.snoozed_until,
                plans.c.owner.label("plan_owner"),
                people.c.time_zone,
            )
            .join(plans, plans.c.id == tasks.c.plan_id)
            .outerjoin(
                people,
                and_(
                    people.c.tenant_id == tasks.c.tenant_id,
                    people.c.user_id == func.coalesce(tasks.c.owner, plans.c.owner),
                ),
            )
            .where(tasks.c.due_on >= first, tasks.c.due_on <= last, tasks.c.status != TaskStatus.DONE.value)
        )
        async with self._store.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            slipped_keys = [_key(DEADLINE_SLIPPED, r.id, r.due_on) for r in rows if r.due_on < today]
            day_start = datetime.combine(today, time(), tzinfo=UTC)
            sent_today = {
                (tenant, recipient): n
                for tenant, recipient, n in await conn.execute(
                    select(outbox.c.tenant_id, outbox.c.recipient, func.count())
                    .where(outbox.c.created_at >= day_start)
                    .group_by(outbox.c.tenant_id, outbox.c.recipient)
                )
            }
            nudged_at = {}
            if slipped_keys:
                found = await conn.execute(
                    select(firings.c.key, firings.c.fired_at).where(firings.c.key.in_(slipped_keys))
                )
                nudged_at = {key: fired_at for key, fired_at in found}
        fired = 0
        for row in rows:
            if row.snoozed_until is not None and row.snoozed_until > at:
                continue
            trigger = DEADLINE_SLIPPED if row.due_on < today else DEADLINE_APPROACHING
            key = _key(trigger, row.id, row.due_on)
            since = nudged_at.get(key)
            if since is not None and row.owner and row.owner != row.plan_owner:
                if at - since >= self.rules.escalate_after and await self._escalate(row, at):
                    fired += 1
                continue
            recipient = row.owner or row.plan_owner
            budget_key = (row.tenant_id, recipient)
            send_at = at
            if sent_today.get(budget_key, 0) >= self.rules.daily_budget:
                # Over today's budget: the first thing tomorrow morning (quiet hours end then).
                send_at = datetime.combine(today + timedelta(days=1), time(), tzinfo=UTC)
            message = Message(
                recipient=recipient,
                kind=trigger,
                payload={"task": row.id, "title": row.title, "due_on": row.due_on.isoformat()},
                not_before=after_quiet_hours(send_at, row.time_zone, self.rules),
            )
            if await self._outbox.fire(row.tenant_id, key, [message]):
                fired += 1
                sent_today[budget_key] = sent_today.get(budget_key, 0) + 1
        return fired

    async def _escalate(self, row: Any, at: datetime) -> bool:
        """Tell the plan's owner about a slipped task its owner left unanswered."""
        message = Message(
            recipient=row.plan_owner,
            kind=ESCALATION,
            payload={"task": row.id, "title": row.title, "due_on": row.due_on.isoformat(), "owner": row.owner},
            not_before=after_quiet_hours(at, None, self.rules),
        )
        return await self._outbox.fire(row.tenant_id, _key(ESCALATION, row.id, row.due_on), [message])


def _key(trigger: str, task_id: int, due_on: date) -> str:
    return f"{trigger}:task:{task_id}:{due_on.isoformat()}"
