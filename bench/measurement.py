"""Measurement benchmark: what "how are we doing?" and the weekly digest cost on a year's plan.

Seeds a scratch database (SQLite by default; PostgreSQL with --database-url) with a master plan of one year,
twelve monthly tactical plans of `--tasks` tasks each (the first half done around their due days, some late),
25 KPIs (one on the master, two per tactical plan) read weekly, and a weekly plan per week so some tasks are
carried over. Then it times, `--runs` times as of 1 July:
- reading the facts and computing every figure, forecast and rule recommendation (`Measurement.report`);
- drawing the chart (`chart_png`: matplotlib, Agg, 64-colour PNG);
- building the card and checking it fits a Teams message;
- the whole answer as the bot gives it (`measured`: the above plus writing the recommendations to the decision
  log, once a day; the chart drawn in a worker thread).
Prints the median and p95 of each and the sizes (PNG bytes, card bytes). Goal: the whole answer well inside the
15 s Teams allows a turn, and under a second at p95 so it can be answered in the turn.

Usage: python bench/measurement.py [--tasks N] [--runs N] [--database-url URL]
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scratch import scratch_database
from bot.cards.digest import measurement_card
from bot.cards.elements import CARD_BUDGET_BYTES, serialized_size
from bot.charts import chart_png, data_uri
from bot.operations.measurement import measured
from bot.text.recommendations import RuleRecommender
from planner.domain.model import MetricSpec, TaskChanges, TaskStatus, Window, iso_week_of
from planner.services.plans import Plans
from planner.services.tenants import Tenants
from planner.store import Store, create_engine
from planner.store.migrate import upgrade

AS_OF = date(2026, 7, 1)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 9, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def seed(store: Store, clock: Clock, tenant_id: str, tasks_per_plan: int) -> int:
    plans = Plans(store, tenant_id)
    rng = random.Random(7)
    year = Window(start=date(2026, 1, 1), end=date(2026, 12, 31))
    master = await plans.create_master_plan(
        title="Pipeline 2026", owner="aad-lead", window=year, metrics=[MetricSpec(name="SQLs", target=5000)], actor="x"
    )
    for month in range(1, 13):
        start = date(2026, month, 1)
        end = (date(2026, month + 1, 1) if month < 12 else date(2027, 1, 1)) - timedelta(days=1)
        tactical = await plans.create_tactical_plan(
            master.id,
            title=f"Programme {month}",
            owner="aad-lead",
            window=Window(start=start, end=end),
            metrics=[
                MetricSpec(name=f"Signups {month}", target=400),
                MetricSpec(name=f"Cost {month}", target=40, baseline=60),
            ],
            actor="x",
        )
        for n in range(tasks_per_plan):
            due = start + timedelta(days=rng.randrange((end - start).days + 1))
            clock.now = datetime.combine(start, datetime.min.time(), tzinfo=UTC)
            task = await plans.add_task(
                tactical.id, title=f"Task {n}", due_on=due, owner=f"aad-member-{n % 8}", milestone=n == 0, actor="x"
            )
            if due < AS_OF - timedelta(days=3) and rng.random() < 0.9:
                clock.now = datetime.combine(due, datetime.min.time(), tzinfo=UTC) + timedelta(
                    hours=rng.randrange(-72, 96)
                )
                await plans.update_task(task.id, TaskChanges(status=TaskStatus.DONE), actor="x")
        day = start
        while day <= min(end, AS_OF):
            clock.now = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
            await plans.derive_weekly_plan(tactical.id, iso_week_of(day), actor="x")
            day += timedelta(days=7)
    all_metrics = [m for plan in await plans.list_plans() for m in await plans.list_metrics(plan.id)]
    for metric in all_metrics:
        day = date(2026, 1, 4)
        while day < AS_OF:
            value = metric.baseline + (metric.target - metric.baseline) * (day - date(2026, 1, 1)).days / 365 * 0.9
            await plans.record_reading(
                metric.id, value, at=datetime.combine(day, datetime.min.time(), tzinfo=UTC), actor="x"
            )
            day += timedelta(days=7)
    clock.now = datetime.combine(AS_OF, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
    return master.id


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return round(statistics.median(ordered) * 1000, 1), round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1)


async def run(options: argparse.Namespace) -> dict[str, object]:
    async with scratch_database(options.database_url) as url:
        return await measure_answers(options, url)


async def measure_answers(options: argparse.Namespace, url: str) -> dict[str, object]:
    clock = Clock()
    store = Store(create_engine(url), clock=clock)
    tenant_id = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        await upgrade(store.engine)
        started = time.perf_counter()
        master_id = await seed(store, clock, tenant_id, options.tasks)
        services = Tenants(store)(tenant_id)
        seeded = time.perf_counter() - started
        figures, chart, card, whole = [], [], [], []
        png = b""
        built: dict[str, object] = {}
        for _ in range(options.runs):
            t0 = time.perf_counter()
            report = await services.measurement.report(master_id, AS_OF, RuleRecommender())
            t1 = time.perf_counter()
            png = chart_png(report)
            t2 = time.perf_counter()
            built = measurement_card(report, chart_url=data_uri(png))
            t3 = time.perf_counter()
            await measured(services, master_id, AS_OF)
            t4 = time.perf_counter()
            figures.append(t1 - t0)
            chart.append(t2 - t1)
            card.append(t3 - t2)
            whole.append(t4 - t3)
        result: dict[str, object] = {
            "backend": store.engine.dialect.name,
            "tasks": 12 * options.tasks,
            "kpis": 25,
            "runs": options.runs,
            "seed_seconds": round(seeded, 1),
            "png_bytes": len(png),
            "card_bytes": serialized_size(built),
            "card_fits": serialized_size(built) <= CARD_BUDGET_BYTES,
            "tasks_done": report.productivity.done,
            "carried_over": report.productivity.carried_over,
        }
        for name, samples in (("figures", figures), ("chart", chart), ("card", card), ("answer", whole)):
            result[f"{name}_p50_ms"], result[f"{name}_p95_ms"] = percentiles(samples)
        return result
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50, help="tasks per monthly tactical plan (12 plans)")
    parser.add_argument("--runs", type=int, default=20, help="times each step is timed")
    parser.add_argument("--database-url", help="a PostgreSQL URL; a scratch database is created and dropped")
    options = parser.parse_args()
    if options.runs < 5 or options.tasks < 1:
        parser.error("--runs must be at least 5 and --tasks at least 1")
    result = asyncio.run(run(options))
    print(
        f"{result['tasks']} tasks ({result['tasks_done']} done, {result['carried_over']} carried over), "
        f"{result['kpis']} KPIs read weekly, on {result['backend']} (seeded in {result['seed_seconds']} s)"
    )
    for name, what in (
        ("figures", "facts, figures, forecasts, rule recommendations"),
        ("chart", "chart PNG"),
        ("card", "card"),
        ("answer", "the whole answer (with the decision log, chart in a thread)"),
    ):
        print(f"{what}: p50 {result[f'{name}_p50_ms']} ms, p95 {result[f'{name}_p95_ms']} ms")
    print(f"PNG {result['png_bytes']} bytes; card {result['card_bytes']} bytes (fits a message: {result['card_fits']})")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
