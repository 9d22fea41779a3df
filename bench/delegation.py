"""Delegation benchmark: what a delegation costs beside a direct MCP call, and chat latency under 200 delegations.

Runs on loopback: the project's vendor agent (tests/adapters/vendor_agent.py) serving streamable HTTP in a
subprocess (as a vendor's server is another machine: its work does not share the bot's event loop), and, in this
process, a scratch SQLite database, the bot's `Delegator` with the agent registered as adapter `vendor`, the real
bot server and a fake Bot Connector for it to reply to.

1. Bookkeeping. `--samples` times each, interleaved (the order rotates every iteration, so machine noise hits all
   alike), of the same trivial tool (`draft_email`) on the same server:
   - direct: the MCP SDK's `ClientSession.call_tool` on a session opened beforehand: no bookkeeping at all;
   - agent call: the agent the delegator's registry hands out (the policy gate and the circuit breaker around
     `MCPAgent.delegate`: the error mapping, the result and its evidence);
   - delegation: the bot's whole lifecycle of a new delegation of a fresh task, as a `delegate` command runs it:
     `Delegations.request(start=True)` (the task moves to `delegated`; the delegation is stored, started by this
     runner when nothing stands in its way; both recorded) then `Delegator.run` on the same object (the agent
     call, then the result, its evidence, its event and the owner's message in the outbox, in one transaction).
   Prints the medians, their ratios to the direct call, the bookkeeping of a delegation (delegation minus agent
   call: what the durable record costs; reported as a regression guard, not a goal), and the SQL statements and
   transactions one delegation makes (counted on one extra delegation).
2. Chat under load (the goal). Rounds of `--turns` chat turns (`my tasks`, from a lead who owns a small plan), one
   at a time, alternate between a quiet bot and a bot running `--concurrent` delegations at once. Each slot starts
   another delegation as soon as one finishes; the vendor's `slow_report` stands in for an agent that takes a
   while, slot k taking `--agent-seconds` x (0.5 + k / slots) so the slots finish at different times; the turns
   begin once every slot has finished one delegation and the agent works on the next (the steady state). A turn's
   latency is the time until its POST returns (the reply has been sent to the connector by then). Prints p50 and
   p95 of all the turns of each condition and the ratio of the p95s (goal: loaded at most 2x quiet), how many
   delegations finished per second during the loaded turns, and this process's CPU seconds per second in each
   condition. Every reply is checked (a week card with the lead's tasks), every delegation must succeed, and the
   delegations in flight are counted at every turn (the fewest is printed).

Results go to the outbox (the scheduler's tick sends them); nothing is sent to Teams during a delegation here. The
figures of the last runs, and what they mean, are in bench/README.md.

Usage: python bench/delegation.py [--samples N] [--warmup N] [--concurrent N] [--agent-seconds S]
                                  [--turns N] [--rounds N] [--time-limit SECONDS] [--database-url URL]
With --database-url postgresql+asyncpg://user@host:port/db the store is a database of its own made on that server
(and dropped afterwards) instead of the scratch SQLite file.
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import itertools
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from mcp import Client
from mcp import types as mcp_types
from sqlalchemy import event, insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scratch import scratch_database
from bench.turns import serve
from bot.delegating import Delegator
from bot.http.app import create_app
from bot.settings import Settings
from bot.teams.botbuilder import create_adapter
from bot.teams.handler import ChiefOfStaffBot
from planner.domain.delegations import DelegationStatus
from planner.domain.model import Window
from planner.ports import Agent, DelegationRequest
from planner.services.plans import Plans
from planner.store import Store, create_engine
from planner.store.migrate import upgrade
from planner.store.schema import tasks
from planner.store.vault import Vault
from tests.adapters.operator import LIMITS
from tests.adapters.vendor_agent import TOKEN_VARIABLE
from tests.fakes.connector import FakeConnector

ROOT = Path(__file__).resolve().parents[1]
TENANT = "bench-tenant"
LEADER = "aad-bench-lead"
WRITER = "aad-bench-writer"
ADAPTER = "vendor"
NOW = datetime(2026, 6, 4, 9, 0, tzinfo=UTC)  # the bot's clock
QUARTER = Window(start=date(2026, 4, 1), end=date(2026, 6, 30))
LEADER_TASKS = 15
LOAD_TASKS = 2_000
"""Fresh tasks for the loaded rounds; once used up, tasks are delegated again (a valid request too)."""
EMAIL = {"audience": "CFOs", "topic": "the spring launch"}
SUBJECT = "the spring launch: what it means for CFOs"
COMMAND = "my tasks"
REQUEST_TIMEOUT = 30.0
STARTUP_SECONDS = 30.0
MS = 1000
GOAL_P95_RATIO = 2.0
"""Chat with `--concurrent` delegations in flight: p95 at most this many times the quiet p95."""


def fixed_clock() -> datetime:
    return NOW


def quantile(values: list[float], percent: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


# ---- the vendor agent and the data ---------------------------------------------------------------------------


class Vendor:
    """The vendor agent serving streamable HTTP on 127.0.0.1 in a subprocess, how many reports it began, and how many
    it was running as it began the last one."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.reports_started = 0
        self.reports_running = 0
        self._changed = asyncio.Condition()

    async def follow(self, stdout: asyncio.StreamReader) -> None:
        # Read every line it prints (a full pipe would stall it); it prints one as each slow report begins.
        while line := await stdout.readline():
            if line.startswith(b"slow_report started"):
                # "slow_report started (N running)"
                async with self._changed:
                    self.reports_started += 1
                    self.reports_running = int(line.split(b"(")[1].split()[0])
                    self._changed.notify_all()

    async def wait_for_reports(self, count: int) -> None:
        """Until `count` slow reports have begun on the server."""
        async with asyncio.timeout(REQUEST_TIMEOUT), self._changed:
            await self._changed.wait_for(lambda: self.reports_started >= count)


