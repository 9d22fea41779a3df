"""Prefetch: what a claimed batch of outbox messages is written from and addressed to, read a chunk at a time.

Writing one nudge reads the recipient (their time zone), the task, its plan, its owner's name, and the recipient's
personal chat: five queries a message, the sender's main cost in a fan-out to many people. Read for a chunk of
messages together instead, they are one query per kind of fact for the chunk. Chunks are read in claim order, as
the sender reaches them, and small (a fraction of a second of sending at Teams' 50 a second), so a message is still
written from the plan as it is when it goes: a task done meanwhile drops its nudge as before.

A fact not prefetched (another kind of message, a recipient without a chat) is read the usual way by whoever needs it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from planner.domain.messages import Envelope
from planner.domain.model import Plan, Task
from planner.domain.people import Conversation, Person
from planner.services.tenants import Tenants
from planner.services.triggers import CONVERSATION

CHUNK = 25
"""Messages whose facts are read together: half a second of sending at Teams' 50 a second."""


@dataclass
class Facts:
    """Facts of one chunk, by (tenant id, key). A key present with None was looked up and does not exist."""

    people: dict[tuple[str, str], Person | None] = field(default_factory=dict)
    tasks: dict[tuple[str, int], Task | None] = field(default_factory=dict)
    plans: dict[tuple[str, int], Plan | None] = field(default_factory=dict)
    chats: dict[tuple[str, str], Conversation | None] = field(default_factory=dict)


def task_id_of(envelope: Envelope) -> int | None:
    """The task a message is about, if its payload names one."""
    try:
        return int(envelope.payload["task"])
    except (KeyError, TypeError, ValueError):
        return None


async def read_facts(tenants: Tenants, envelopes: Sequence[Envelope]) -> Facts:
    """The recipients, the tasks named, their plans and owners, and the recipients' personal chats: one query per
    kind of fact and tenant."""
    facts = Facts()
    by_tenant: dict[str, list[Envelope]] = defaultdict(list)
    for envelope in envelopes:
        by_tenant[envelope.tenant_id].append(envelope)
    for tenant_id, mine in by_tenant.items():
        plans, directory = tenants(tenant_id).plans, tenants(tenant_id).directory
        people_ids = {e.recipient for e in mine if not e.recipient.startswith(CONVERSATION)}
        task_ids = {task_id for e in mine if (task_id := task_id_of(e)) is not None}
        tasks = await plans.tasks_by_id(task_ids)
        plan_ids = {task.plan_id for task in tasks.values()}
        owners = {task.owner for task in tasks.values() if task.owner}
        people = await directory.people(people_ids | owners)
        chats = await directory.personal_chats(people_ids)
        found_plans = await plans.plans_by_id(plan_ids)
        facts.people |= {(tenant_id, user): people.get(user) for user in people_ids | owners}
        facts.tasks |= {(tenant_id, task_id): tasks.get(task_id) for task_id in task_ids}
        facts.plans |= {(tenant_id, plan_id): found_plans.get(plan_id) for plan_id in plan_ids}
        facts.chats |= {(tenant_id, user): chats.get(user) for user in people_ids}
    return facts


class Prefetch:
    """The facts of a batch of messages, read a chunk of `chunk` messages at a time, when the first of the chunk
    asks; the rest of the chunk waits for the same read."""

    def __init__(self, tenants: Tenants, envelopes: Sequence[Envelope], *, chunk: int = CHUNK) -> None:
        if chunk < 1:
            raise ValueError(f"chunk={chunk} must be at least 1 (messages whose facts are read together)")
        self._tenants = tenants
        self._envelopes = list(envelopes)
        self._position = {envelope.id: index for index, envelope in enumerate(self._envelopes)}
        self._chunk = chunk
        self._reads: dict[int, asyncio.Task[Facts]] = {}

    async def facts(self, envelope: Envelope) -> Facts | None:
        """The facts of the chunk `envelope` is in (read now if no message of it asked before); None for a message
        not in the batch."""
        position = self._position.get(envelope.id)
        if position is None:
            return None
        number = position // self._chunk
        read = self._reads.get(number)
        if read is None:
            chunk = self._envelopes[number * self._chunk : (number + 1) * self._chunk]
            read = self._reads[number] = asyncio.ensure_future(read_facts(self._tenants, chunk))
        # Shielded: one message given up on (cancelled) must not cancel the read the rest of its chunk waits for.
        return await asyncio.shield(read)

    def close(self) -> None:
        """Cancel reads nobody waits for any more (the batch ended early)."""
        for read in self._reads.values():
            if not read.done():
                read.cancel()
            elif not read.cancelled():
                read.exception()  # retrieved: every waiter has had it already
