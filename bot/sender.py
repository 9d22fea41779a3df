"""The sender: drains the outbox to Teams, within Teams' rate limits, retrying what Teams asks to retry.

Each claimed message goes to the recipient's personal chat with the bot (the conversation stored when they
last wrote). 429, 412, 502 and 504 are retried with exponential backoff and jitter, honouring Retry-After;
after the last attempt, or on any other refusal, the message goes to the dead letters.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from botbuilder.core import BotAdapter, TurnContext
from msrest.exceptions import ClientRequestError, HttpOperationError

from bot.addressing import Undeliverable, address
from bot.nudges import compose
from bot.ratelimit import PER_CONVERSATION, PER_TENANT, SlidingWindowLimiter
from planner.outbox import Envelope, Outbox
from planner.store import Store

logger = logging.getLogger(__name__)
RETRYABLE = {412, 429, 502, 504}
MAX_ATTEMPTS = 5
BASE_BACKOFF_SECONDS = 2.0


@dataclass
class Delivery:
    sent: int = 0
    skipped: int = 0
    retried: int = 0
    dead: int = 0

    def __add__(self, other: Delivery) -> Delivery:
        return Delivery(
            sent=self.sent + other.sent,
            skipped=self.skipped + other.skipped,
            retried=self.retried + other.retried,
            dead=self.dead + other.dead,
        )

    def __bool__(self) -> bool:
        return bool(self.sent or self.skipped or self.retried or self.dead)


class Sender:
    def __init__(
        self,
        store: Store,
        adapter: BotAdapter,
        *,
        app_id: str | None,
        worker: str,
        max_attempts: int = MAX_ATTEMPTS,
        jitter: random.Random | None = None,
    ) -> None:
        self.store = store
        self.outbox = Outbox(store)
        self.adapter = adapter
        self.app_id = app_id
        self.worker = worker
        self.max_attempts = max_attempts
        self._jitter = jitter or random.Random()
        self._conversations = SlidingWindowLimiter(PER_CONVERSATION)
        self._tenants = SlidingWindowLimiter(PER_TENANT)

    async def deliver(self, limit: int = 50) -> Delivery:
        """Claim and send one batch of due messages."""
        report = Delivery()
        for envelope in await self.outbox.claim(self.worker, limit=limit):
            await self._deliver_one(envelope, report)
        return report

    async def _deliver_one(self, envelope: Envelope, report: Delivery) -> None:
        try:
            activity = await compose(self.store, envelope)
            if activity is None:
                await self.outbox.sent(envelope, self.worker)
                report.skipped += 1
                return
            reference = await address(self.store, envelope)
            await self._tenants.acquire(envelope.tenant_id)
            await self._conversations.acquire(reference.conversation.id)

            failure: list[Exception] = []

            async def send(turn_context: TurnContext) -> None:
                # Caught here, not by the adapter's turn error handler: that one would apologise to the user.
                try:
                    await turn_context.send_activity(activity)
                except (HttpOperationError, ClientRequestError) as error:
                    failure.append(error)

            await self.adapter.continue_conversation(reference, send, self.app_id)
            if failure:
                raise failure[0]
        except Undeliverable as error:
            await self.outbox.dead(envelope, self.worker, error=str(error))
            report.dead += 1
        except HttpOperationError as error:
            await self._failed(envelope, report, error.response.status_code, _retry_after(error), repr(error))
        except ClientRequestError as error:
            await self._failed(envelope, report, 502, None, f"connection failed: {error}")
        else:
            await self.outbox.sent(envelope, self.worker)
            report.sent += 1

    async def _failed(
        self, envelope: Envelope, report: Delivery, status: int, retry_after: float | None, error: str
    ) -> None:
        if status in RETRYABLE and envelope.attempts < self.max_attempts:
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


def _retry_after(error: HttpOperationError) -> float | None:
    value = error.response.headers.get("Retry-After") if error.response is not None else None
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None
