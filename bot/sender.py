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
from typing import Any

from botbuilder.core import BotAdapter, MessageFactory, TurnContext
from botbuilder.schema import Attachment, ConversationReference
from msrest.exceptions import ClientRequestError, HttpOperationError

from bot.cards import ADAPTIVE_CARD_CONTENT_TYPE, task_card
from bot.ratelimit import PER_CONVERSATION, PER_TENANT, SlidingWindowLimiter
from planner.directory import Directory
from planner.errors import TaskNotFound
from planner.outbox import Envelope, Outbox
from planner.store import Store
from planner.triggers import DEADLINE_APPROACHING, DEADLINE_SLIPPED, ESCALATION

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


class Undeliverable(Exception):
    """A message that no retry can deliver (nobody to send it to)."""


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
            activity = await self._compose(envelope)
            if activity is None:
                await self.outbox.sent(envelope, self.worker)
                report.skipped += 1
                return
            reference = await self._reference(envelope)
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

    async def _reference(self, envelope: Envelope) -> ConversationReference:
        directory = Directory(self.store, envelope.tenant_id)
        chats = await directory.conversations(kind="personal", user_id=envelope.recipient)
        if not chats:
            raise Undeliverable(f"{envelope.recipient} has no chat with the bot yet")
        return ConversationReference().deserialize(chats[0].address)

    async def _compose(self, envelope: Envelope) -> Any | None:
        """The message to send, or None when it no longer applies (the task was done meanwhile)."""
        if envelope.kind not in (DEADLINE_APPROACHING, DEADLINE_SLIPPED, ESCALATION):
            raise Undeliverable(f"no way to write a {envelope.kind!r} message")
        tenant = self.store.tenant(envelope.tenant_id)
        try:
            task = await tenant.get_task(int(envelope.payload["task"]))
        except TaskNotFound:
            return None
        if not task.status.is_open:
            return None
        plan = await tenant.get_plan(task.plan_id)
        today = self.store.clock().date()
        if envelope.kind == ESCALATION:
            owner = (await Directory(self.store, envelope.tenant_id).names({task.owner or ""})).get(task.owner or "")
            text = (
                f"T{task.id} {task.title} was due {task.due_on.isoformat()} and is still open; "
                f"{owner or task.owner or 'its owner'} has not answered the reminder."
            )
        elif envelope.kind == DEADLINE_SLIPPED:
            text = f"T{task.id} {task.title} was due {task.due_on.isoformat()} and is not done yet. Where is it?"
        else:
            text = f"Heads up: T{task.id} {task.title} is due {task.due_on.isoformat()}."
        card = task_card(task, plan_title=plan.title, owner_name=None, today=today)
        activity = MessageFactory.attachment(Attachment(content_type=ADAPTIVE_CARD_CONTENT_TYPE, content=card))
        activity.text = text
        return activity


def _retry_after(error: HttpOperationError) -> float | None:
    value = error.response.headers.get("Retry-After") if error.response is not None else None
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None
