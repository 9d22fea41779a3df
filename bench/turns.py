"""Bot turn benchmark: the "show plan" command on a plan of 1,000 tasks, beside an echo bot on the same stack.

Seeds a scratch database (a SQLite file, or with --database-url a database of its own on that PostgreSQL server,
dropped afterwards) with one master plan (with a KPI), four tactical plans, 1,000 tasks and this
week's weekly plan, then runs on loopback, in one process: the real bot server, an echo bot (an ActivityHandler
that sends the text back, on its own CloudAdapter), and a fake Bot Connector for both to reply to. Each side
gets the same load, in interleaved rounds so machine noise hits both alike: `--turns` Teams-shaped message
activities saying `plan`, each with a fresh activity id, posted by `--concurrency` clients at once. A turn's
latency is the time until its POST returns; the bot sends its reply to the connector before it answers, so
that includes building and sending the reply. Prints, as medians of the rounds:
- turns per second for the bot and for the echo bot, and their ratio (goal: the bot reaches at least half);
- p50 and p95 latency of a turn on each side;
- the size of the plan card the bot sends.
Every reply is checked: the bot's must carry an Adaptive Card naming the master plan, the echo's the text sent.

Usage: python bench/turns.py [--turns N] [--concurrency N] [--rounds N] [--warmup N] [--time-limit SECONDS]
                             [--database-url postgresql+asyncpg://user@host:port/db]
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from botbuilder.core import ActivityHandler, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scratch import scratch_database
from bot.http.app import create_app
from bot.server import freeze_startup_heap
from bot.settings import Settings
from bot.teams.botbuilder import create_adapter
from bot.teams.handler import ChiefOfStaffBot
from planner.domain.model import MetricSpec, Plan, Window, iso_week_of
from planner.services.plans import Plans
from planner.store import Store, create_engine
from planner.store.migrate import upgrade
from planner.store.schema import tasks
from tests.fakes.connector import FakeConnector

TENANT = "bench-tenant"
LEADER = "aad-bench-lead"
TASKS = 1_000
YEAR = Window(start=date(2026, 1, 1), end=date(2026, 12, 31))
NOW = datetime(2026, 6, 4, 9, 0, tzinfo=UTC)  # the bot's clock: mid-year, inside the second tactical plan
MASTER_TITLE = "Grow qualified pipeline to 500 SQLs"
COMMAND = "plan"
REQUEST_TIMEOUT = 30.0


def fixed_clock() -> datetime:
    return NOW


# ---- the data ------------------------------------------------------------------------------------------------


async def seed(store: Store) -> Plan:
    """One master plan with a KPI and readings, four quarterly tactical plans, 1,000 tasks and this week's plan."""
    tenant = Plans(store, TENANT)
    master = await tenant.create_master_plan(
        title=MASTER_TITLE,
        owner=LEADER,
        window=YEAR,
        constraints=["budget 120k USD", "no new hires"],
        metrics=[MetricSpec(name="SQLs", target=500, unit="SQL", baseline=0, tolerance=0.1)],
        actor=LEADER,
    )
    quarters = [(date(2026, 1, 1), date(2026, 3, 31)), (date(2026, 4, 1), date(2026, 6, 30))]
    quarters += [(date(2026, 7, 1), date(2026, 9, 30)), (date(2026, 10, 1), date(2026, 12, 31))]
    tacticals = []
    for number, (start, end) in enumerate(quarters, 1):
        tacticals.append(
            await tenant.create_tactical_plan(
                master.id,
                title=f"Q{number} push",
                owner=f"aad-member-{number}",
                window=Window(start=start, end=end),
                metrics=[MetricSpec(name="SQLs", target=125, unit="SQL", tolerance=0.15)],
                actor=LEADER,
            )
        )
    [kpi] = await tenant.list_metrics(master.id)
    for week in range(22):
        await tenant.record_reading(kpi.id, 9.0 * week, at=NOW - timedelta(days=7 * (21 - week)), actor=LEADER)

    rng = random.Random(7)
    statuses = ["todo", "doing", "done", "done", "blocked", "delegated"]
    rows = []
    for n in range(TASKS):
        tactical = tacticals[n % len(tacticals)]
        span = (tactical.window.end - tactical.window.start).days
        due = tactical.window.start + timedelta(days=rng.randrange(span + 1))
        # What lies well in the past is mostly done, as in a plan people keep up to date.
        status = "done" if due < NOW.date() - timedelta(days=30) and rng.random() < 0.8 else rng.choice(statuses)
        rows.append(
            dict(
                tenant_id=TENANT,
                plan_id=tactical.id,
                master_id=master.id,
                title=f"Task {n}: follow up with account {n % 97}",
                owner=f"aad-member-{n % 12}",
                due_on=due,
                status=status,
                milestone=n % 25 == 0,
                created_at=NOW - timedelta(days=200),
                blocked_reason="waiting on legal" if status == "blocked" else None,
                version=1,
            )
        )
    async with store.engine.begin() as conn:
        await conn.execute(insert(tasks), rows)
        await conn.execute(text("ANALYZE"))
    current = next(t for t in tacticals if t.window.includes(NOW.date()))
    await tenant.derive_weekly_plan(current.id, iso_week_of(NOW.date()), actor=LEADER)
    return master


