"""The sender: drains the outbox to Teams, within Teams' rate limits, retrying what Teams asks to retry.

Each claimed message goes to the recipient's personal chat with the bot (the conversation stored when they
last wrote). Messages are sent side by side, a bounded number at once, so fanning out to many people reaches
the tenant's ceiling (50 a second); one person's messages still go one after another, in order.
What Teams throttles (429) or fails to take for now (412, 5xx, no connection) is retried with exponential backoff
and jitter, honouring Retry-After; after the last attempt, or when Teams refuses it (another 4xx), the message goes
to the dead letters.

A person receives at most their daily budget of messages (the tenant's `budget` setting), counting every kind:
what one delivery pass has for them beyond one message arrives as one summary card, and once their day is full
the rest waits for their next morning. What someone is waiting for (an agent's question, an approval) always goes.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from bot.addressing import Undeliverable, address, address_of
from bot.artifacts import ArtifactLinks
from bot.cards.summary import summary_card
from bot.nudges import HeldForApproval, compose, hold_for_approval
from bot.prefetch import Prefetch
from bot.ratelimit import PER_CONVERSATION, PER_TENANT, SlidingWindowLimiter, paced
from bot.teams.channel import (
    Address,
    Outgoing,
    Posted,
    Rejected,
    TeamsChannel,
    TeamsError,
    Throttled,
    TransientFailure,
)
from bot.text.messages import KIND_LABELS
from planner.domain.messages import WAITED_FOR, Envelope, MessageKind
from planner.domain.people import Person
from planner.domain.triggers import Pace, TriggerRules, day_start, next_morning, pace
from planner.ports import Recommender
from planner.services.oauth import keep_sign_in_card
from planner.services.tenants import Tenants
from planner.services.trigger_rules import TenantTriggerRules
from planner.services.triggers import CONVERSATION
from planner.store import Store

logger = logging.getLogger(__name__)

_MAY_UPDATE_A_CARD = frozenset(
    {
        MessageKind.DELEGATION_RESULT,
        MessageKind.DELEGATION_DEFERRED,
        MessageKind.DELEGATION_HELD,
        MessageKind.DELEGATION_UNKNOWN,
    }
)
"""Kinds whose message may update the card a person follows a delegation in (`bot.progress`): on a day whose budget is
spent, such an update still goes (it changes a card they have; it is not a new message), the rest waits."""
MAX_ATTEMPTS = 5
BASE_BACKOFF_SECONDS = 2.0
CONCURRENCY = 16
"""Messages in flight at once: enough to reach Teams' 50 a second per tenant over a slow round trip."""
LEASE = timedelta(minutes=2)
"""How long a claimed batch is this sender's before another may take it over (it must be sent by then)."""
LEASE_MARGIN = timedelta(seconds=15)
"""A message is not sent with less of its lease left than this: another sender could be taking it over."""
UPDATE_SECONDS = 10.0
"""How long Teams may take to update a message in place before the message is sent anew instead."""
OUTBOX_ID = "cosOutboxId"
"""The key of a message's outbox id in its channelData, which Teams passes over: a message sent twice can be told
from two messages alike, in the connector's logs and by the tests' fake Teams."""


@dataclass
class Delivery:
    sent: int = 0
    skipped: int = 0
    retried: int = 0
    dead: int = 0
    left: int = 0
    """Claimed but not sent: the lease was about to run out (another sender may take them over)."""
    held: int = 0
    """Flagged by a policy: waiting for a person's approval."""
    folded: int = 0
    """Delivered inside a summary card with others (the card itself counts as sent)."""
    put_off: int = 0
    """Waiting for the recipient's next morning: their day's budget was spent."""

    def __add__(self, other: Delivery) -> Delivery:
        return Delivery(
            folded=self.folded + other.folded,
            put_off=self.put_off + other.put_off,
            sent=self.sent + other.sent,
            skipped=self.skipped + other.skipped,
            retried=self.retried + other.retried,
            dead=self.dead + other.dead,
            left=self.left + other.left,
            held=self.held + other.held,
        )

    def __bool__(self) -> bool:
        # A held message queues its approval card: the tick's next pass sends it, rather than the tick after.
        return bool(self.sent or self.skipped or self.retried or self.dead or self.left or self.put_off or self.held)