@contextlib.asynccontextmanager
async def vendor_agent(lifetime: float) -> AsyncIterator[Vendor]:
    """The vendor agent in a subprocess, killed on exit (it also stops when our stdin to it closes)."""
    env = {key: value for key, value in os.environ.items() if key != TOKEN_VARIABLE}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.adapters.vendor_agent",
        *("--port", "0", "--lifetime", f"{lifetime:.0f}", "--exit-with-stdin"),
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    following: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(STARTUP_SECONDS):
            while not (line := (await process.stdout.readline()).decode()).startswith("listening on "):
                if not line:
                    raise RuntimeError("the vendor agent exited before it listened: run it alone to see why")
        vendor = Vendor(line.split()[-1])
        following = asyncio.create_task(vendor.follow(process.stdout))
        yield vendor
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        if following is not None:
            following.cancel()


@dataclass
class Seeded:
    fresh: Iterator[int]
    """Open tasks nobody delegated yet, for the overhead samples."""
    load: Iterator[int]
    """Tasks for the loaded rounds, cycled."""
    leader_titles: list[str]


async def seed(store: Store, fresh: int) -> Seeded:
    """A master and a tactical plan; the lead's few tasks, and the writer's many open ones to delegate."""
    tenant = Plans(store, TENANT)
    master = await tenant.create_master_plan(
        title="Grow qualified pipeline",
        owner=LEADER,
        window=Window(start=date(2026, 1, 1), end=date(2026, 12, 31)),
        actor=LEADER,
    )
    tactical = await tenant.create_tactical_plan(master.id, title="Q2 push", owner=LEADER, window=QUARTER, actor=LEADER)
    leader_titles = [f"Lead task {n}: review the campaign brief" for n in range(LEADER_TASKS)]
    rows = [
        dict(owner=LEADER, title=title, due_on=NOW.date() + timedelta(days=n % 10 - 3))
        for n, title in enumerate(leader_titles)
    ]
    rows += [
        dict(owner=WRITER, title=f"Writer task {n}: draft the launch email", due_on=date(2026, 6, 20))
        for n in range(fresh + LOAD_TASKS)
    ]
    for row in rows:
        row.update(
            tenant_id=TENANT,
            plan_id=tactical.id,
            master_id=master.id,
            status="todo",
            milestone=False,
            created_at=NOW - timedelta(days=30),
            version=1,
        )
    async with store.engine.begin() as conn:
        await conn.execute(insert(tasks), rows)
    writer_tasks = [t.id for t in await tenant.tasks_of_owner(WRITER)]
    return Seeded(
        fresh=iter(writer_tasks[:fresh]),
        load=itertools.cycle(writer_tasks[fresh:]),
        leader_titles=leader_titles,
    )


