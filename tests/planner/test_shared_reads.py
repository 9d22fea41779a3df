"""Shared reads: callers asking at once share one read, and none gets what was read before it asked."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from planner.domain.model import MetricSpec, TaskChanges, TaskStatus, Window
from planner.services.plans import Plans
from planner.store import Store
from planner.store.shared_reads import SharedReads

LEADER = "aad-leader"


class CountedRead:
    """A read answering how many times it was made, failing the first `failures` times."""

    def __init__(self, failures: int = 0) -> None:
        self.made = 0
        self.failures = failures

    async def __call__(self) -> int:
        self.made += 1
        await asyncio.sleep(0)
        if self.made <= self.failures:
            raise LookupError("P9 is not a plan")
        return self.made


async def test_callers_asking_at_once_share_one_read() -> None:
    reads, read = SharedReads(), CountedRead()
    assert await asyncio.gather(*(reads.read("plan", read) for _ in range(5))) == [1] * 5
    assert read.made == 1
    assert await reads.read("plan", read) == 2  # nothing is kept once a read has answered
    assert await reads.read("another plan", read) == 3


async def test_a_caller_asking_while_a_read_is_under_way_gets_the_next_read_not_that_one() -> None:
    reads = SharedReads()
    value = "before the write"
    under_way, go_on = asyncio.Event(), asyncio.Event()

    async def slow_read() -> str:
        seen = value
        under_way.set()
        await go_on.wait()
        return seen

    async def read() -> str:
        return value

    first = asyncio.create_task(reads.read("plan", slow_read))
    await under_way.wait()
    value = "after the write"  # a write finishes after the first read began, before the second caller asks
    second = asyncio.create_task(reads.read("plan", read))
    third = asyncio.create_task(reads.read("plan", read))
    go_on.set()
    assert await first == "before the write"
    assert await second == "after the write"
    assert await third == "after the write"


async def test_a_failed_read_fails_its_callers_and_the_next_read_is_made_afresh() -> None:
    reads, read = SharedReads(), CountedRead(failures=1)
    outcomes = await asyncio.gather(reads.read("k", read), reads.read("k", read), return_exceptions=True)
    assert [type(o) for o in outcomes] == [LookupError, LookupError]
    assert await reads.read("k", read) == 2


async def test_a_caller_given_up_on_does_not_cancel_the_read_of_the_others() -> None:
    reads = SharedReads()
    release = asyncio.Event()

    async def read() -> str:
        await release.wait()
        return "the plan"

    impatient = asyncio.create_task(reads.read("k", read))
    patient = asyncio.create_task(reads.read("k", read))
    await asyncio.sleep(0)
    impatient.cancel()
    release.set()
    assert await patient == "the plan"
    with pytest.raises(asyncio.CancelledError):
        await impatient


async def test_a_rollup_shared_between_callers_shows_a_task_done_before_the_later_caller_asked(store: Store) -> None:
    tenant = Plans(store, "contoso")
    window = Window(start=date(2026, 1, 1), end=date(2026, 3, 31))
    master = await tenant.create_master_plan(
        title="500 SQLs", owner=LEADER, window=window, metrics=[MetricSpec(name="SQLs", target=500)], actor=LEADER
    )
    tactical = await tenant.create_tactical_plan(master.id, title="Q1", owner=LEADER, window=window, actor=LEADER)
    task = await tenant.add_task(tactical.id, title="Launch page", due_on=date(2026, 2, 1), actor=LEADER)
    under_way, go_on = asyncio.Event(), asyncio.Event()

    async def slow_rollup() -> int:
        rollup = await tenant.rollup(master.id, date(2026, 1, 15))
        under_way.set()
        await go_on.wait()
        return rollup.counts.done

    async def rollup() -> int:
        return (await tenant.rollup(master.id, date(2026, 1, 15))).counts.done

    first = asyncio.create_task(store.shared_reads.read(("rollup", master.id), slow_rollup))
    await under_way.wait()
    await tenant.update_task(task.id, TaskChanges(status=TaskStatus.DONE), actor=LEADER)
    later = asyncio.create_task(store.shared_reads.read(("rollup", master.id), rollup))
    go_on.set()
    assert (await first, await later) == (0, 1)
