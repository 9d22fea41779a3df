"""One replica of the bot's follow-up engine, in a process of its own: one tick (evaluate, then deliver), as of a
given time, the way `cos tick --at` runs it, with the batch, concurrency and lease a test chooses.

Usage: python -m tests.fakes.engine --database-url URL --at ISO-TIME --worker NAME
                                    [--batch N] [--concurrency N] [--lease-seconds S]
Prints one JSON object (the tick's report) and exits 0. The store's clock stands still at --at, so a lease
runs out only for a later replica started with a later --at.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict
from datetime import datetime, timedelta

from bot.scheduler import BATCH, tick
from bot.sender import CONCURRENCY, LEASE, Sender
from bot.settings import Settings
from bot.teams.botbuilder import BotbuilderChannel, create_adapter
from planner.store import Store, create_engine


async def run(options: argparse.Namespace) -> dict[str, object]:
    at = datetime.fromisoformat(options.at)
    store = Store(create_engine(options.database_url), clock=lambda: at)
    adapter = create_adapter(Settings.from_env({}))
    sender = Sender(
        store,
        BotbuilderChannel(adapter),
        worker=options.worker,
        concurrency=options.concurrency,
        lease=timedelta(seconds=options.lease_seconds),
    )
    try:
        report = await tick(store, BotbuilderChannel(adapter), at=at, sender=sender, batch=options.batch)
    finally:
        await store.close()
    return {"worker": options.worker, "fired": report.fired, **asdict(report.delivery)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--at", required=True, help="the engine's time, ISO-8601 with a zone")
    parser.add_argument("--worker", required=True, help="this replica's name in the outbox leases")
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--lease-seconds", type=float, default=LEASE.total_seconds())
    print(json.dumps(asyncio.run(run(parser.parse_args()))), flush=True)