@dataclass(frozen=True)
class Day:
    """Where a person's day stands when a delivery pass begins."""

    delivered: int
    """Messages they were sent since their day began (a summary card counts once)."""
    budget: int
    next_morning: datetime
    """When what does not fit today goes: their next day, after their quiet hours."""


def _first_card(message: Outgoing) -> Mapping[str, Any] | None:
    return message.cards[0] if message.cards else None


class Sender:
    """Sends claimed messages side by side, up to `concurrency` at once, within Teams' limits."""

    def __init__(
        self,
        store: Store,
        channel: TeamsChannel,
        *,
        worker: str,
        max_attempts: int = MAX_ATTEMPTS,
        jitter: random.Random | None = None,
        concurrency: int = CONCURRENCY,
        lease: timedelta = LEASE,
        recommender: Recommender | None = None,
        tenants: Tenants | None = None,
        artifact_links: ArtifactLinks | None = None,
        update_seconds: float = UPDATE_SECONDS,
    ) -> None:
        """`artifact_links`: how a result card links to the files kept with a delegation (no links when None);
        `update_seconds`: how long an update in place may take before the message is sent anew."""
        self.artifact_links = artifact_links
        self.update_seconds = update_seconds
        if concurrency < 1:
            raise ValueError(f"concurrency={concurrency} must be at least 1 (messages in flight at once)")
        self.store = store
        self.tenants = tenants or Tenants(store)
        """Each tenant's services (the composition root's; a sender made alone makes its own)."""
        self.outbox = self.tenants.outbox
        self.channel = channel
        self.worker = worker
        self.max_attempts = max_attempts
        self.concurrency = concurrency
        self.lease = lease
        self.recommender = recommender
        """Who writes the digest's recommendations (Claude when a key is set); None: the rules."""
        self._jitter = jitter or random.Random()
        # Kept for the sender's lifetime: Teams' windows run across batches (60 per 30 s per conversation).
        self._conversations = SlidingWindowLimiter(PER_CONVERSATION)
        self._tenants = SlidingWindowLimiter(PER_TENANT)

    async def send_now(self, tenant_id: str, recipient: str, message: Outgoing) -> tuple[Address, str | None]:
        """Send `message` to `recipient` at once, outside the outbox (a card that is then updated in place), within
        Teams' limits like the rest; where it went and the new activity's id.

        Raises Undeliverable, Throttled, TransientFailure or Rejected (it is not sent again).
        """
        to = await address_of(self.tenants, tenant_id, recipient, channel=self.channel)
        async with paced((self._tenants, tenant_id), (self._conversations, to.conversation_id)):
            return to, await self.channel.send(to, message)

    async def update_now(self, tenant_id: str, to: Address, activity_id: str, message: Outgoing) -> None:
        """Replace the message `activity_id` at `to` with `message`, within Teams' limits.

        Raises Throttled, TransientFailure or Rejected (it is not sent again).
        """
        async with paced((self._tenants, tenant_id), (self._conversations, to.conversation_id)):
            await self.channel.update(to, activity_id, message)

    async def deliver(self, limit: int = 50) -> Delivery:
        """Claim and send one batch of due messages; the batch is finished when this returns.

        Raises the first unexpected error of the batch, after every other message of it has been finished.
        """
        report = Delivery()
        envelopes = await self.outbox.claim(self.worker, limit=limit, lease=self.lease)
        prefetch = Prefetch(self.tenants, envelopes)
        # One recipient's messages go one after another, in the order they fell due; recipients go side by side.
        queues: dict[tuple[str, str], list[Envelope]] = defaultdict(list)
        for envelope in envelopes:
            queues[envelope.tenant_id, envelope.recipient].append(envelope)
        # Held until the message is finished in the outbox, so at most `concurrency` are sent and not yet
        # recorded: the duplicates a crash can cause.
        in_flight = asyncio.Semaphore(self.concurrency)

        async def drain(queue: list[Envelope], day: Day | None) -> None:
            foldable = [] if day is None else [e for e in queue if e.kind not in WAITED_FOR]
            for envelope in queue:
                if envelope not in foldable:
                    async with in_flight:
                        await self._deliver_one(envelope, report, prefetch)
            if foldable and day is not None:
                async with in_flight:
                    await self._deliver_paced(foldable, day, report, prefetch)

        try:
            days = await self._days(queues, prefetch)
            outcomes = await asyncio.gather(
                *(drain(queue, days.get(key)) for key, queue in queues.items()), return_exceptions=True
            )
        finally:
            prefetch.close()
        errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        for error in errors[1:]:
            logger.error("delivery failed too", exc_info=error)
        if errors:
            raise errors[0]
        return report

    async def _days(
        self, queues: Mapping[tuple[str, str], list[Envelope]], prefetch: Prefetch
    ) -> dict[tuple[str, str], Day]:
        """Where each person's day stands: what they were sent since it began, their budget, their next morning.
        Conversations (a channel's weekly summary) have no budget and are left out."""
        people = [(tenant, r) for tenant, r in queues if not r.startswith(CONVERSATION)]
        if not people:
            return {}
        now = self.store.clock()
        rules = await TenantTriggerRules(self.store).all()
        delivered = await self.outbox.delivered_since(people, now - timedelta(days=1, hours=14))
        days: dict[tuple[str, str], Day] = {}
        for tenant_id, recipient in people:
            tenant_rules = rules.get(tenant_id) or TriggerRules()
            person = await self._person(queues[tenant_id, recipient][0], prefetch)
            zone = person.time_zone if person is not None else None
            start = day_start(now, zone, tenant_rules)
            days[tenant_id, recipient] = Day(
                delivered=sum(1 for at in delivered.get((tenant_id, recipient), ()) if at >= start),
                budget=tenant_rules.daily_budget,
                next_morning=next_morning(now, zone, tenant_rules),
            )
        return days

    async def _person(self, envelope: Envelope, prefetch: Prefetch) -> Person | None:
        """The recipient of `envelope`, as read for its chunk of the batch."""
        key = (envelope.tenant_id, envelope.recipient)
        facts = await prefetch.facts(envelope)
        if facts is not None and key in facts.people:
            return facts.people[key]
        return await self.tenants(envelope.tenant_id).directory.person(envelope.recipient)

    async def _deliver_paced(self, queue: list[Envelope], day: Day, report: Delivery, prefetch: Prefetch) -> None:
        """One person's foldable messages of this pass: each, as one summary card, or on their next morning."""
        how = pace(len(queue), day.delivered, day.budget)
        if how is Pace.TOMORROW:
            for envelope in queue:
                if envelope.kind in _MAY_UPDATE_A_CARD:  # the end of what they follow in a card: not a new message
                    message = await self._compose(envelope, report, prefetch)
                    if message is None:
                        continue
                    if message.updates is not None:
                        await self._send([envelope], message, report, prefetch)
                        continue
                if await self.outbox.put_off(envelope, self.worker, until=day.next_morning):
                    report.put_off += 1
            return
        written: list[tuple[Envelope, Outgoing]] = []
        for envelope in queue:
            message = await self._compose(envelope, report, prefetch)
            if message is None:
                continue
            if message.updates is not None:  # an update of a card they have: never folded into a summary
                await self._send([envelope], message, report, prefetch)
            else:
                written.append((envelope, message))
        if len(written) == 1 or how is Pace.EACH:
            for envelope, message in written:
                await self._send([envelope], message, report, prefetch)
        elif written:
            card = summary_card([(m.text or KIND_LABELS.get(e.kind, "An update"), _first_card(m)) for e, m in written])
            await self._send([e for e, _ in written], Outgoing(cards=(card,)), report, prefetch)

    async def _deliver_one(self, envelope: Envelope, report: Delivery, prefetch: Prefetch | None = None) -> None:
        message = await self._compose(envelope, report, prefetch)
        if message is not None:
            await self._send([envelope], message, report, prefetch)

    async def _compose(self, envelope: Envelope, report: Delivery, prefetch: Prefetch | None) -> Outgoing | None:
        """The message written, or None when it is finished already (no longer applies, held, undeliverable)."""
        try:
            message = await compose(
                self.tenants, envelope, prefetch, recommender=self.recommender, artifact_links=self.artifact_links
            )
        except HeldForApproval as held:
            if await self.outbox.hold(envelope, self.worker, reason=str(held)):
                await hold_for_approval(self.tenants, envelope, held)
            report.held += 1
            return None
        except Undeliverable as error:
            await self.outbox.dead(envelope, self.worker, error=str(error))
            report.dead += 1
            return None
        if message is None:
            await self.outbox.dropped(envelope, self.worker)
            report.skipped += 1
        return message

    async def _send(
        self, envelopes: list[Envelope], message: Outgoing, report: Delivery, prefetch: Prefetch | None
    ) -> None:
        """Send one activity carrying these messages (several: a summary card), and finish each in the outbox."""
        first = envelopes[0]
        try:
            to = await address(self.tenants, first, channel=self.channel, prefetch=prefetch)
            message = replace(message, channel_data={**message.channel_data, OUTBOX_ID: first.id})
            async with paced((self._tenants, first.tenant_id), (self._conversations, to.conversation_id)):
                lease_until = min(e.lease_until for e in envelopes)
                if self.store.clock() > lease_until - LEASE_MARGIN:
                    # Waiting for its turn took most of the lease: sending now could race whoever takes it over.
                    logger.warning("message %s left unsent: its lease runs out at %s", first.id, lease_until)
                    report.left += len(envelopes)
                    return
                activity_id = None
                if message.updates is None or not await self._updated(first, message):
                    activity_id = await self.channel.send(to, replace(message, updates=None))
        except Undeliverable as error:
            for envelope in envelopes:
                await self.outbox.dead(envelope, self.worker, error=str(error))
                report.dead += 1
        except Throttled as error:
            for envelope in envelopes:
                await self._failed(envelope, report, error, retry_after=error.retry_after)
        except (TransientFailure, Rejected) as error:
            for envelope in envelopes:
                await self._failed(envelope, report, error, retry_after=None)
        else:
            await self.outbox.sent(first, self.worker)
            report.sent += 1
            if activity_id and first.kind == MessageKind.SIGN_IN and not envelopes[1:]:
                await self._keep_sign_in_card(first, Posted(address=to, activity_id=activity_id))
            if envelopes[1:]:
                folded = await self.outbox.folded(envelopes[1:], self.worker)
                report.folded += len(folded)  # added after the wait: other recipients' drains add to it meanwhile

    async def _keep_sign_in_card(self, envelope: Envelope, posted: Posted) -> None:
        """Keep where a sign-in card lies with its sign-in, which updates it in place once it ends. Never raises: the
        card is sent; without its place kept, how the sign-in ended goes as a message of its own."""
        sign_in = envelope.payload.get("sign_in")
        if not isinstance(sign_in, int):
            return
        try:
            await keep_sign_in_card(self.store, envelope.tenant_id, sign_in, posted.stored())
        except Exception:
            logger.exception("where the sign-in card of message %s lies could not be kept", envelope.id)

    async def _updated(self, envelope: Envelope, message: Outgoing) -> bool:
        """Send `message` as the update of the message it updates; False when Teams refuses (the message was deleted,
        or cannot be updated any more) or does not answer within `update_seconds`: then it goes as a new one, so
        nothing is lost.

        Raises Throttled or TransientFailure (the update is tried again with the message).
        """
        assert message.updates is not None
        try:
            async with asyncio.timeout(self.update_seconds):
                await self.channel.update(message.updates.address, message.updates.activity_id, message)
        except Rejected as error:
            logger.warning("message %s is sent anew: Teams refused the update (%s)", envelope.id, error)
            return False
        except TimeoutError:
            logger.warning("message %s is sent anew: Teams did not update in %ss", envelope.id, self.update_seconds)
            return False
        return True

    async def _failed(
        self, envelope: Envelope, report: Delivery, error: TeamsError, *, retry_after: float | None
    ) -> None:
        status = error.status if error.status is not None else "no answer"
        if not isinstance(error, Rejected) and envelope.attempts < self.max_attempts:
            backoff = retry_after if retry_after is not None else self._backoff(envelope.attempts)
            at = self.store.clock() + timedelta(seconds=backoff)
            await self.outbox.retry_later(envelope, self.worker, at=at, error=f"{status}: {error}")
            report.retried += 1
        else:
            logger.warning("message %s is undeliverable after %s attempts (%s)", envelope.id, envelope.attempts, status)
            await self.outbox.dead(envelope, self.worker, error=f"{status}: {error}")
            report.dead += 1

    def _backoff(self, attempts: int) -> float:
        """Exponential backoff with full jitter: up to 2, 4, 8… seconds."""
        return self._jitter.uniform(0, BASE_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0))
