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
  one, else by the pull, and its source is `adapter:<name>`. A spend feed (`spend`) reads a plan's spend to date
  from a metric in its budget's currency: each answer is the metric's reading, and what the total rose by since the
  feed's last answer is recorded as spend on the metric's plan (source `feed:<id>`), so an answer given twice is
  spent once.

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

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date, datetime
from functools import partial
from typing import Any

from planner.domain.budgets import currency_of, minor_units
from planner.domain.context import SKEW, ReplayedContextEvent, StaleContextEvent
from planner.domain.delegations import DelegationStatus
from planner.domain.errors import Expected, Field, InvalidValue, PlannerError
from planner.domain.ingestion import MetricEvent, MetricFeed, check_feed, check_unit, field_value, is_due
from planner.domain.model import Metric, MetricReading
from planner.domain.problems import Problem, parse_time
from planner.governance.gated_agent import DelegationHeld, DelegationStopped, GatedAgent
from planner.ports import AgentError, DelegationRequest, Explain
from planner.services.budgets import Budgets
from planner.services.plans import Plans
from planner.store import Store
from planner.store import budgets as budget_rows
from planner.store import events as event_log
from planner.store import feeds as feeds_store

PULL_TIMEOUT_SECONDS = 30.0


class StaleMetricEvent(StaleContextEvent):
    """Events whose `sent_at` is too far from the bot's clock to be told apart from a replay."""

    def __init__(self, event_ids: Sequence[str], now: datetime) -> None:
        super().__init__(event_ids, now, sent="sent_at")


class ReplayedMetricEvent(ReplayedContextEvent):
    """An event id this source posted before: nothing of the post is stored."""


class PulledAgainstPolicy(PlannerError, PermissionError):
    """The policy gate refused a pull (`refusal`: how it stopped or held it)."""

    def __init__(self, feed: MetricFeed, refusal: DelegationStopped | DelegationHeld) -> None:
        self.adapter = feed.adapter
        self.capability = feed.capability
        self.refusal = refusal
        super().__init__(f"policy stops the bot calling {feed.adapter} {feed.capability} on its own: {refusal}")


class FeedNotFound(PlannerError, LookupError):
    def __init__(self, feed_id: int) -> None:
        self.feed_id = feed_id
        super().__init__(f"metric feed {feed_id} not found")


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
            metric = await self.plans.find_metric(event.metric, plan_id=event.plan, on=event.at.date())
            check_unit(metric, event.unit)
            resolved.append((metric, event))
        event_ids = [e.id for e in events]
        async with self._store.transaction() as conn:
            if not await feeds_store.remember_event_ids(conn, self.tenant_id, source, event_ids, received_at=now):
                replayed = await feeds_store.seen_event_ids(conn, self.tenant_id, source, event_ids)
                raise ReplayedMetricEvent(source, replayed)
            return [
                await self.plans.record_reading(
                    metric.id, event.value, at=event.at, source=f"event:{source}", actor=f"source:{source}", conn=conn
                )
                for metric, event in resolved
            ]


async def purge_event_ids(store: Store, at: datetime) -> int:
    """Forget the ids of signed metric events once an event with that id could no longer pass the freshness check
    (the scheduler's hourly housekeeping); returns how many."""
    async with store.transaction() as conn:
        return await feeds_store.forget_event_ids(conn, at - 2 * SKEW)


