"""KPI readings from outside the chat: signed events posted by connected systems, and feeds pulled from agents.

A reading always comes with its unit, checked against the metric's (`check_unit`), and is stored through
`Plans.record_reading`, idempotent by (metric, time, source): the same event posted twice, or an agent
answering the same figure for the same time twice, is stored once.

- **Events** (`MetricEvents.post`): a connected system registered as a context source (planner/services/context.py, the
  same names and HMAC secrets) posts `{"id": "evt-7", "sent_at": "2026-02-15T12:00:05Z", "metric": "SQLs", "value": 140,
  "unit": "SQL", "at": "2026-02-15T12:00:00Z"}` (and `"plan": 1` when several plans track that name); the
  reading's source is `event:<source>`. A signed body can be captured and posted again, so, as with context events,
  every event has an id the source never reuses and the time it is sent: an id seen before is a replay (refused,
  nothing of the post stored), and an event sent more than 5 minutes from the bot's clock is refused, so the ids
  need keeping only that long. `at` is when the value was measured, any time before.
- **Feeds** (`MetricFeeds`): an admin ties a metric to an agent's capability (`get_campaign_metrics` with
  `{"campaign": "abm-q1"}`), a field of the data it answers (`sqls`), the unit that field is in, and how often to
  pull. `pull_due` calls each feed that is due; the reading is timed by the data's `as_of`/`at` when it gives
  one, else by the pull, and its source is `adapter:<name>`.

A pull calls its agent as a delegation does, through the gated agent the registry hands out
(planner/governance/gated_agent.py): the policy gate sees it as an action of kind `delegation` (the adapter as agent,
the capability as action, asked by `bot`, about `metric:<id>`), and the adapter's circuit breaker refuses it while the
agent is down, counting its failures with the delegations'. A stop refuses it, and so does a flag, since nobody waits on
a schedule for an approval. A pull keeps no delegation row: a delegation is a task handed to an agent on someone's
behalf, with an owner to tell and an outcome a person may have to settle (retry or cancel). A pull is the
bot reading a figure on its own schedule: one that failed is simply made again at its next turn, and a reading
answered twice is stored once. What it leaves is what answers "why": the decision log entry the gate writes when a
rule speaks (a silent go writes none, as for a delegation), the reading stored with its source (`adapter:<name>`),
and the feed's last pull and last error (`cos metrics feeds`).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from planner.domain.errors import InvalidValue, PlannerError
from planner.domain.model import Metric, MetricReading
from planner.governance.gated_agent import DelegationHeld, DelegationStopped, GatedAgent
from planner.ports import AgentError, DelegationRequest, DelegationStatus
from planner.services.context import SKEW, ReplayedContextEvent, StaleContextEvent
from planner.services.plans import Plans
from planner.store import Store
from planner.store import events as event_log
from planner.store.schema import metric_feeds, signed_event_ids

MAX_EVENTS = 1_000
MAX_ID = 200
MIN_EVERY_MINUTES = 5
PULL_TIMEOUT_SECONDS = 30.0
_UNIT_ALIASES = {"%": "percent", "pct": "percent", "per cent": "percent", "eur": "€", "usd": "$", "gbp": "£"}


class UnitMismatch(PlannerError, ValueError):
    def __init__(self, metric: Metric, unit: str) -> None:
        self.metric = metric
        self.unit = unit
        expected = metric.unit or "no unit (or the metric's name)"
        super().__init__(f"{metric.name} is counted in {expected!s}, not {unit!r}: send it in {expected!s}.")


class InvalidMetricEvent(PlannerError, ValueError):
    """Metric events that cannot be stored; `problems` names each field and what it should be."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid metric event: " + "; ".join(problems))


class StaleMetricEvent(StaleContextEvent):
    """Events whose `sent_at` is too far from the bot's clock to be told apart from a replay."""

    def __init__(self, event_ids: Sequence[str], now: datetime) -> None:
        super().__init__(event_ids, now, sent="sent_at", earlier="`at` may be any earlier time")


class ReplayedMetricEvent(ReplayedContextEvent):
    """An event id this source posted before: nothing of the post is stored."""


class PulledAgainstPolicy(PlannerError, PermissionError):
    """The policy gate refused a pull (`reason`: its words)."""

    def __init__(self, feed: MetricFeed, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"policy does not let the bot call {feed.adapter} {feed.capability} on its own: {reason} "
            "Change the rule, or remove the feed and record the figure in chat."
        )


