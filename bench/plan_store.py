"""Plan store benchmark: the store's rollup and due-task query beside hand-written SQL on the same data.

Seeds 1,000 plans (100 master plans of 9 tactical plans) and 100,000 tasks (1,000 per master plan), then prints:
- the median time to roll up one master plan of 1,000 tasks through the store, and through one hand-written
  SQL aggregate doing the same work, as a ratio (goal: within 3x);
- the median time to list the tasks due in a window (200 of them) through the store and through hand-written
  SQL, with 10,000 and with 100,000 tasks in the table (goal: the cost follows the 200 due tasks, not the
  table: a 100k/10k ratio near 1).

Usage: python bench/plan_store.py [--database-url URL] [--repeats N]
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.domain.model import Tier
from planner.services.plans import Plans
from planner.store import Store, create_engine
from planner.store.migrate import upgrade
from planner.store.schema import metric_readings, metrics, plans, tasks

TENANT = "bench-tenant"
MASTERS = 100
TACTICALS_PER_MASTER = 9
TASKS_PER_MASTER = 1_000
YEAR = (date(2026, 1, 1), date(2026, 12, 31))
# The due window holds exactly PROBE_TASKS tasks; no other task is ever due in it.
PROBE = (date(2026, 6, 1), date(2026, 6, 7))
PROBE_TASKS = 200
AS_OF = date(2026, 6, 4)

ROLLUP_SQL = """
SELECT t.plan_id,
       count(*) AS total,
       sum(CASE WHEN t.status = 'done' THEN 1 ELSE 0 END) AS done,
       sum(CASE WHEN t.status <> 'done' AND t.due_on < :as_of THEN 1 ELSE 0 END) AS overdue,
       sum(CASE WHEN t.status = 'blocked' THEN 1 ELSE 0 END) AS blocked
FROM tasks t
WHERE t.tenant_id = :tenant AND t.master_id = :master
GROUP BY t.plan_id
"""
ROLLUP_PLANS_SQL = "SELECT * FROM plans WHERE tenant_id = :tenant AND (id = :master OR master_id = :master)"
ROLLUP_METRICS_SQL = """
SELECT m.id, m.plan_id, m.target, m.baseline, m.tolerance,
       (SELECT r.value FROM metric_readings r WHERE r.metric_id = m.id AND r.at < :cutoff
        ORDER BY r.at DESC, r.id DESC LIMIT 1) AS latest
FROM metrics m JOIN plans p ON p.id = m.plan_id
WHERE m.tenant_id = :tenant AND (p.id = :master OR p.master_id = :master)
"""
DUE_SQL = """
SELECT * FROM tasks
WHERE tenant_id = :tenant AND due_on >= :start AND due_on <= :end AND status <> 'done'
ORDER BY due_on, id
"""


def random_due(rng: random.Random, window: tuple[date, date]) -> date:
    """A due date inside `window` but never inside the probe week."""
    span = (window[1] - window[0]).days
    while True:
        day = window[0] + timedelta(days=rng.randrange(span + 1))
        if not PROBE[0] <= day <= PROBE[1]:
            return day


async def seed_plans(engine: AsyncEngine) -> list[tuple[int, list[tuple[int, date, date]]]]:
    """100 master plans of 9 tactical plans each, with one metric per master plan; returns their ids."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    tree = []
    async with engine.begin() as conn:
        for m in range(MASTERS):
            master_id = (
                await conn.execute(
                    insert(plans)
                    .values(
                        tenant_id=TENANT,
                        tier=Tier.MASTER.value,
                        parent_id=None,
                        master_id=None,
                        title=f"master {m}",
                        owner="leader",
                        starts_on=YEAR[0],
                        ends_on=YEAR[1],
                        constraints=[],
                        created_at=now,
                        version=1,
                    )
                    .returning(plans.c.id)
                )
            ).scalar_one()
            tacticals = []
            for t in range(TACTICALS_PER_MASTER):
                start = YEAR[0] + timedelta(days=40 * t)
                end = min(start + timedelta(days=80), YEAR[1])
                tactical_id = (
                    await conn.execute(
                        insert(plans)
                        .values(
                            tenant_id=TENANT,
                            tier=Tier.TACTICAL.value,
                            parent_id=master_id,
                            master_id=master_id,
                            title=f"tactical {m}.{t}",
                            owner="leader",
                            starts_on=start,
                            ends_on=end,
                            constraints=[],
                            created_at=now,
                            version=1,
                        )
                        .returning(plans.c.id)
                    )
                ).scalar_one()
                tacticals.append((tactical_id, start, end))
            metric_id = (
                await conn.execute(
                    insert(metrics)
                    .values(
                        tenant_id=TENANT,
                        plan_id=master_id,
                        name="SQLs",
                        unit="",
                        direction="up",
                        baseline=0,
                        target=500,
                        tolerance=0.1,
                        version=1,
                    )
                    .returning(metrics.c.id)
                )
            ).scalar_one()
            await conn.execute(
                insert(metric_readings),
                [
                    dict(
                        tenant_id=TENANT,
                        metric_id=metric_id,
                        at=now + timedelta(days=7 * w),
                        value=10.0 * w,
                        source="bench",
                    )
                    for w in range(30)
                ],
            )
            tree.append((master_id, tacticals))
    return tree