# ---- the two bots --------------------------------------------------------------------------------------------


class EchoBot(ActivityHandler):
    """The least a bot can do on this stack: send the text back."""

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        await turn_context.send_activity(MessageFactory.text(turn_context.activity.text))


def create_echo_app(adapter: CloudAdapter, bot: EchoBot) -> web.Application:
    async def messages(request: web.Request) -> web.StreamResponse:
        return await adapter.process(request, bot) or web.Response(status=201)

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    return app


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve `app` on an ephemeral loopback port, as the bot's server does once it listens; the runner (to clean up)
    and the messages URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    freeze_startup_heap()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}/api/messages"


# ---- the load ------------------------------------------------------------------------------------------------


@dataclass
class Side:
    """One bot under load: where to post, the connector it replies to, and how to check a reply."""

    name: str
    url: str
    connector: FakeConnector
    check: Callable[[dict[str, Any]], bool]
    conversation_id: str
    ids: itertools.count = field(default_factory=itertools.count)

    def activity(self) -> dict[str, Any]:
        return {
            "type": "message",
            "id": f"{self.name}-{next(self.ids)}-{uuid.uuid4().hex[:8]}",  # the bot processes an id only once
            "channelId": "msteams",
            "serviceUrl": self.connector.url,
            "from": {"id": f"29:{LEADER}", "aadObjectId": LEADER, "name": "Bench Lead"},
            "recipient": {"id": "28:bot", "name": "Chief of Staff"},
            "conversation": {"id": self.conversation_id, "conversationType": "personal", "tenantId": TENANT},
            "channelData": {"tenant": {"id": TENANT}},
            "localTimezone": "Europe/London",
            "text": COMMAND,
        }


@dataclass(frozen=True, kw_only=True)
class Round:
    turns_per_second: float
    p50: float
    p95: float


async def load(session: aiohttp.ClientSession, side: Side, turns: int, concurrency: int) -> Round:
    """Post `turns` activities, `concurrency` at a time; check every reply; throughput and latency of the round."""
    before = len(side.connector.sent)
    latencies: list[float] = []
    failures: list[str] = []
    remaining = iter(range(turns))

    async def client() -> None:
        for _ in remaining:
            activity = side.activity()
            began = time.perf_counter()
            try:
                async with session.post(side.url, json=activity) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as error:
                failures.append(f"{type(error).__name__}: {error}")
                continue
            latencies.append(time.perf_counter() - began)
            if status not in (200, 201):
                failures.append(f"HTTP {status}")

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    wall = time.perf_counter() - began
    if failures:
        raise RuntimeError(f"{side.name}: {len(failures)} of {turns} turns failed, first: {failures[0]}")
    sent = (await side.connector.wait_for(before + turns, within=REQUEST_TIMEOUT))[before:]
    wrong = [s.body for s in sent if not side.check(s.body)]
    if len(sent) != turns or wrong:
        sample = json.dumps(wrong[0])[:300] if wrong else ""
        raise RuntimeError(f"{side.name}: {len(sent)} replies for {turns} turns, {len(wrong)} not as expected {sample}")
    del side.connector.sent[before:]  # replies were checked; keep memory flat across rounds
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return Round(turns_per_second=turns / wall, p50=statistics.median(latencies), p95=cuts[94])


def plan_card(body: dict[str, Any]) -> dict[str, Any] | None:
    for attachment in body.get("attachments") or []:
        if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive":
            return attachment.get("content")
    return None


def is_plan_card(body: dict[str, Any]) -> bool:
    card = plan_card(body)
    return card is not None and card.get("type") == "AdaptiveCard" and MASTER_TITLE in json.dumps(card)


def is_echo(body: dict[str, Any]) -> bool:
    return body.get("type") == "message" and body.get("text") == COMMAND


# ---- the run -------------------------------------------------------------------------------------------------


async def main(options: argparse.Namespace) -> dict[str, object]:
    async with scratch_database(options.database_url) as url:
        return await measure(url, options.turns, options.concurrency, options.rounds, options.warmup)