class FeedNotFound(PlannerError, LookupError):
    def __init__(self, feed_id: int) -> None:
        super().__init__(f"There is no metric feed {feed_id}. `cos metrics feeds --tenant T` lists them.")


def _normal_unit(unit: str) -> str:
    folded = " ".join(unit.split()).casefold()
    folded = _UNIT_ALIASES.get(folded, folded)
    return folded[:-1] if folded.endswith("s") and len(folded) > 1 else folded


def check_unit(metric: Metric, unit: str) -> None:
    """Raise UnitMismatch unless `unit` is the metric's (case, spacing, a plural `s` and `%`/`percent` aside).

    A metric without a unit takes readings in no unit or named after the metric (`SQLs` of a metric `SQLs`).
    """
    given = _normal_unit(unit)
    accepted = {_normal_unit(metric.unit)} if metric.unit else {"", _normal_unit(metric.name)}
    if given not in accepted:
        raise UnitMismatch(metric, unit)


@dataclass(frozen=True, kw_only=True)
class MetricEvent:
    id: str
    sent_at: datetime
    metric: str
    value: float
    unit: str
    at: datetime
    plan: int | None = None


def _time(value: Any, path: str, problems: list[str]) -> datetime | None:
    if not isinstance(value, str):
        problems.append(f"{path}: an ISO 8601 time with its zone, such as 2026-02-15T12:00:00Z")
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        problems.append(f"{path}: an ISO 8601 time with its zone, such as 2026-02-15T12:00:00Z")
        return None
    return parsed


def parse_metric_events(payload: Any) -> list[MetricEvent]:
    """Events from a posted JSON body (one object or a list). Raises InvalidMetricEvent naming every bad field."""
    raw = payload if isinstance(payload, list) else [payload]
    if not raw or len(raw) > MAX_EVENTS:
        raise InvalidMetricEvent([f"body: one event or a list of 1 to {MAX_EVENTS} events"])
    problems: list[str] = []
    parsed: list[MetricEvent] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        path = f"[{index}]" if isinstance(payload, list) else "event"
        if not isinstance(item, dict):
            problems.append(f"{path}: an object with id, sent_at, metric, value, unit and at")
            continue
        unknown = sorted(set(item) - {"id", "sent_at", "metric", "value", "unit", "at", "plan"})
        if unknown:
            problems.append(f"{path}: unknown field(s) {', '.join(unknown)}")
        metric, value, unit, plan = item.get("metric"), item.get("value"), item.get("unit"), item.get("plan")
        event_id = item.get("id")
        if not isinstance(event_id, str) or not 0 < len(event_id.strip()) <= MAX_ID:
            problems.append(f"{path}.id: the event's id, unique for its source (1 to {MAX_ID} characters)")
        elif event_id.strip() in seen:
            problems.append(f"{path}.id: {event_id!r} is given twice in this post")
        else:
            seen.add(event_id.strip())
        sent_at = _time(item.get("sent_at"), f"{path}.sent_at", problems)
        if not isinstance(metric, str) or not metric.strip():
            problems.append(f"{path}.metric: the KPI's name, such as SQLs")
        number_ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not number_ok:
            problems.append(f"{path}.value: a finite number")
        if not isinstance(unit, str):
            problems.append(f'{path}.unit: the unit of the value, such as "SQL" or "%" ("" for none)')
        if plan is not None and (not isinstance(plan, int) or isinstance(plan, bool)):
            problems.append(f"{path}.plan: a plan id number, such as 1")
        at = _time(item.get("at"), f"{path}.at", problems)
        if not problems and at is not None and sent_at is not None:
            parsed.append(
                MetricEvent(
                    id=str(event_id).strip(),
                    sent_at=sent_at,
                    metric=str(metric).strip(),
                    value=float(value or 0),
                    unit=str(unit),
                    at=at,
                    plan=plan,
                )
            )
    if problems:
        raise InvalidMetricEvent(problems)
    return parsed


