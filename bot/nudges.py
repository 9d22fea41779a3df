"""Nudges: the Teams message each kind of outbox message becomes, written as of when it is sent."""

from __future__ import annotations

from typing import Any

from botbuilder.core import MessageFactory
from botbuilder.schema import Attachment

from bot.addressing import Undeliverable
from bot.cards import ADAPTIVE_CARD_CONTENT_TYPE, task_card
from planner.directory import Directory
from planner.errors import TaskNotFound
from planner.outbox import Envelope
from planner.store import Store
from planner.triggers import DEADLINE_APPROACHING, DEADLINE_SLIPPED, ESCALATION


async def compose(store: Store, envelope: Envelope) -> Any | None:
    """The message to send, or None when it no longer applies (the task was done meanwhile)."""
    if envelope.kind not in (DEADLINE_APPROACHING, DEADLINE_SLIPPED, ESCALATION):
        raise Undeliverable(f"no way to write a {envelope.kind!r} message")
    tenant = store.tenant(envelope.tenant_id)
    try:
        task = await tenant.get_task(int(envelope.payload["task"]))
    except TaskNotFound:
        return None
    if not task.status.is_open:
        return None
    plan = await tenant.get_plan(task.plan_id)
    today = store.clock().date()
    if envelope.kind == ESCALATION:
        owner = (await Directory(store, envelope.tenant_id).names({task.owner or ""})).get(task.owner or "")
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
