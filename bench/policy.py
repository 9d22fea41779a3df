"""Policy benchmark: one policy evaluation beside one chat turn, with 1,000 rules and 100,000 context facts.

Seeds a scratch database (SQLite by default; PostgreSQL with --database-url) with:
- a rule set of 1,000 rules for 50 agents: allow rules with limits per agent and capability, require and forbid
  rules that read the shared context (renewals, tickets within 48 h, sales contacts within a day…), and rules
  for every agent (`*`) that every action meets;
- 100,000 context facts about 5,000 accounts (20 each, of every type, over the last 60 days, some expired and
  some tickets closed since), inserted in bulk;
- the plan of bench/turns.py: a master plan, four tactical plans, 1,000 tasks and this week's plan.
Then, in one process:
- evaluates `--evaluations` random actions (an agent, a kind, a capability, one to three accounts, a discount,
  a channel…) one after the other through `PolicyEngine.evaluate`, as the bot will before each action, and
  times each call (the compiled rule set is cached, as in the bot; the first call, which compiles it, is timed
  apart). An evaluation asks the database once when a rule that could match reads facts (the version in force
  comes with them), or to confirm the version when that was last done over a second ago; otherwise not at all.
  The evaluations that asked are also timed apart;
- runs `--turns` `plan` turns, one at a time, through the real bot app on loopback (as bench/turns.py does, with
  a fake Bot Connector), and times each turn's server time inside the app (an aiohttp middleware around the
  request: from the request's arrival to the response, which includes sending the plan card to the connector).
Prints the median and p95 of an evaluation and of a turn, and the evaluation as a fraction of a turn
(goal: the median evaluation under 5 % of the median turn); and, for scale, the median cost of the least query
through the same store (check out a connection, `SELECT 1`), which an evaluation that reads facts cannot go below.

Usage: python bench/policy.py [--evaluations N] [--turns N] [--database-url URL] [--time-limit SECONDS]
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import event, insert, make_url, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.turns import NOW, TENANT, Side, fixed_clock, is_plan_card, seed, serve
from bot.http.app import create_app
from bot.settings import Settings
from bot.teams.botbuilder import create_adapter
from bot.teams.handler import ChiefOfStaffBot
from planner.domain.context import DEFAULT_TTLS, FactType
from planner.domain.governance import Action, ActionKind, GateCategory, PolicyDecision
from planner.domain.policy import RuleCache
from planner.services.policy import PolicyEngine, PolicySets
from planner.store import Store, create_engine
from planner.store.migrate import upgrade
from planner.store.schema import context_facts
from tests.fakes.connector import FakeConnector

RULES = 1_000
FACTS = 100_000
ACCOUNTS = 5_000
AGENTS = 50
CAPABILITIES = 12
REQUEST_TIMEOUT = 30.0


# ---- the data ------------------------------------------------------------------------------------------------


def rule_document(rng: random.Random) -> dict[str, Any]:
    """1,000 rules: 600 allow (12 per agent), 200 require, 150 forbid, 50 for every action."""
    rules: list[dict[str, Any]] = []
    for a in range(AGENTS):
        for c in range(CAPABILITIES):
            rules.append(
                {
                    "id": f"allow-{a}-{c}",
                    "description": f"agent-{a} may offer up to {5 + (a + c) % 25} % on cap-{c} on its own.",
                    "effect": "allow",
                    "agents": [f"agent-{a}"],
                    "kinds": ["delegation"],
                    "actions": [f"cap-{c}"],
                    "limits": {"discount": {"le": 5 + (a + c) % 25}, "budget": {"le": 10_000}},
                    **({"verdict": "stop"} if c % 5 == 0 else {}),
                }
            )
    facts_asked = [
        {"fact": "renewal_open"},
        {"fact": "sales_contact", "within": "24h"},
        {"fact": "ticket_opened", "within": "48h"},
        {"fact": "ticket_opened", "within": "7d", "match": {"severity": {"in": ["high", "urgent"]}}},
        {"fact": "purchase", "within": "30d", "absent": True},
        {"fact": "content_read", "within": "14d"},
    ]
    for n in range(200):
        rules.append(
            {
                "id": f"require-{n}",
                "description": f"Actions of agent-{n % AGENTS} on accounts in this state need a person ({n}).",
                "effect": "require",
                "agents": [f"agent-{n % AGENTS}"],
                "actions": [f"cap-{n % CAPABILITIES}"],
                "when": facts_asked[n % len(facts_asked)],
            }
        )
    for n in range(150):
        rules.append(
            {
                "id": f"forbid-{n}",
                "description": f"No outbound on {['email', 'sms', 'call'][n % 3]} in this state ({n}).",
                "effect": "forbid",
                "agents": [f"agent-{n % AGENTS}", f"agent-{(n + 7) % AGENTS}"],
                "kinds": ["delegation", "nudge"],
                "when": {"attributes": {"channel": ["email", "sms", "call"][n % 3], "direction": "outbound"}}
                | facts_asked[n % 3],
            }
        )
    for n in range(RULES - len(rules)):
        rules.append(
            {
                "id": f"everyone-{n}",
                "description": f"Every agent: region {n} campaigns over budget need a person.",
                "effect": "require",
                "when": {"attributes": {"region": f"region-{n}", "budget": {"gt": 5_000}}},
            }
        )
    rng.shuffle(rules)
    return {"rules": rules}


def fact_rows(rng: random.Random) -> list[dict[str, Any]]:
    """100,000 facts over 5,000 accounts, of every type, observed over the last 60 days."""
    types = list(FactType)
    rows = []
    for n in range(FACTS):
        fact_type = types[n % len(types)]
        observed = NOW - timedelta(minutes=rng.randrange(60 * 24 * 60))
        superseded = None
        if fact_type is FactType.TICKET_OPENED and rng.random() < 0.5:
            superseded = observed + timedelta(hours=rng.randrange(1, 72))
        attributes: dict[str, Any] = {"severity": rng.choice(["low", "normal", "high", "urgent"])}
        rows.append(
            {
                "tenant_id": TENANT,
                "source": "crm",
                "event_id": f"evt-{n}",
                "account": f"acct-{rng.randrange(ACCOUNTS)}",
                "type": fact_type.value,
                "attributes": attributes,
                "observed_at": observed,
                "expires_at": observed + DEFAULT_TTLS[fact_type],
                "received_at": observed,
                "superseded_at": superseded,
            }
        )
    return rows


def actions(rng: random.Random, count: int) -> list[Action]:
    found = []
    for _ in range(count):
        agent = f"agent-{rng.randrange(AGENTS)}" if rng.random() < 0.9 else None
        kind = rng.choice([ActionKind.DELEGATION] * 3 + [ActionKind.NUDGE, ActionKind.TOOL_CALL])
        found.append(
            Action(
                tenant_id=TENANT,
                kind=kind,
                actor=f"agent:{agent}" if agent else "bot",
                agent=agent,
                name=f"cap-{rng.randrange(CAPABILITIES)}",
                subject=f"task:{rng.randrange(1000)}",
                accounts=tuple(f"acct-{rng.randrange(ACCOUNTS)}" for _ in range(rng.randint(1, 3))),
                attributes={
                    "discount": rng.randrange(0, 40),
                    "budget": rng.randrange(0, 20_000),
                    "channel": rng.choice(["email", "sms", "call", "ads"]),
                    "direction": rng.choice(["outbound", "inbound"]),
                    "region": f"region-{rng.randrange(100)}",
                },
                categories=(GateCategory.BUDGET,) if rng.random() < 0.05 else (),
            )
        )
    return found


# ---- the measurements ----------------------------------------------------------------------------------------


def quantiles(samples: list[float]) -> tuple[float, float]:
    """Median and p95."""
    return statistics.median(samples), statistics.quantiles(samples, n=100, method="inclusive")[94]


async def time_evaluations(store: Store, count: int, rng: random.Random) -> dict[str, Any]:
    engine = PolicyEngine(store, TENANT, cache=RuleCache())
    batch = actions(rng, count + 1)
    began = time.perf_counter()
    await engine.evaluate(batch[0])  # reads and compiles the rule set
    first = time.perf_counter() - began
    samples: list[float] = []
    querying: list[float] = []
    verdicts: collections.Counter[str] = collections.Counter()
    matched = facts = queries = 0

    def counted(*_: Any) -> None:
        nonlocal queries
        queries += 1

    event.listen(store.engine.sync_engine, "before_cursor_execute", counted)
    try:
        for action in batch[1:]:
            before = queries
            began = time.perf_counter()
            decision: PolicyDecision = await engine.evaluate(action)
            took = time.perf_counter() - began
            samples.append(took)
            if queries > before:
                querying.append(took)
            verdicts[decision.verdict.value] += 1
            matched += len(decision.matched)
            facts += len(decision.facts)
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", counted)
    median, p95 = quantiles(samples)
    querying_median, querying_p95 = quantiles(querying)
    return {
        "first": first,
        "median": median,
        "p95": p95,
        "queries_per_evaluation": queries / count,
        "querying_share": len(querying) / count,
        "querying_median": querying_median,
        "querying_p95": querying_p95,
        "verdicts": dict(sorted(verdicts.items())),
        "matched_per_evaluation": matched / count,
        "facts_per_evaluation": facts / count,
    }


async def time_round_trip(store: Store, count: int) -> float:
    """The median of the least a query costs through this store: check out a connection, ask for one number."""
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        async with store.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


async def time_turns(store: Store, count: int, warmup: int) -> dict[str, Any]:
    """Server time of `plan` turns posted one at a time to the real bot app on loopback."""
    server_times: list[float] = []

    @web.middleware
    async def timed(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
        began = time.perf_counter()
        try:
            return await handler(request)
        finally:
            if request.path == "/api/messages":
                server_times.append(time.perf_counter() - began)

    settings = Settings.from_env({})  # local mode: no credentials, loopback connectors only
    adapter = create_adapter(settings)
    bot = ChiefOfStaffBot(store, settings, clock=fixed_clock)
    bot.adapter = adapter
    app = create_app(store, adapter, bot, settings)
    app.middlewares.append(timed)
    runner, url = await serve(app)
    connector = FakeConnector()
    await connector.start()
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT))
    side = Side("bot", url, connector, is_plan_card, "a:personal-bench-policy")
    try:
        for number in range(warmup + count):
            async with session.post(url, json=side.activity()) as response:
                await response.read()
                if response.status not in (200, 201):
                    raise RuntimeError(f"turn {number} answered HTTP {response.status}")
            if number == warmup - 1:
                server_times.clear()
        sent = await connector.wait_for(warmup + count, within=REQUEST_TIMEOUT)
        wrong = [s.body for s in sent if not is_plan_card(s.body)]
        if wrong:
            raise RuntimeError(f"{len(wrong)} replies are not the plan card: {json.dumps(wrong[0])[:300]}")
        await bot.drain()
    finally:
        await session.close()
        await runner.cleanup()
        await connector.close()
    median, p95 = quantiles(server_times)
    return {"median": median, "p95": p95, "turns": len(server_times)}


# ---- the run -------------------------------------------------------------------------------------------------


async def main(database_url: str | None, evaluations: int, turns: int) -> dict[str, object]:
    scratch = None
    if database_url is None:
        scratch = tempfile.TemporaryDirectory()
        url = f"sqlite+aiosqlite:///{Path(scratch.name) / 'bench.db'}"
    else:
        name = f"cos_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()
        url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    store = Store(create_engine(url), clock=fixed_clock)
    rng = random.Random(11)
    try:
        began = time.perf_counter()
        await upgrade(store.engine)
        await seed(store)
        loaded = await PolicySets(store, TENANT).load(rule_document(rng), actor="bench")
        rows = fact_rows(rng)
        async with store.engine.begin() as conn:
            for start in range(0, len(rows), 10_000):
                await conn.execute(insert(context_facts), rows[start : start + 10_000])
            await conn.execute(text("ANALYZE"))
        del rows
        gc.collect()
        seeded = time.perf_counter() - began
        round_trip = await time_round_trip(store, evaluations)
        policy = await time_evaluations(store, evaluations, rng)
        turn = await time_turns(store, turns, warmup=max(turns // 10, 5))
    finally:
        await store.close()
        if scratch is not None:
            scratch.cleanup()
        if database_url is not None:
            admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
            await admin.dispose()

    ms = 1000
    return {
        "benchmark": "policy",
        "backend": make_url(url).get_backend_name(),
        "rules": len(loaded.rules),
        "facts": FACTS,
        "accounts": ACCOUNTS,
        "seed_seconds": round(seeded, 1),
        "evaluations": evaluations,
        "evaluation_p50_ms": round(policy["median"] * ms, 3),
        "evaluation_p95_ms": round(policy["p95"] * ms, 3),
        "first_evaluation_ms": round(policy["first"] * ms, 1),
        "queries_per_evaluation": round(policy["queries_per_evaluation"], 3),
        "querying_share": round(policy["querying_share"], 3),
        "querying_evaluation_p50_ms": round(policy["querying_median"] * ms, 3),
        "querying_evaluation_p95_ms": round(policy["querying_p95"] * ms, 3),
        "round_trip_p50_ms": round(round_trip * ms, 3),
        "verdicts": policy["verdicts"],
        "matched_rules_per_evaluation": round(policy["matched_per_evaluation"], 2),
        "facts_cited_per_evaluation": round(policy["facts_per_evaluation"], 2),
        "turn_timing": "server time of a `plan` turn in the real bot app on loopback (aiohttp middleware)",
        "turns": turn["turns"],
        "turn_p50_ms": round(turn["median"] * ms, 2),
        "turn_p95_ms": round(turn["p95"] * ms, 2),
        "p50_fraction_of_turn": round(policy["median"] / turn["median"], 4),
        "p95_fraction_of_turn": round(policy["p95"] / turn["p95"], 4),
        "querying_p50_fraction_of_turn": round(policy["querying_median"] / turn["median"], 4),
        "goal_p50_fraction": 0.05,
    }


async def bounded(options: argparse.Namespace) -> dict[str, object]:
    try:
        async with asyncio.timeout(options.time_limit):
            return await main(options.database_url, options.evaluations, options.turns)
    except TimeoutError:
        raise SystemExit(
            f"the benchmark did not finish in {options.time_limit} s: lower --evaluations or --turns"
        ) from None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evaluations", type=int, default=2_000, help="policy evaluations to time")
    parser.add_argument("--turns", type=int, default=200, help="`plan` turns to time")
    parser.add_argument("--database-url", help="a PostgreSQL URL; a scratch database is created and dropped")
    parser.add_argument("--time-limit", type=float, default=300.0, help="give up after this many seconds")
    options = parser.parse_args()
    if options.evaluations < 20 or options.turns < 20:
        parser.error("--evaluations and --turns must be at least 20")
    result = asyncio.run(bounded(options))
    print(
        f"{result['rules']} rules, {result['facts']} facts about {result['accounts']} accounts on "
        f"{result['backend']} (seeded in {result['seed_seconds']} s)"
    )
    print(
        f"policy evaluation: p50 {result['evaluation_p50_ms']} ms, p95 {result['evaluation_p95_ms']} ms over "
        f"{result['evaluations']} actions (first, compiling the rules: {result['first_evaluation_ms']} ms); "
        f"verdicts {result['verdicts']}, {result['matched_rules_per_evaluation']} rules matched per action"
    )
    print(
        f"{result['querying_share']:.0%} of the evaluations asked the database (the rest trusted the rule set "
        f"confirmed within the last second and needed no facts): p50 {result['querying_evaluation_p50_ms']} ms, "
        f"p95 {result['querying_evaluation_p95_ms']} ms, {result['queries_per_evaluation']} queries per evaluation"
    )
    print(f"the least a query costs through the same store (connect, SELECT 1): p50 {result['round_trip_p50_ms']} ms")
    print(f"`plan` turn, server time: p50 {result['turn_p50_ms']} ms, p95 {result['turn_p95_ms']} ms")
    print(
        f"an evaluation is {result['p50_fraction_of_turn']:.2%} of a turn at the median, "
        f"{result['p95_fraction_of_turn']:.2%} at p95 (goal: under 5 % at the median); one that asks the database "
        f"{result['querying_p50_fraction_of_turn']:.2%} at the median"
    )
    print(json.dumps(result))
