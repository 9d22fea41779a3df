"""The heartbeat: APScheduler wakes the trigger engine and the sender; the database decides what is due."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.delegating import Delegator
from bot.sender import Delivery, Sender
from bot.teams.channel import TeamsChannel
from bot.text.errors import describe_plain
from planner.governance.gated_agent import GatedAgent
from planner.services.approvals import tenants_with_expired
from planner.services.context import purge_expired_facts
from planner.services.decisions import CheckpointInvalid, CheckpointRefused, checkpoint
from planner.services.ingestion import pull_due, purge_event_ids
from planner.services.oauth import purge_sign_ins
from planner.services.playbooks import announce_ended_plans
from planner.services.tenants import Tenants
from planner.services.triggers import TriggerEngine
from planner.store import Store

logger = logging.getLogger(__name__)
MAX_BATCHES = 200
BATCH = 200
"""Messages claimed at once: several seconds of sending at Teams' 50 a second, well inside the lease."""
HOUSEKEEPING_SECONDS = 3600
"""How often expired context facts, signed event ids and ended sign-ins are purged (any replica may; deleting twice
deletes nothing more)."""


@dataclass
class TickReport:
    fired: int
    delivery: Delivery


def worker_name() -> str:
    """A name for this process among the replicas (host and pid), for the outbox leases."""
    return f"{socket.gethostname()}:{os.getpid()}"


async def tick(
    store: Store,
    channel: TeamsChannel,
    *,
    at: datetime,
    sender: Sender | None = None,
    batch: int = BATCH,
    delegator: Delegator | None = None,
    resume: Callable[[], Awaitable[object]] | None = None,
) -> TickReport:
    """The due metric feeds, one evaluation pass, the due delegations, and one delivery pass, as of `at` (the store's
    clock too).

    Pass the process's `sender` to keep its rate limits' memory from one tick to the next.
    """
    if delegator is not None:
        # Fresh readings first, so this tick's drift checks see them.
        await pull_metric_feeds(store, delegator, at)
    sender = sender or Sender(store, channel, worker=worker_name())
    fired = await TriggerEngine(store, sender.outbox).evaluate(at)
    fired += await announce_ended_plans(store, at)
    await expire_approvals(sender.tenants, at)
    if resume is not None:
        await resume()  # approved actions nobody took up: the bot's `resume_approved`
    if delegator is not None:
        await delegator.run_due(at)
    total = Delivery()
    for _batch in range(MAX_BATCHES):
        report = await sender.deliver(limit=batch)
        total = total + report
        if not report:
            break
    return TickReport(fired=fired, delivery=total)


async def pull_metric_feeds(store: Store, delegator: Delegator, at: datetime) -> tuple[int, int]:
    """KPI readings from the agents' feeds that are due (see planner/services/ingestion.py): (stored, failed).

    Each pull goes through the tenant's gated agent (its policy gate and circuit breaker). An agent whose circuit is
    open waits for a health check, as it does for deferred delegations (never a pull as the probe): one is made first
    when the circuit's cool-down is over.
    """

    async def open_agent(tenant_id: str, name: str) -> GatedAgent:
        await delegator.check_health_if_due(tenant_id, name, at)
        return await delegator.registry(tenant_id).open(name)

    stored, failed = await pull_due(store, open_agent, at, explain=describe_plain)
    if failed:
        logger.warning(
            "metric feeds: %d reading(s) stored, %d feed(s) failed (see `cos metrics feeds`)", stored, failed
        )
    return stored, failed


async def expire_approvals(tenants: Tenants, at: datetime) -> int:
    """Approval requests past their time expire (the requester is told, the decision log keeps it)."""
    expired = 0
    for tenant_id in await tenants_with_expired(tenants.store, at):
        expired += len(await tenants(tenant_id).approvals.expire_due(at))
    return expired


async def keep_checkpoint(store: Store, path: Path) -> None:
    """Write the decision log's signed checkpoint when a chain head moved (planner/services/decisions.py); a log that
    no longer extends the checkpoint is logged as an error, and the checkpoint is kept as it is."""
    try:
        await checkpoint(store, path)
    except (CheckpointInvalid, CheckpointRefused) as error:
        logger.error("decision log: %s", describe_plain(error))
    except Exception:
        logger.exception("writing the decision log checkpoint %s failed; the next tick will try again", path)


def start_scheduler(
    store: Store,
    channel: TeamsChannel,
    *,
    every_seconds: int,
    sender: Sender | None = None,
    delegator: Delegator | None = None,
    resume: Callable[[], Awaitable[object]] | None = None,
    checkpoints: Path | None = None,
) -> AsyncIOScheduler:
    """Tick every `every_seconds`; missed runs (a busy or stopped process) coalesce into one. With `checkpoints`, each
    tick also keeps the decision log's checkpoint there current."""

    sender = sender or Sender(store, channel, worker=worker_name())

    async def run() -> None:
        try:
            report = await tick(store, channel, at=store.clock(), sender=sender, delegator=delegator, resume=resume)
        except Exception:
            logger.exception("a scheduled tick failed; the next one will try again")
            return
        if report.fired or report.delivery.sent or report.delivery.dead:
            logger.info("tick: %s fired, %s", report.fired, report.delivery)
        if checkpoints is not None:
            await keep_checkpoint(store, checkpoints)

    async def housekeep() -> None:
        try:
            now = store.clock()
            purged = await purge_expired_facts(store, now) + await purge_event_ids(store, now)
            sign_ins = await purge_sign_ins(store, now)
        except Exception:
            logger.exception("housekeeping failed; the next run will try again")
            return
        if purged:
            logger.info("housekeeping: %d expired context fact(s) and signed event id(s) purged", purged)
        if sign_ins:
            logger.info("housekeeping: %d ended or expired sign-in(s) purged", sign_ins)

    scheduler = AsyncIOScheduler()
    scheduler.add_job(
        housekeep, "interval", seconds=HOUSEKEEPING_SECONDS, coalesce=True, max_instances=1, id="housekeeping"
    )
    scheduler.add_job(
        run,
        "interval",
        seconds=every_seconds,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=every_seconds,
        next_run_time=store.clock(),
        id="tick",
    )
    scheduler.start()
    return scheduler