# ---- 1. overhead ---------------------------------------------------------------------------------------------


async def delegate_once(delegator: Delegator, task_id: int, capability: str, payload: dict[str, Any]) -> float:
    """Request and run one delegation as the bot does; checks it succeeded; returns when the request was done."""
    delegations = delegator.delegations(TENANT)
    queued = await delegations.request(
        task_id, adapter=ADAPTER, capability=capability, input=payload, actor=LEADER, start=True
    )
    requested = time.perf_counter()
    outcome = await delegator.run(TENANT, queued.id, ask=None, delegations=delegations)
    if outcome is None or outcome.delegation.status is not DelegationStatus.SUCCEEDED:
        detail = outcome.delegation.error if outcome is not None else "it raised (see the log)"
        raise RuntimeError(f"delegation {queued.id} of task {task_id} did not succeed: {detail}")
    return requested


async def measure_overhead(
    delegator: Delegator, agent: Agent, client: Client, seeded: Seeded, samples: int, warmup: int
) -> dict[str, list[float]]:
    """Each variant's latencies in seconds, interleaved; also the delegation's request and run parts."""
    result: dict[str, list[float]] = {"direct": [], "agent": [], "delegation": [], "request": [], "run": []}
    request = DelegationRequest(capability="draft_email", input=EMAIL)
    measuring = False

    async def direct() -> None:
        answer = await client.session.call_tool("draft_email", EMAIL)
        if answer.is_error or SUBJECT not in json.dumps(answer.structured_content):
            raise RuntimeError(f"the direct call did not draft the email: {answer.model_dump_json()[:300]}")

    async def agent_call() -> None:
        answer = await agent.delegate(request)
        if answer.status is not DelegationStatus.SUCCEEDED or SUBJECT not in answer.output:
            raise RuntimeError(f"the agent call did not draft the email: {answer.status} {answer.error}")

    async def delegation() -> None:
        began = time.perf_counter()
        requested = await delegate_once(delegator, next(seeded.fresh), "draft_email", EMAIL)
        ended = time.perf_counter()
        if measuring:
            result["request"].append(requested - began)
            result["run"].append(ended - requested)

    variants: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("direct", direct),
        ("agent", agent_call),
        ("delegation", delegation),
    ]
    for number in range(warmup + samples):
        measuring = number >= warmup
        shift = number % len(variants)
        for name, variant in variants[shift:] + variants[:shift]:
            began = time.perf_counter()
            await variant()
            if measuring:
                result[name].append(time.perf_counter() - began)
    return result


@dataclass
class SQLCount:
    statements: int = 0
    transactions: int = 0


@contextlib.contextmanager
def counting_sql(store: Store) -> Iterator[SQLCount]:
    """Counts the SQL statements and committed transactions the store runs inside the block."""
    counts = SQLCount()

    def statement(*_args: Any) -> None:
        counts.statements += 1

    def commit(*_args: Any) -> None:
        counts.transactions += 1

    engine = store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        yield counts
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)


# ---- 2. chat turns, quiet and under load ---------------------------------------------------------------------