async def seed_tasks(
    engine: AsyncEngine, tree: list[tuple[int, list[tuple[int, date, date]]]], count: int, probe: int, seed: int
) -> None:
    """`count` tasks spread over the masters, `probe` of them due in the probe week (open)."""
    rng = random.Random(seed)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    statuses = ["todo", "doing", "done", "done", "blocked", "delegated"]
    rows = []
    for n in range(count):
        master_id, tacticals = tree[n % len(tree)]
        tactical_id, start, end = tacticals[rng.randrange(len(tacticals))]
        if n < probe:
            june = next(t for t in tacticals if t[1] <= PROBE[0] and PROBE[1] <= t[2])
            tactical_id, due, status = june[0], PROBE[0] + timedelta(days=n % 7), "todo"
        else:
            due, status = random_due(rng, (start, end)), rng.choice(statuses)
        rows.append(
            dict(
                tenant_id=TENANT,
                plan_id=tactical_id,
                master_id=master_id,
                title=f"task {n}",
                owner=f"member-{n % 40}",
                due_on=due,
                status=status,
                milestone=n % 25 == 0,
                created_at=now,
                version=1,
            )
        )
    async with engine.begin() as conn:
        for i in range(0, len(rows), 5_000):
            await conn.execute(insert(tasks), rows[i : i + 5_000])
        await conn.execute(text("ANALYZE"))


async def query_plan(engine: AsyncEngine, sql: str, params: dict[str, object]) -> str:
    """The database's own one-line account of how it runs `sql` (to show the index is used)."""
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = (await conn.execute(text("EXPLAIN QUERY PLAN " + sql), params)).all()
            return "; ".join(str(r[-1]) for r in rows)
        rows = (await conn.execute(text("EXPLAIN " + sql), params)).all()
        return " | ".join(str(r[0]).strip() for r in rows[:4])


async def median_seconds(fn: Callable[[], Awaitable[object]], repeats: int) -> float:
    await fn()  # warm up caches and compiled statements
    samples = []
    for _ in range(repeats):
        began = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


async def side_by_side(
    store_fn: Callable[[], Awaitable[object]], sql_fn: Callable[[], Awaitable[object]], repeats: int
) -> tuple[float, float]:
    """Medians of the two, measured in alternating rounds so machine noise hits both alike."""
    store_samples, sql_samples = [], []
    for _ in range(repeats):
        store_samples.append(await median_seconds(store_fn, 3))
        sql_samples.append(await median_seconds(sql_fn, 3))
    return statistics.median(store_samples), statistics.median(sql_samples)