async def measure(url: str, turns: int, concurrency: int, rounds: int, warmup: int) -> dict[str, object]:
    store = Store(create_engine(url), clock=fixed_clock)
    runners: list[web.AppRunner] = []
    connectors: list[FakeConnector] = []
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
    )
    try:
        began = time.perf_counter()
        await upgrade(store.engine)
        await seed(store)
        seeded = time.perf_counter() - began

        settings = Settings.from_env({})  # local mode: no credentials, loopback connectors only
        adapter = create_adapter(settings)
        bot = ChiefOfStaffBot(store, settings, clock=fixed_clock)
        bot.adapter = adapter
        bot_runner, bot_url = await serve(create_app(store, adapter, bot, settings))
        runners.append(bot_runner)
        echo_runner, echo_url = await serve(create_echo_app(create_adapter(settings), EchoBot()))
        runners.append(echo_runner)
        for _ in range(2):
            connectors.append(FakeConnector())
            await connectors[-1].start()
        sides = [
            Side("bot", bot_url, connectors[0], is_plan_card, "a:personal-bench-bot"),
            Side("echo", echo_url, connectors[1], is_echo, "a:personal-bench-echo"),
        ]

        # One checked turn first, to keep the card it sends.
        async with session.post(bot_url, json=sides[0].activity()) as response:
            await response.read()
            if response.status not in (200, 201):
                raise RuntimeError(f"bot: the first turn answered HTTP {response.status}")
        [first] = await sides[0].connector.wait_for(1, within=REQUEST_TIMEOUT)
        card = plan_card(first.body)
        if card is None or not is_plan_card(first.body):
            raise RuntimeError(f"bot: the first reply is not a plan card: {json.dumps(first.body)[:300]}")
        card_bytes = len(json.dumps(card, separators=(",", ":")).encode())
        sides[0].connector.sent.clear()

        for side in sides:
            await load(session, side, warmup, concurrency)
        results: dict[str, list[Round]] = {side.name: [] for side in sides}
        for number in range(rounds):
            for side in sides if number % 2 == 0 else reversed(sides):
                results[side.name].append(await load(session, side, turns, concurrency))
        await bot.drain()
    finally:
        await session.close()
        for runner in reversed(runners):
            await runner.cleanup()
        for fake in connectors:
            await fake.close()
        await store.close()

    def median(side: str, figure: str, scale: float = 1.0, digits: int = 1) -> float:
        return round(statistics.median(getattr(r, figure) for r in results[side]) * scale, digits)

    bot_tps, echo_tps = median("bot", "turns_per_second"), median("echo", "turns_per_second")
    ms = 1000
    figures: dict[str, object] = {
        "benchmark": "turns",
        "database": store.engine.dialect.name,
        "command": COMMAND,
        "tasks": TASKS,
        "seed_seconds": round(seeded, 2),
        "turns_per_round": turns,
        "concurrency": concurrency,
        "rounds": rounds,
        "bot_turns_per_s": bot_tps,
        "echo_turns_per_s": echo_tps,
        "ratio": round(bot_tps / echo_tps, 2),
        "bot_p50_ms": median("bot", "p50", ms),
        "bot_p95_ms": median("bot", "p95", ms),
        "echo_p50_ms": median("echo", "p50", ms),
        "echo_p95_ms": median("echo", "p95", ms),
        "card_bytes": card_bytes,
        "bot_rounds_turns_per_s": [round(r.turns_per_second, 1) for r in results["bot"]],
        "echo_rounds_turns_per_s": [round(r.turns_per_second, 1) for r in results["echo"]],
    }
    return figures


async def bounded(options: argparse.Namespace) -> dict[str, object]:
    try:
        async with asyncio.timeout(options.time_limit):
            return await main(options)
    except TimeoutError:
        raise SystemExit(
            f"the benchmark did not finish in {options.time_limit} s: lower --turns or --rounds, or raise --time-limit"
        ) from None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=300, help="turns per round and side")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight at once")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per side, interleaved (median reported)")
    parser.add_argument("--warmup", type=int, default=40, help="unmeasured turns per side before the rounds")
    parser.add_argument("--time-limit", type=float, default=240.0, help="give up after this many seconds")
    parser.add_argument(
        "--database-url", help="a PostgreSQL server to make a scratch database on (default: a scratch SQLite file)"
    )
    options = parser.parse_args()
    if options.database_url is not None and not options.database_url.startswith("postgresql"):
        parser.error("--database-url takes a PostgreSQL URL (the default is a scratch SQLite file)")
    if options.turns < 2 or options.concurrency < 1 or options.rounds < 1 or options.warmup < 2:
        parser.error("--turns and --warmup must be at least 2, --concurrency and --rounds at least 1")
    result = asyncio.run(bounded(options))
    print(
        f"{result['database']}: {result['tasks']} tasks in one master plan (seeded in {result['seed_seconds']} s); "
        f"{result['rounds']} rounds of {result['turns_per_round']} turns per side, {result['concurrency']} at a time"
    )
    print(
        f"`{result['command']}`: bot {result['bot_turns_per_s']} turns/s, echo bot {result['echo_turns_per_s']} "
        f"turns/s, ratio {result['ratio']} (goal >= 0.5)"
    )
    print(
        f"latency: bot p50 {result['bot_p50_ms']} ms / p95 {result['bot_p95_ms']} ms; "
        f"echo p50 {result['echo_p50_ms']} ms / p95 {result['echo_p95_ms']} ms"
    )
    print(f"plan card: {result['card_bytes']} bytes")
    print(json.dumps(result))