class Load:
    """`slots` delegations kept in flight (each slot starts another when one finishes) until stopped.

    Slot k's agent takes `agent_seconds` x (0.5 + k / slots), so their ends spread out instead of coming together.
    """

    def __init__(
        self, delegator: Delegator, vendor: Vendor, tasks: Iterator[int], slots: int, agent_seconds: float
    ) -> None:
        self._delegator = delegator
        self._vendor = vendor
        self._tasks = tasks
        self._seconds = [agent_seconds * (0.5 + k / slots) for k in range(slots)]
        self._stop = asyncio.Event()
        self._runners: list[asyncio.Task[None]] = []
        self.in_flight = 0
        self.finished = 0
        self.recording = False
        self.failures: list[str] = []
        self.beyond_agent: list[float] = []
        """Of each delegation finished while recording: its time less its agent's (the bot's share, and waits)."""

    @property
    def at_agent(self) -> int:
        """How many calls the agent was running as it began its latest."""
        return self._vendor.reports_running

    async def start(self) -> None:
        """Start the slots; returns in the steady state: every slot has finished one and its agent works on the next."""
        second = [asyncio.Event() for _ in self._seconds]
        before = self._vendor.reports_started
        self._runners = [asyncio.create_task(self._slot(s, e)) for s, e in zip(self._seconds, second, strict=True)]
        async with asyncio.timeout(REQUEST_TIMEOUT + 2 * max(self._seconds)):
            await asyncio.gather(*(event.wait() for event in second))
            # Each slot's second delegation has been requested; wait until the agent has every one of them.
            await self._vendor.wait_for_reports(before + 2 * len(self._seconds))

    async def _slot(self, seconds: float, second: asyncio.Event) -> None:
        payload = {"campaign": "spring-launch", "seconds": seconds}
        while not self._stop.is_set():
            self.in_flight += 1
            began = time.perf_counter()
            try:
                await delegate_once(self._delegator, next(self._tasks), "slow_report", payload)
            except RuntimeError as error:  # counted and reported: a finding, not a reason to stop measuring
                self.failures.append(str(error))
            finally:
                self.in_flight -= 1
            if self.recording:
                self.beyond_agent.append(time.perf_counter() - began - seconds)
            self.finished += 1
            second.set()

    async def stop(self) -> int:
        """Let every slot finish its delegation and stop; how many delegations finished in all."""
        self._stop.set()
        async with asyncio.timeout(REQUEST_TIMEOUT):
            await asyncio.gather(*self._runners)
        return self.finished


@dataclass
class Chat:
    """The lead's 1:1 chat with the bot."""

    url: str
    connector: FakeConnector
    leader_titles: list[str]
    ids: itertools.count = field(default_factory=itertools.count)

    def activity(self) -> dict[str, Any]:
        return {
            "type": "message",
            "id": f"turn-{next(self.ids)}-{uuid.uuid4().hex[:8]}",
            "channelId": "msteams",
            "serviceUrl": self.connector.url,
            "from": {"id": f"29:{LEADER}", "aadObjectId": LEADER, "name": "Bench Lead"},
            "recipient": {"id": "28:bot", "name": "Chief of Staff"},
            "conversation": {"id": "a:personal-bench-lead", "conversationType": "personal", "tenantId": TENANT},
            "channelData": {"tenant": {"id": TENANT}},
            "localTimezone": "Europe/London",
            "text": COMMAND,
        }

    def is_week_card(self, body: dict[str, Any]) -> bool:
        cards = [
            a.get("content")
            for a in body.get("attachments") or []
            if a.get("contentType") == "application/vnd.microsoft.card.adaptive"
        ]
        text = json.dumps(cards)
        return bool(cards) and "Your week" in text and self.leader_titles[0] in text

    async def turns(
        self, session: aiohttp.ClientSession, count: int, load: Load | None
    ) -> tuple[list[float], int, int]:
        """Post `count` turns one after another; checks every reply. The latencies, the fewest delegations in flight
        at a turn, and the fewest agent calls the agent said it was running at a turn (as it began its latest)."""
        before = len(self.connector.sent)
        latencies: list[float] = []
        fewest = load.in_flight if load is not None else 0
        fewest_at_agent = load.at_agent if load is not None else 0
        for _ in range(count):
            if load is not None:
                fewest = min(fewest, load.in_flight)
                fewest_at_agent = min(fewest_at_agent, load.at_agent)
            began = time.perf_counter()
            async with session.post(self.url, json=self.activity()) as response:
                await response.read()
                if response.status not in (200, 201):
                    raise RuntimeError(f"a `{COMMAND}` turn answered HTTP {response.status}")
            latencies.append(time.perf_counter() - began)
        sent = (await self.connector.wait_for(before + count, within=REQUEST_TIMEOUT))[before:]
        wrong = [s.body for s in sent if not self.is_week_card(s.body)]
        if len(sent) != count or wrong:
            sample = json.dumps(wrong[0])[:300] if wrong else ""
            raise RuntimeError(f"{len(sent)} replies to {count} turns, {len(wrong)} not the lead's week card {sample}")
        del self.connector.sent[before:]
        return latencies, fewest, fewest_at_agent