async def main(database_url: str | None, repeats: int) -> dict[str, object]:
    scratch = None
    admin_url = None
    if database_url is None:
        scratch = tempfile.TemporaryDirectory()
        url = f"sqlite+aiosqlite:///{Path(scratch.name) / 'bench.db'}"
    else:
        admin_url = database_url
        name = f"cos_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    try:
        await upgrade(engine)
        began = time.perf_counter()
        tree = await seed_plans(engine)
        await seed_tasks(engine, tree, 10_000, PROBE_TASKS, seed=1)
        tenant = Plans(Store(engine), TENANT)
        cutoff = datetime.combine(AS_OF + timedelta(days=1), datetime.min.time(), tzinfo=UTC)

        async def store_due() -> object:
            return await tenant.tasks_due(*PROBE)

        async def sql_due() -> object:
            async with engine.connect() as conn:
                return (await conn.execute(text(DUE_SQL), dict(tenant=TENANT, start=PROBE[0], end=PROBE[1]))).all()

        due_store_10k, due_sql_10k = await side_by_side(store_due, sql_due, repeats)
        assert len(await tenant.tasks_due(*PROBE)) == PROBE_TASKS

        await seed_tasks(engine, tree, 90_000, 0, seed=2)
        seeded = time.perf_counter() - began
        due_store_100k, due_sql_100k = await side_by_side(store_due, sql_due, repeats)
        assert len(await tenant.tasks_due(*PROBE)) == PROBE_TASKS
        due_plan = await query_plan(engine, DUE_SQL, dict(tenant=TENANT, start=PROBE[0], end=PROBE[1]))

        master_id = tree[0][0]

        async def store_rollup() -> object:
            return await tenant.rollup(master_id, as_of=AS_OF)

        async def sql_rollup() -> object:
            params = dict(tenant=TENANT, master=master_id, as_of=AS_OF, cutoff=cutoff)
            async with engine.connect() as conn:
                tree_rows = (await conn.execute(text(ROLLUP_PLANS_SQL), params)).all()
                counts = (await conn.execute(text(ROLLUP_SQL), params)).all()
                latest = (await conn.execute(text(ROLLUP_METRICS_SQL), params)).all()
            return tree_rows, counts, latest

        rollup = await tenant.rollup(master_id, as_of=AS_OF)
        assert rollup.counts.total == TASKS_PER_MASTER, rollup.counts
        rollup_store, rollup_sql = await side_by_side(store_rollup, sql_rollup, repeats)
    finally:
        await engine.dispose()
        if scratch is not None:
            scratch.cleanup()
        if admin_url is not None:
            admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
            await admin.dispose()

    ms = 1000
    figures: dict[str, object] = {
        "benchmark": "plan_store",
        "backend": make_url(url).get_backend_name(),
        "plans": MASTERS * (1 + TACTICALS_PER_MASTER),
        "tasks": 100_000,
        "seed_seconds": round(seeded, 2),
        "rollup_master_tasks": TASKS_PER_MASTER,
        "rollup_store_ms": round(rollup_store * ms, 3),
        "rollup_sql_ms": round(rollup_sql * ms, 3),
        "rollup_ratio": round(rollup_store / rollup_sql, 2),
        "due_tasks": PROBE_TASKS,
        "due_store_ms_10k": round(due_store_10k * ms, 3),
        "due_sql_ms_10k": round(due_sql_10k * ms, 3),
        "due_store_ms_100k": round(due_store_100k * ms, 3),
        "due_sql_ms_100k": round(due_sql_100k * ms, 3),
        "due_ratio_store_vs_sql": round(due_store_100k / due_sql_100k, 2),
        "due_growth_100k_vs_10k": round(due_store_100k / due_store_10k, 2),
        "due_query_plan": due_plan,
    }
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="a PostgreSQL URL; a scratch database is created and dropped")
    parser.add_argument("--repeats", type=int, default=15, help="rounds per measurement (median reported)")
    options = parser.parse_args()
    result = asyncio.run(main(options.database_url, options.repeats))
    print(
        f"backend: {result['backend']}, {result['plans']} plans, {result['tasks']} tasks "
        f"(seeded in {result['seed_seconds']} s)"
    )
    print(
        f"roll up one master plan of {result['rollup_master_tasks']} tasks: store {result['rollup_store_ms']} ms, "
        f"hand-written SQL {result['rollup_sql_ms']} ms, ratio {result['rollup_ratio']}x (goal <= 3x)"
    )
    print(
        f"tasks due in a window ({result['due_tasks']} due): 10k rows store {result['due_store_ms_10k']} ms / "
        f"SQL {result['due_sql_ms_10k']} ms; 100k rows store {result['due_store_ms_100k']} ms / "
        f"SQL {result['due_sql_ms_100k']} ms; store/SQL {result['due_ratio_store_vs_sql']}x (goal <= 3x), "
        f"100k/10k {result['due_growth_100k_vs_10k']}x (goal ~1)"
    )
    print(f"due query plan: {result['due_query_plan']}")
    print(json.dumps(result))
