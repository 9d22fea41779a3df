"""A tactical plan's retrospective, saved as a playbook that seeds the next tactical plan."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from bot.text.retrospectives import learned, why_slipped
from planner.domain.model import MetricSpec, TaskChanges, TaskStatus, Window
from planner.services.approvals import Approvers
from planner.services.plans import Plans
from planner.services.playbooks import PlaybookNotFound, Playbooks
from planner.store import Store
from tests.conftest import FakeClock
from tests.saying import raises_saying

TENANT = "tenant-contoso"


async def finished_launch(store: Store, clock: FakeClock) -> tuple[int, int]:
    """A master plan for the half year and a March launch that reached 60 of 100 signups, one task late."""
    plans = Plans(store, TENANT)
    clock.now = datetime(2026, 3, 1, 9, tzinfo=UTC)
    master = await plans.create_master_plan(
        title="H1", owner="aad-lead", window=Window(start=date(2026, 1, 1), end=date(2026, 6, 30)), actor="aad-lead"
    )
    launch = await plans.create_tactical_plan(
        master.id,
        title="March launch",
        owner="aad-lead",
        window=Window(start=date(2026, 3, 2), end=date(2026, 3, 29)),
        metrics=[MetricSpec(name="Signups", target=100)],
        actor="aad-lead",
    )
    page = await plans.add_task(launch.id, title="Landing page", due_on=date(2026, 3, 6), owner="aad-web", actor="x")
    await plans.add_task(launch.id, title="Launch day", due_on=date(2026, 3, 20), milestone=True, actor="x")
    await Approvers(store, TENANT).assign("brand", "aad-web", actor="aad-admin")
    await plans.update_task(
        page.id, TaskChanges(status=TaskStatus.BLOCKED, blocked_reason="waiting for copy"), actor="x"
    )
    clock.now = datetime(2026, 3, 9, 9, tzinfo=UTC)
    await plans.update_task(page.id, TaskChanges(status=TaskStatus.DONE), actor="x")
    signups = await plans.find_metric("Signups")
    await plans.record_reading(signups.id, 60, at=datetime(2026, 3, 29, 12, tzinfo=UTC), actor="x")
    clock.now = datetime(2026, 3, 30, 9, tzinfo=UTC)
    return master.id, launch.id


async def test_the_retrospective_compares_results_with_targets_and_says_what_slipped(
    store: Store, clock: FakeClock
) -> None:
    _, launch_id = await finished_launch(store, clock)
    retro = await Playbooks(store, TENANT).retrospective(launch_id)
    [signups] = retro.results
    assert (signups["result"], signups["target"], signups["attainment"]) == (60, 100, pytest.approx(0.6))
    slipped = {s["title"]: why_slipped(s) for s in retro.slipped}
    assert slipped == {"Landing page": "done 3 day(s) late", "Launch day": "still open"}
    assert json.loads(json.dumps(retro.lessons()))["results"] == [signups]  # a playbook keeps it as JSON


async def test_a_saved_playbook_seeds_the_next_plan_with_its_tasks_owners_and_adjusted_targets(
    store: Store, clock: FakeClock
) -> None:
    master_id, launch_id = await finished_launch(store, clock)
    books = Playbooks(store, TENANT)
    content = await books.save(launch_id, "Product launch", actor="aad-lead")
    assert content["window_days"] == 28
    assert {t["title"]: (t["offset_days"], t["role"]) for t in content["tasks"]} == {
        "Landing page": (4, "brand"),
        "Launch day": (18, None),
    }
    [metric] = content["metrics"]
    assert metric["target"] == pytest.approx(60)  # 60 % of the way last time: the next target is scaled to it
    assert metric["scale"] == pytest.approx(0.6)
    assert "scaled by 0.6" in learned(metric)
    plan = await books.seed(
        "product launch", master_id, title="May launch", owner="aad-lead", start=date(2026, 5, 4), actor="aad-lead"
    )
    assert plan.window == Window(start=date(2026, 5, 4), end=date(2026, 5, 31))
    plans = Plans(store, TENANT)
    seeded = {t.title: (t.due_on, t.owner, t.milestone) for t in await plans.list_tasks(plan.id)}
    assert seeded == {
        "Landing page": (date(2026, 5, 8), "aad-web", False),
        "Launch day": (date(2026, 5, 22), None, True),
    }
    [kpi] = await plans.list_metrics(plan.id)
    assert (kpi.name, kpi.target) == ("Signups", pytest.approx(60))
    with raises_saying(PlaybookNotFound, "saved playbooks: product launch"):
        await books.get("webinar")