@dataclass
class ChatFigures:
    quiet: list[float] = field(default_factory=list)
    loaded: list[float] = field(default_factory=list)
    quiet_round_p95: list[float] = field(default_factory=list)
    loaded_round_p95: list[float] = field(default_factory=list)
    quiet_cpu: list[float] = field(default_factory=list)
    """This process's CPU seconds per wall second, per round: how busy the bot's process was."""
    loaded_cpu: list[float] = field(default_factory=list)
    fewest_in_flight: int | None = None
    fewest_at_agent: int | None = None
    delegations_during_load: int = 0
    finished_during_turns: int = 0
    beyond_agent: list[float] = field(default_factory=list)
    """Delegations finished during the loaded turns: each one's time less its agent's."""
    failures: list[str] = field(default_factory=list)
    """Why each delegation of the load that did not succeed failed."""
    loaded_turn_seconds: float = 0.0


async def measure_chat(
    chat: Chat,
    delegator: Delegator,
    vendor: Vendor,
    seeded: Seeded,
    options: argparse.Namespace,
    session: aiohttp.ClientSession,
) -> ChatFigures:
    figures = ChatFigures()
    for number in range(options.rounds):
        for loaded in (False, True) if number % 2 == 0 else (True, False):
            load = Load(delegator, vendor, seeded.load, options.concurrent, options.agent_seconds) if loaded else None
            if load is not None:
                await load.start()
            began, cpu = time.perf_counter(), time.process_time()
            finished = load.finished if load is not None else 0
            if load is not None:
                load.recording = True
            try:
                latencies, fewest, at_agent = await chat.turns(session, options.turns, load)
            finally:
                wall = time.perf_counter() - began
                busy = (time.process_time() - cpu) / wall
                if load is not None:
                    load.recording = False
                    figures.beyond_agent += load.beyond_agent
                    figures.finished_during_turns += load.finished - finished
                    figures.loaded_turn_seconds += wall
                    figures.delegations_during_load += await load.stop()
                    figures.failures += load.failures
            if load is None:
                figures.quiet += latencies
                figures.quiet_round_p95.append(quantile(latencies, 95))
                figures.quiet_cpu.append(busy)
            else:
                figures.loaded += latencies
                figures.loaded_round_p95.append(quantile(latencies, 95))
                figures.loaded_cpu.append(busy)
                figures.fewest_in_flight = min(fewest, figures.fewest_in_flight or fewest)
                figures.fewest_at_agent = min(at_agent, figures.fewest_at_agent or at_agent)
    return figures


# ---- the run -------------------------------------------------------------------------------------------------


async def main(options: argparse.Namespace) -> dict[str, object]:
    async with scratch_database(options.database_url) as url:
        return await measure(options, url)