class MetricEvents:
    """Readings posted by a tenant's connected systems."""

    def __init__(self, store: Store, tenant_id: str) -> None:
        self._store = store
        self.tenant_id = tenant_id
        self.plans = Plans(store, tenant_id)

    async def post(self, source: str, events: Sequence[MetricEvent]) -> list[MetricReading]:
        """Store every event's reading and remember its id, in one transaction, after checking them all (fresh,
        metric known, unit right): none is stored when one is wrong. Raises StaleMetricEvent, MetricNotFound,
        UnitMismatch, InvalidValue or ReplayedMetricEvent."""
        now = self._store.clock()
        stale = [e.id for e in events if abs(e.sent_at - now) > SKEW]
        if stale:
            raise StaleMetricEvent(stale, now)
        resolved = []
        for event in events:
            metric = await self.plans.find_metric(event.metric, plan_id=event.plan)
            check_unit(metric, event.unit)
            resolved.append((metric, event))
        ids = [{"tenant_id": self.tenant_id, "source": source, "event_id": e.id, "received_at": now} for e in events]
        async with self._store.transaction() as conn:
            try:
                async with conn.begin_nested():
                    await conn.execute(insert(signed_event_ids), ids)
            except IntegrityError:
                replayed = await self._seen(conn, source, [e.id for e in events])
                raise ReplayedMetricEvent(source, replayed) from None
            return [
                await self.plans.record_reading(
                    metric.id, event.value, at=event.at, source=f"event:{source}", actor=f"source:{source}", conn=conn
                )
                for metric, event in resolved
            ]

    async def _seen(self, conn: AsyncConnection, source: str, event_ids: Sequence[str]) -> list[str]:
        query = select(signed_event_ids.c.event_id).where(
            signed_event_ids.c.tenant_id == self.tenant_id,
            signed_event_ids.c.source == source,
            signed_event_ids.c.event_id.in_(event_ids),
        )
        return sorted((await conn.execute(query)).scalars())


async def purge_event_ids(store: Store, at: datetime) -> int:
    """Forget the ids of signed metric events once an event with that id could no longer pass the freshness check
    (the scheduler's hourly housekeeping); returns how many."""
    async with store.transaction() as conn:
        result = await conn.execute(delete(signed_event_ids).where(signed_event_ids.c.received_at < at - 2 * SKEW))
    return int(result.rowcount or 0)


@dataclass(frozen=True, kw_only=True)
class MetricFeed:
    id: int
    tenant_id: str
    metric_id: int
    adapter: str
    capability: str
    input: dict[str, Any]
    field: str
    unit: str
    every_minutes: int
    last_pulled_at: datetime | None = None
    last_error: str | None = None


def _feed(row: Row[Any]) -> MetricFeed:
    return MetricFeed(
        id=row.id,
        tenant_id=row.tenant_id,
        metric_id=row.metric_id,
        adapter=row.adapter,
        capability=row.capability,
        input=dict(row.input),
        field=row.field,
        unit=row.unit,
        every_minutes=row.every_minutes,
        last_pulled_at=row.last_pulled_at,
        last_error=row.last_error,
    )


def _field(data: Mapping[str, Any], path: str) -> float:
    """The number at a dotted path of the agent's data (`totals.sqls`). Raises InvalidValue."""
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise InvalidValue("feed field", path, f"a field of the agent's data; it has {sorted(data)}")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float) or not math.isfinite(node):
        raise InvalidValue(f"field {path}", node, "a finite number")
    return float(node)


