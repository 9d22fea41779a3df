"""A KPI named without a plan: the one the master plan defines, unless two master plans track that name."""

from __future__ import annotations

from datetime import date

import pytest

from planner.domain.errors import InvalidValue
from planner.domain.model import MetricSpec, Window
from planner.services.plans import Plans
from planner.store import Store

Q1 = Window(start=date(2026, 1, 1), end=date(2026, 3, 31))
JAN = Window(start=date(2026, 1, 1), end=date(2026, 1, 31))
SQLS = [MetricSpec(name="SQLs", target=500, unit="SQL")]


async def test_a_kpi_the_master_plan_defines_is_found_there_though_its_tactical_plans_carry_it(store: Store) -> None:
    plans = Plans(store, "contoso")
    master = await plans.create_master_plan(title="Q1", owner="aad-lead", window=Q1, metrics=SQLS, actor="aad-lead")
    await plans.create_tactical_plan(master.id, title="Jan", owner="aad-lead", window=JAN, metrics=SQLS, actor="x")
    found = await plans.find_metric("sqls")
    assert found.plan_id == master.id

    other = await plans.create_master_plan(title="EMEA", owner="aad-lead", window=Q1, metrics=SQLS, actor="aad-lead")
    with pytest.raises(InvalidValue) as ambiguous:
        await plans.find_metric("SQLs")
    assert ambiguous.value.details == {"plans": (master.id, other.id)}
    assert (await plans.find_metric("SQLs", plan_id=other.id)).plan_id == other.id
