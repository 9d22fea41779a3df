"""The sender: drains the outbox to Teams, within Teams' rate limits, retrying what Teams asks to retry.

Each claimed message goes to the recipient's personal chat with the bot (the conversation stored when they
last wrote). Messages are sent side by side, a bounded number at once, so fanning out to many people reaches
the tenant's ceiling (50 a second); one person's messages still go one after another, in order.
What Teams throttles (429) or fails to take for now (412, 5xx, no connection) is retried with exponential backoff
and jitter, honouring Retry-After; after the last attempt, or when Teams refuses it (another 4xx), the message goes
to the dead letters.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import timedelta

from bot.addressing import Undeliverable, address
from bot.nudges import HeldForApproval, compose, hold_for_approval
from bot.prefetch import Prefetch
from bot.ratelimit import PER_CONVERSATION, PER_TENANT, SlidingWindowLimiter, paced
from bot.teams.channel import Rejected, TeamsChannel, TeamsError, Throttled, TransientFailure
from planner.domain.messages import Envelope
from planner.ports import Recommender
from planner.services.tenants import Tenants
from planner.store import Store

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
BASE_BACKOFF_SECONDS = 2.0
CONCURRENCY = 16
"""Messages in flight at once: enough to reach Teams' 50 a second per tenant over a slow round trip."""
LEASE = timedelta(minutes=2)
"""How long a claimed batch is this sender's before another may take it over (it must be sent by then)."""
LEASE_MARGIN = timedelta(seconds=15)
"""A message is not sent with less of its lease left than this: another sender could be taking it over."""
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

    def __add__(self, other: Delivery) -> Delivery:
        return Delivery(
            sent=self.sent + other.sent,
            skipped=self.skipped + other.skipped,
            retried=self.retried + other.retried,
            dead=self.dead + other.dead,
            left=self.left + other.left,
            held=self.held + other.held,
        )

    def __bool__(self) -> bool:
        return bool(self.sent or self.skipped or self.retried or self.dead or self.left)


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
    ) -> None:
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

        async def drain(queue: list[Envelope]) -> None:
            for envelope in queue:
                async with in_flight:
                    await self._deliver_one(envelope, report, prefetch)

        try:
            outcomes = await asyncio.gather(*(drain(queue) for queue in queues.values()), return_exceptions=True)
        finally:
            prefetch.close()
        errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        for error in errors[1:]:
            logger.error("delivery failed too", exc_info=error)
        if errors:
            raise errors[0]
        return report

    async def _deliver_one(self, envelope: Envelope, report: Delivery, prefetch: Prefetch | None = None) -> None:
        try:
            message = await compose(self.tenants, envelope, prefetch, recommender=self.recommender)
            if message is None:
                await self.outbox.sent(envelope, self.worker)
                report.skipped += 1
                return
            to = await address(self.tenants, envelope, channel=self.channel, prefetch=prefetch)
            message = replace(message, channel_data={**message.channel_data, OUTBOX_ID: envelope.id})
            async with paced((self._tenants, envelope.tenant_id), (self._conversations, to.conversation_id)):
                if self.store.clock() > envelope.lease_until - LEASE_MARGIN:
                    # Waiting for its turn took most of the lease: sending now could race whoever takes it over.
                    logger.warning(
                        "message %s left unsent: its lease runs out at %s", envelope.id, envelope.lease_until
                    )
                    report.left += 1
                    return
                await self.channel.send(to, message)
        except HeldForApproval as held:
            if await self.outbox.hold(envelope, self.worker, reason=str(held)):
                await hold_for_approval(self.tenants, envelope, held)
            report.held += 1
        except Undeliverable as error:
            await self.outbox.dead(envelope, self.worker, error=str(error))
            report.dead += 1
        except Throttled as error:
            await self._failed(envelope, report, error, retry_after=error.retry_after)
        except (TransientFailure, Rejected) as error:
            await self._failed(envelope, report, error, retry_after=None)
        else:
            await self.outbox.sent(envelope, self.worker)
            report.sent += 1

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