async def measure(options: argparse.Namespace, url: str) -> dict[str, object]:
    store = Store(create_engine(url), clock=fixed_clock)
    delegator = Delegator(store, Vault([Vault.generate_key()]), limits=LIMITS)
    runner = None
    connector = FakeConnector()
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT))
    try:
        async with vendor_agent(lifetime=options.time_limit + 60) as vendor:
            await upgrade(store.engine)
            seeded = await seed(store, options.warmup + options.samples + 1)
            config = {"transport": "http", "url": vendor.url}
            await delegator.registry(TENANT).register("mcp", ADAPTER, config, actor=LEADER)
            for tool in ("draft_email", "slow_report"):  # a server's tools are off until an admin enables them
                await delegator.registry(TENANT).enable_tool(ADAPTER, tool, actor=LEADER)
            agent = await delegator.registry(TENANT).open(ADAPTER)  # the pooled agent every delegation borrows
            info = mcp_types.Implementation(name="bench-direct", version="0")
            async with Client(vendor.url, client_info=info) as client:
                with counting_sql(store) as per_delegation:
                    await delegate_once(delegator, next(seeded.fresh), "draft_email", EMAIL)
                overhead = await measure_overhead(delegator, agent, client, seeded, options.samples, options.warmup)

            settings = Settings.from_env({})  # local mode: no credentials, loopback connectors only
            adapter = create_adapter(settings)
            bot = ChiefOfStaffBot(store, settings, clock=fixed_clock, delegator=delegator)
            bot.adapter = adapter
            runner, bot_url = await serve(create_app(store, adapter, bot, settings))
            await connector.start()
            chat = Chat(bot_url, connector, seeded.leader_titles)
            await chat.turns(session, options.warmup, None)  # the first turn also records the lead's chat
            with counting_sql(store) as per_turn:
                await chat.turns(session, 1, None)
            profiler = cProfile.Profile() if options.profile else None
            if profiler is not None:
                profiler.enable()
            try:
                figures = await measure_chat(chat, delegator, vendor, seeded, options, session)
            finally:
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(options.profile)
            await bot.drain()
            await delegator.close()
    finally:
        await session.close()
        if runner is not None:
            await runner.cleanup()
        await connector.close()
        await delegator.close()
        await store.close()

    medians = {name: statistics.median(values) for name, values in overhead.items()}
    quiet_p95, loaded_p95 = quantile(figures.quiet, 95), quantile(figures.loaded, 95)
    p95_ratio = loaded_p95 / quiet_p95
    beyond = len(figures.beyond_agent) >= 2
    return {
        "benchmark": "delegation",
        "database": store.engine.dialect.name,
        "samples": options.samples,
        "direct_ms": round(medians["direct"] * MS, 2),
        "agent_ms": round(medians["agent"] * MS, 2),
        "delegation_ms": round(medians["delegation"] * MS, 2),
        "request_ms": round(medians["request"] * MS, 2),
        "run_ms": round(medians["run"] * MS, 2),
        "agent_ratio": round(medians["agent"] / medians["direct"], 2),
        "delegation_ratio": round(medians["delegation"] / medians["direct"], 2),
        "bookkeeping_ms": round((medians["delegation"] - medians["agent"]) * MS, 2),
        "sql_statements_per_delegation": per_delegation.statements,
        "transactions_per_delegation": per_delegation.transactions,
        "concurrent_delegations": options.concurrent,
        "agent_seconds": options.agent_seconds,
        "rounds": options.rounds,
        "turns_per_round": options.turns,
        "quiet_p50_ms": round(statistics.median(figures.quiet) * MS, 1),
        "quiet_p95_ms": round(quiet_p95 * MS, 1),
        "loaded_p50_ms": round(statistics.median(figures.loaded) * MS, 1),
        "loaded_p95_ms": round(loaded_p95 * MS, 1),
        "p95_ratio": round(p95_ratio, 2),
        "goal_p95_ratio": GOAL_P95_RATIO,
        "chat_goal_met": p95_ratio <= GOAL_P95_RATIO,
        "quiet_rounds_p95_ms": [round(p * MS, 1) for p in figures.quiet_round_p95],
        "loaded_rounds_p95_ms": [round(p * MS, 1) for p in figures.loaded_round_p95],
        "fewest_delegations_in_flight": figures.fewest_in_flight,
        "fewest_agent_calls_running": figures.fewest_at_agent,
        "delegations_during_load": figures.delegations_during_load,
        "delegations_per_s_during_turns": round(figures.finished_during_turns / figures.loaded_turn_seconds, 1),
        "delegations_failed": len(figures.failures),
        "first_failure": figures.failures[0][:300] if figures.failures else None,
        "beyond_agent_p50_ms": round(statistics.median(figures.beyond_agent) * MS, 1) if beyond else None,
        "beyond_agent_p95_ms": round(quantile(figures.beyond_agent, 95) * MS, 1) if beyond else None,
        "sql_statements_per_turn": per_turn.statements,
        "transactions_per_turn": per_turn.transactions,
        "quiet_cpu_share": round(statistics.median(figures.quiet_cpu), 2),
        "loaded_cpu_share": round(statistics.median(figures.loaded_cpu), 2),
    }


