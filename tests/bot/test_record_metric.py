"""`record <KPI> <value>` in Teams: one KPI whatever tiers exist, each reading counted at its own date."""

from __future__ import annotations

from datetime import UTC, datetime

from planner.services.plans import Plans
from tests.bot.conftest import TENANT, TeamsUser
from tests.conftest import FakeClock

NEW_PLAN = "new plan 500 SQLs by 31 March from 2026-01-01 to 2026-03-31 kpi SQLs 500 tolerance 10%"


async def test_record_sqls_means_the_kpi_once_tactical_plans_exist_and_shows_it_at_every_tier(
    lead: TeamsUser, clock: FakeClock
) -> None:
    await lead.ask(NEW_PLAN)
    [january] = await lead.ask("tactical January push from 2026-01-01 to 2026-01-31 kpi SQLs 150")
    [february] = await lead.ask("tactical February push from 2026-02-01 to 2026-02-28 kpi SQLs 170")
    assert "Tactical plan P2 created" in january
    assert "Tactical plan P3 created" in february
    assert january.startswith("Tactical plan P2 created with 1 KPI: January push (1 Jan \u2013 31 Jan 2026).")
    assert "2026-01-01" not in january

    clock.now = datetime(2026, 2, 3, 10, tzinfo=UTC)
    # The month-end figure, backdated: judged at its own date, it closes January (met) and opens February.
    [backdated] = await lead.ask("record SQLs 160 on 2026-01-31")
    assert backdated.startswith("Recorded SQLs = 160 as of Sat 31 Jan on P1 (target 500).")
    assert "Counts for P2 January push: 160 of its 150, met." in backdated
    assert "P3" not in backdated
    [ahead] = await lead.ask("record SQLs 200 on 2026-02-10")
    assert ahead.startswith("Tue 10 Feb 2026 is in the future: a reading is of something already measured.")

    [today] = await lead.ask("record SQLs 170")  # the README's own form
    assert today.startswith("Recorded SQLs = 170 on P1 (target 500). Expected by now:")
    assert "Counts for P3 February push: 10 of its 170, off track." in today  # 18 expected after 3 of 28 days

    clock.advance(hours=2)
    [in_plan] = await lead.ask("record SQLs 175 in P3")  # named on February's plan: still one reading of the KPI
    assert in_plan.startswith("Recorded SQLs = 175 on P1")
    assert "Counts for P3 February push: 15 of its 170" in in_plan
    plans = Plans(lead.running.store, TENANT)
    [kpi] = await plans.list_metrics(1)
    assert [r.value for r in await plans.readings(kpi.id)] == [160, 170, 175]


async def test_a_reading_backdated_behind_a_later_one_says_the_later_one_is_the_figure_now(
    lead: TeamsUser, clock: FakeClock
) -> None:
    await lead.ask(NEW_PLAN)
    clock.now = datetime(2026, 2, 3, 10, tzinfo=UTC)
    await lead.ask("record SQLs 170")
    [backdated] = await lead.ask("record SQLs 150 on 2026-01-31")
    assert backdated.startswith("Recorded SQLs = 150 as of Sat 31 Jan on P1 (target 500).")
    # Not "Expected by now: …" after 150, as if 150 were this morning's figure.
    assert "The latest reading, 170, stands:" in backdated
    assert "expected by now" in backdated