class MetricFeeds:
    """A tenant's metric feeds."""

    def __init__(self, store: Store, tenant_id: str, *, explain: Explain = str) -> None:
        self._store = store
        self.tenant_id = tenant_id
        self.plans = Plans(store, tenant_id)
        self._explain = explain

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
        spend: bool = False,
        actor: str,
    ) -> MetricFeed:
        """Pull `metric` from `adapter`'s `capability` every `every_minutes`; with `spend`, the figure is the metric's
        plan's spend to date, in its budget's currency (the metric's unit). Raises InvalidValue or UnitMismatch."""
        check_feed(metric, adapter=adapter, capability=capability, field=field, unit=unit, every_minutes=every_minutes)
        now = self._store.clock()
        async with self._store.transaction() as conn:
            feed = await feeds_store.add_feed(
                conn,
                self.tenant_id,
                metric_id=metric.id,
                adapter=adapter.strip().lower(),
                capability=capability.strip(),
                input=dict(input or {}),
                field=field.strip(),
                unit=unit.strip(),
                every_minutes=every_minutes,
                spend=spend,
                created_by=actor,
                created_at=now,
            )
            if feed is None:
                raise InvalidValue(Field.FEED, f"{adapter} {capability}", Expected.NEW_FEED, metric=metric.name)
            await event_log.record(
                conn,
                tenant_id=self.tenant_id,
                at=now,
                actor=actor,
                kind="metric_feed.created",
                subject_type="metric_feed",
                subject_id=feed.id,
                before=None,
                after={
                    "metric": metric.id,
                    "adapter": feed.adapter,
                    "capability": feed.capability,
                    "spend": feed.spend,
                },
            )
        return feed

    async def list_feeds(self) -> list[MetricFeed]:
        async with self._store.read() as conn:
            return await feeds_store.feeds_of(conn, self.tenant_id)

    async def remove(self, feed_id: int, *, actor: str) -> None:
        """Raises FeedNotFound."""
        async with self._store.transaction() as conn:
            if not await feeds_store.remove_feed(conn, self.tenant_id, feed_id):
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
                raise PulledAgainstPolicy(feed, refused) from None
            finally:
                await agent.close()
            if result.status is not DelegationStatus.SUCCEEDED or result.data is None:
                raise InvalidValue(Field.FEED_ANSWER, result.error or result.status.value, Expected.FEED_ANSWER)
            value = field_value(result.data, feed.field)
            stamp = result.data.get("as_of") or result.data.get("at")
            at = now
            if isinstance(stamp, str):
                problems: list[Problem] = []
                at = parse_time(stamp, "as_of", problems) or now
            if feed.spend:
                return await self._spend_to_date(feed, value, at=at, today=now.date())
            # The unit was checked against the metric's when the feed was added.
            return await self.plans.record_reading(
                feed.metric_id, value, at=at, source=f"adapter:{feed.adapter}", actor=f"agent:{feed.adapter}"
            )
        except (AgentError, PlannerError) as failure:
            error = self._explain(failure)[:1000]
            raise
        finally:
            async with self._store.transaction() as conn:
                await feeds_store.mark_pulled(conn, feed.id, at=now, error=error)

    async def _spend_to_date(self, feed: MetricFeed, value: float, *, at: datetime, today: date) -> MetricReading:
        """A spend feed's answer: the reading, and what the plan's spend to date rose by since this feed's last
        answer as spend on the day of the figure, in one transaction (an answer repeated records no spend twice).
        Raises InvalidValue (a total lower than this feed recorded before, a day outside the plan's window), NoBudget
        or CurrencyMismatch (the metric's unit is not the budget's currency)."""
        metric = await self.plans.get_metric(feed.metric_id)
        source = f"feed:{feed.id}"
        total = minor_units(value)
        actor = f"agent:{feed.adapter}"
        async with self._store.transaction() as conn:
            recorded = await budget_rows.spent_from(conn, self.tenant_id, metric.plan_id, source)
            if total < recorded:
                raise InvalidValue(
                    Field.SPEND_TO_DATE,
                    value,
                    Expected.NO_LESS_THAN_RECORDED,
                    path=feed.field,
                    recorded=recorded / 100,
                )
            if total > recorded:
                currency = currency_of(metric.unit) if metric.unit.strip() else None
                await Budgets(self._store, self.tenant_id).record_spend(
                    metric.plan_id,
                    total - recorded,
                    currency,
                    spent_on=at.date(),
                    today=today,
                    source=source,
                    actor=actor,
                    conn=conn,
                )
            return await self.plans.record_reading(
                feed.metric_id, value, at=at, source=f"adapter:{feed.adapter}", actor=actor, conn=conn
            )


async def due_feeds(store: Store, at: datetime) -> list[MetricFeed]:
    """Every tenant's feeds whose turn has come (never pulled, or pulled `every_minutes` ago or more)."""
    async with store.read() as conn:
        candidates = await feeds_store.feeds_pulled_by(conn, at)
    return [feed for feed in candidates if is_due(feed, at)]


OpenAgent = Callable[[str, str], Awaitable[GatedAgent]]
"""Opens the agent `name` of tenant `tenant_id` (the bot's registry: a gated agent)."""


async def pull_due(store: Store, open_agent: OpenAgent, at: datetime, *, explain: Explain = str) -> tuple[int, int]:
    """Pull every due feed once; a feed that fails keeps its error and waits for its next turn.

    Returns (readings stored, feeds failed).
    """
    stored = failed = 0
    for feed in await due_feeds(store, at):
        try:
            feeds = MetricFeeds(store, feed.tenant_id, explain=explain)
            await feeds.pull(feed, partial(open_agent, feed.tenant_id, feed.adapter))
        except (AgentError, PlannerError):
            failed += 1
        else:
            stored += 1
    return stored, failed