async def bounded(options: argparse.Namespace) -> dict[str, object]:
    try:
        async with asyncio.timeout(options.time_limit):
            return await main(options)
    except TimeoutError:
        raise SystemExit(
            f"the benchmark did not finish in {options.time_limit} s: lower --samples, --turns or --rounds, "
            "or raise --time-limit"
        ) from None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=200, help="measured calls of each kind (interleaved)")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured calls of each kind, and turns, first")
    parser.add_argument("--concurrent", type=int, default=200, help="delegations in flight during a loaded round")
    parser.add_argument("--agent-seconds", type=float, default=2.0, help="how long the agent takes, on average")
    parser.add_argument("--turns", type=int, default=60, help="chat turns per round, one after another")
    parser.add_argument("--rounds", type=int, default=3, help="quiet and loaded rounds each, alternating")
    parser.add_argument("--time-limit", type=float, default=600.0, help="give up after this many seconds")
    parser.add_argument(
        "--profile", metavar="FILE", help="profile the chat rounds (cProfile, the event loop's thread) into FILE"
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server (postgresql+asyncpg://user@host:port/db) to make a database of its own on, "
        "dropped afterwards; by default a scratch SQLite file",
    )
    options = parser.parse_args()
    if options.database_url is not None and not options.database_url.startswith("postgresql"):
        parser.error("--database-url takes a PostgreSQL URL (the default is a scratch SQLite file)")
    if options.samples < 2 or options.warmup < 2 or options.turns < 2 or options.rounds < 1:
        parser.error("--samples, --warmup and --turns must be at least 2, --rounds at least 1")
    if options.concurrent < 1 or options.agent_seconds < 0:
        parser.error("--concurrent must be at least 1 and --agent-seconds not negative")
    result = asyncio.run(bounded(options))
    print(
        f"{result['database']}: `draft_email`, {result['samples']} of each, interleaved: "
        f"direct SDK call {result['direct_ms']} ms, "
        f"agent call {result['agent_ms']} ms ({result['agent_ratio']}x), "
        f"full delegation {result['delegation_ms']} ms ({result['delegation_ratio']}x); "
        f"bookkeeping {result['bookkeeping_ms']} ms a delegation"
    )
    print(
        f"a delegation: request {result['request_ms']} ms + run {result['run_ms']} ms (medians); "
        f"{result['sql_statements_per_delegation']} SQL statements in {result['transactions_per_delegation']} "
        f"transactions (a `{COMMAND}` turn: {result['sql_statements_per_turn']} in {result['transactions_per_turn']})"
    )
    print(
        f"`{COMMAND}` turns, {result['rounds']} rounds of {result['turns_per_round']} per condition, alternating: "
        f"quiet p50 {result['quiet_p50_ms']} ms / p95 {result['quiet_p95_ms']} ms; "
        f"with {result['concurrent_delegations']} delegations in flight p50 {result['loaded_p50_ms']} ms / "
        f"p95 {result['loaded_p95_ms']} ms; p95 ratio {result['p95_ratio']}x (goal <= {GOAL_P95_RATIO}x: "
        f"{'met' if result['chat_goal_met'] else 'not met'})"
    )
    print(
        f"load: agent {result['agent_seconds']} s on average per delegation, at least "
        f"{result['fewest_delegations_in_flight']} in flight at every turn (the agent running at least "
        f"{result['fewest_agent_calls_running']}), {result['delegations_during_load']} done "
        f"in all ({result['delegations_per_s_during_turns']}/s during the turns, each taking "
        f"{result['beyond_agent_p50_ms']} ms at the median, {result['beyond_agent_p95_ms']} ms at p95 beyond its "
        f"agent's time); the bot's process used {result['quiet_cpu_share']} CPU s per s quiet, "
        f"{result['loaded_cpu_share']} loaded"
    )
    if result["delegations_failed"]:
        print(f"{result['delegations_failed']} delegations of the load failed; the first: {result['first_failure']}")
    print(json.dumps(result))