class MetricFeeds:
    """A tenant's metric feeds."""

    def __init__(self, store: Store, tenant_id: str) -> None:
        self._store = store
        self.tenant_id = tenant_id
        self.plans = Plans(store, tenant_id)

    async def add(
        self,
        metric: Metric,
        *,
        adapter: str,
        capability: str,
        field: str,
        unit: str,
        input: Mapping[str, Any] | None = None,
        every_minutes: int = 60,
        actor: str,
    ) -> MetricFeed:
        """Pull `metric` from `adapter`'s `capability` every `every_minutes`. Raises InvalidValue or UnitMismatch."""
        check_unit(metric, unit)
        if every_minutes < MIN_EVERY_MINUTES:
            raise InvalidValue("every", every_minutes, f"at least {MIN_EVERY_MINUTES} minutes")
        for name, value in (("adapter", adapter), ("capability", capability), ("field", field)):
            if not value.strip():
                raise InvalidValue(name, value, f"the {name} to read the metric from")
        now = self._store.clock()
        try:
            async with self._store.transaction() as conn:
                row = (
                    await conn.execute(
                        insert(metric_feeds)
                        .values(
                            tenant_id=self.tenant_id,
                            metric_id=metric.id,
                            adapter=adapter.strip().lower(),
                            capability=capability.strip(),
                            input=dict(input or {}),
                            field=field.strip(),
                            unit=unit.strip(),
                            every_minutes=every_minutes,
                            created_by=actor,
                            created_at=now,
                        )
                        .returning(metric_feeds)
                    )
                ).one()
                feed = _feed(row)
                await event_log.record(
                    conn,
                    tenant_id=self.tenant_id,
                    at=now,
                    actor=actor,
                    kind="metric_feed.created",
                    subject_type="metric_feed",
                    subject_id=feed.id,
                    before=None,
                    after={"metric": metric.id, "adapter": feed.adapter, "capability": feed.capability},
                )
        except IntegrityError:
            raise InvalidValue(
                "feed", f"{adapter} {capability}", f"a feed not yet set up for {metric.name} (remove the old one)"
            ) from None
        return feed

    async def list_feeds(self) -> list[MetricFeed]:
        query = select(metric_feeds).where(metric_feeds.c.tenant_id == self.tenant_id).order_by(metric_feeds.c.id)
        async with self._store.engine.connect() as conn:
            return [_feed(r) for r in (await conn.execute(query)).all()]

    async def remove(self, feed_id: int, *, actor: str) -> None:
        """Raises FeedNotFound."""
        async with self._store.transaction() as conn:
            result = await conn.execute(
                delete(metric_feeds).where(metric_feeds.c.id == feed_id, metric_feeds.c.tenant_id == self.tenant_id)
            )
            if result.rowcount != 1:
                raise FeedNotFound(feed_id)
            await event_log.record(
                conn,
                tenant_id=self.tenant_id,
                at=self._store.clock(),
                actor=actor,
                kind="metric_feed.removed",
                subject_type="metric_feed",
                subject_id=feed_id,
                before=None,
                after=None,
            )

    async def pull(self, feed: MetricFeed, open_agent: Callable[[], Awaitable[GatedAgent]]) -> MetricReading:
        """Ask the agent once, through its gate and circuit breaker, and store the reading.

        Raises PulledAgainstPolicy (the gate refused it), AgentError (`CircuitOpen` while the agent is left alone),
        InvalidValue or PlannerError; the feed keeps the error either way, and is not pulled again before its next
        turn.
        """
        now = self._store.clock()
        error: str | None = None
        request = DelegationRequest(
            capability=feed.capability,
            input=dict(feed.input),
            timeout_seconds=PULL_TIMEOUT_SECONDS,
            requested_by="bot",
            subject=f"metric:{feed.metric_id}",
        )
        try:
            agent = await open_agent()
            try:
                result = await agent.delegate(request)
            except (DelegationStopped, DelegationHeld) as refused:
                raise PulledAgainstPolicy(feed, refused.reason) from None
            finally:
                await agent.close()
            if result.status is not DelegationStatus.SUCCEEDED or result.data is None:
                raise InvalidValue("feed answer", result.error or result.status.value, "data with the metric's field")
            value = _field(result.data, feed.field)
            stamp = result.data.get("as_of") or result.data.get("at")
            at = now
            if isinstance(stamp, str):
                problems: list[str] = []
                at = _time(stamp, "as_of", problems) or now
            # The unit was checked against the metric's when the feed was added.
            return await self.plans.record_reading(
                feed.metric_id, value, at=at, source=f"adapter:{feed.adapter}", actor=f"agent:{feed.adapter}"
            )
        except (AgentError, PlannerError) as failure:
            error = str(failure)[:1000]
            raise
        finally:
            async with self._store.transaction() as conn:
                await conn.execute(
                    update(metric_feeds)
                    .where(metric_feeds.c.id == feed.id)
                    .values(last_pulled_at=now, last_error=error)
                )


async def due_feeds(store: Store, at: datetime) -> list[MetricFeed]:
    """Every tenant's feeds whose turn has come (never pulled, or pulled `every_minutes` ago or more)."""
    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(metric_feeds)
                .where(or_(metric_feeds.c.last_pulled_at.is_(None), metric_feeds.c.last_pulled_at <= at))
                .order_by(metric_feeds.c.id)
            )
        ).all()
    feeds = [_feed(r) for r in rows]
    return [f for f in feeds if f.last_pulled_at is None or f.last_pulled_at + timedelta(minutes=f.every_minutes) <= at]


OpenAgent = Callable[[str, str], Awaitable[GatedAgent]]
"""Opens the agent `name` of tenant `tenant_id` (the bot's registry: a gated agent)."""


async def pull_due(store: Store, open_agent: OpenAgent, at: datetime) -> tuple[int, int]:
    """Pull every due feed once; a feed that fails keeps its error and waits for its next turn.

    Returns (readings stored, feeds failed).
    """
    stored = failed = 0
    for feed in await due_feeds(store, at):
        try:
            await MetricFeeds(store, feed.tenant_id).pull(feed, partial(open_agent, feed.tenant_id, feed.adapter))
        except (AgentError, PlannerError):
            failed += 1
        else:
            stored += 1
    return stored, failed
