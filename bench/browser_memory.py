"""Browser memory benchmark: what `--delegations` browser delegations at once cost in memory.

Runs on loopback, in this process as in the bot: the tests' vendor web app (tests/adapters/web_vendor.py: sign-in
with a 2FA code, campaign briefs) and one browser agent built as the registry builds it (`BrowserAdapterFactory`,
Debian's Chromium unless `COS_CHROMIUM_PATH` says otherwise). The agent runs its delegations at once in its one
Chromium, a browser context each.

1. One delegation signs in (a person answers the code) and keeps the session; the browser then idles.
2. `--rounds` times: `--delegations` delegations at once, each creating a campaign brief (a page filled in and
   submitted, a screenshot taken) and then opening a page the vendor holds until every one of them has asked for it
   and the memory has been sampled for `--hold-seconds`: so all of them are open at the same moment.

Memory is sampled every `--interval` seconds over this process and every process below it (the Playwright driver,
Chromium and its helpers and renderers), from /proc: the sum of their RSS (what `ps` shows; pages the processes
share are counted once per process) and of their PSS (shared pages divided among the processes sharing them: the
memory they take together; the RSS sum counts Chromium's shared pages once per process, several times what is
used). Prints, as medians of the rounds: the peak of each while the delegations run, the figure with the browser
idle before them, the peak less the idle figure per delegation, and how many processes, Chromium browser processes
and renderers there were at the PSS peak (one browser: the delegations share it). The goal is the budget README.md
states (`--budget-mb`, on the PSS peak).

Usage: python bench/browser_memory.py [--delegations N] [--rounds N] [--hold-seconds S] [--interval S]
                                      [--budget-mb MB] [--time-limit SECONDS]
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.browser import BrowserAdapterFactory, BrowserAgent, chromium_executable
from planner.domain.delegations import DelegationStatus
from planner.ports import DelegationRequest
from planner.store.vault import Vault
from tests.adapters.operator import LOOPBACK
from tests.adapters.web_vendor import CODE, PASSWORD, USERNAME, AnsweringPerson, WebVendor
from tests.adapters.web_vendor import vendor_config as tests_recipe

AGENT = "vendor-marketing"
BUDGET_MB = 1_900
"""The budget README.md states for 10 browser delegations at once (peak PSS of the bot and its Chromium), MiB."""
MB = 1024 * 1024
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def vendor_config(vendor: WebVendor) -> dict[str, Any]:
    """The tests' recipe for the vendor (tests/adapters/web_vendor.py), with room for a loaded machine, and its brief
    ending on the page the vendor holds open, so that every delegation is open at the same moment."""
    config = tests_recipe(vendor, timeouts={"step_seconds": 30, "navigation_seconds": 60, "code_answer_seconds": 30})
    config["capabilities"]["create_campaign_brief"]["steps"].append({"kind": "goto", "url": f"{vendor.url}/slow"})
    return config


def brief(number: int) -> DelegationRequest:
    return DelegationRequest(
        capability="create_campaign_brief",
        input={"name": f"Spring launch {number}", "audience": "CMOs at mid-size SaaS"},
        timeout_seconds=300,
    )


# ---- memory --------------------------------------------------------------------------------------------------


@dataclass
class Sample:
    rss: int = 0
    pss: int = 0
    browsers: int = 0
    """Chromium browser processes (not its helpers or renderers)."""
    renderers: int = 0
    processes: int = 0


def descendants(root: int) -> list[int]:
    """`root` and every live process below it."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def sample(root: int) -> Sample:
    """The memory of `root` and the processes below it, and how many Chromium browsers and renderers they are."""
    total = Sample()
    for pid in descendants(root):
        try:
            rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
            pss = next(
                int(line.split()[1]) * 1024
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
                if line.startswith("Pss:")
            )
            # Chromium's helpers rewrite their command line as one string, its arguments joined by spaces.
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").split()
        except (OSError, StopIteration, ValueError):
            continue  # ended meanwhile
        total.rss += rss_pages * PAGE_BYTES
        total.pss += pss
        total.processes += 1
        if command and b"chrom" in command[0].lower():
            kind = next((arg for arg in command if arg.startswith(b"--type=")), None)
            total.browsers += kind is None
            total.renderers += kind == b"--type=renderer"
    return total


class Sampler:
    """Samples `sample(os.getpid())` every `interval` seconds, in a thread, keeping the peaks."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.peak = Sample()
        self.samples = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Sampler:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    async def _run(self) -> None:
        while not self._stop.is_set():
            now = await asyncio.to_thread(sample, os.getpid())
            self.samples += 1
            if now.pss > self.peak.pss:
                self.peak.pss, self.peak.browsers, self.peak.renderers = now.pss, now.browsers, now.renderers
                self.peak.processes = now.processes
            self.peak.rss = max(self.peak.rss, now.rss)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)


# ---- the run -------------------------------------------------------------------------------------------------


@dataclass
class Figures:
    before_browser: Sample = field(default_factory=Sample)
    idle: list[Sample] = field(default_factory=list)
    peaks: list[Sample] = field(default_factory=list)
    round_seconds: list[float] = field(default_factory=list)
    samples: int = 0


async def delegations_at_once(
    agent: BrowserAgent, vendor: WebVendor, count: int, first: int, options: argparse.Namespace
) -> tuple[Sample, float, int]:
    """Run `count` delegations at once, all open together while sampled; the peak, the seconds it took, samples."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    slow_before = sum(path == "/slow" for _, path in vendor.requests)
    async with Sampler(options.interval) as sampler:
        running = [asyncio.create_task(agent.delegate(brief(first + n))) for n in range(count)]
        try:
            await vendor.wait_for_requests("/slow", slow_before + count, within=options.time_limit)
            await asyncio.sleep(options.hold_seconds)  # every one open: let the sampler see it
        finally:
            vendor.release_slow_pages()
        results = await asyncio.gather(*running)
    vendor.hold_slow_pages()
    failed = [result.error for result in results if result.status is not DelegationStatus.SUCCEEDED]
    if failed:
        raise RuntimeError(f"{len(failed)} of {count} delegations failed: {failed[0]}")
    return sampler.peak, loop.time() - began, sampler.samples


async def measure(options: argparse.Namespace) -> dict[str, object]:
    figures = Figures(before_browser=await asyncio.to_thread(sample, os.getpid()))
    person = AnsweringPerson()
    chromium = chromium_executable(None)
    factory = BrowserAdapterFactory(vault=Vault([Vault.generate_key()]), egress=LOOPBACK, chromium_path=chromium)
    async with WebVendor(username=USERNAME, password=PASSWORD, code=CODE) as vendor:
        agent = factory.build(AGENT, factory.validate(vendor_config(vendor)))
        try:
            vendor.release_slow_pages()
            signed_in = await agent.delegate(brief(0), human=person)  # signs in, keeps the session
            if signed_in.status is not DelegationStatus.SUCCEEDED:
                raise RuntimeError(f"signing in failed: {signed_in.error}")
            vendor.hold_slow_pages()
            number = 1
            for _ in range(options.rounds):
                figures.idle.append(await asyncio.to_thread(sample, os.getpid()))
                peak, seconds, samples = await delegations_at_once(agent, vendor, options.delegations, number, options)
                number += options.delegations
                figures.peaks.append(peak)
                figures.round_seconds.append(seconds)
                figures.samples += samples
        finally:
            await agent.close()
    if vendor.logins != 1 or len(person.questions) != 1:
        raise RuntimeError(
            f"{vendor.logins} sign-ins and {len(person.questions)} codes asked: the session was not kept"
        )

    def median_mb(values: list[int]) -> float:
        return round(statistics.median(values) / MB, 1)

    peak_rss = median_mb([p.rss for p in figures.peaks])
    idle_rss = median_mb([s.rss for s in figures.idle])
    peak_pss = median_mb([p.pss for p in figures.peaks])
    idle_pss = median_mb([s.pss for s in figures.idle])
    return {
        "benchmark": "browser_memory",
        "chromium": chromium,
        "delegations_at_once": options.delegations,
        "rounds": options.rounds,
        "samples": figures.samples,
        "sample_interval_s": options.interval,
        "round_seconds": [round(s, 1) for s in figures.round_seconds],
        "before_browser_rss_mb": round(figures.before_browser.rss / MB, 1),
        "idle_rss_mb": idle_rss,
        "peak_rss_mb": peak_rss,
        "per_delegation_rss_mb": round((peak_rss - idle_rss) / options.delegations, 1),
        "idle_pss_mb": idle_pss,
        "peak_pss_mb": peak_pss,
        "per_delegation_pss_mb": round((peak_pss - idle_pss) / options.delegations, 1),
        "rounds_peak_rss_mb": [round(p.rss / MB, 1) for p in figures.peaks],
        "rounds_peak_pss_mb": [round(p.pss / MB, 1) for p in figures.peaks],
        "processes_at_peak": max(p.processes for p in figures.peaks),
        "chromium_browsers_at_peak": max(p.browsers for p in figures.peaks),
        "renderers_at_peak": max(p.renderers for p in figures.peaks),
        "budget_pss_mb": options.budget_mb,
        "within_budget": peak_pss <= options.budget_mb,
    }


async def bounded(options: argparse.Namespace) -> dict[str, object]:
    try:
        async with asyncio.timeout(options.time_limit):
            return await measure(options)
    except TimeoutError:
        raise SystemExit(f"the benchmark did not finish in {options.time_limit} s: lower --rounds") from None


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delegations", type=int, default=10, help="browser delegations at once")
    parser.add_argument("--rounds", type=int, default=3, help="times the delegations run at once")
    parser.add_argument("--hold-seconds", type=float, default=1.0, help="all of them open this long, sampled")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between memory samples")
    parser.add_argument("--budget-mb", type=float, default=BUDGET_MB, help="the budget on the peak PSS, in MiB")
    parser.add_argument("--time-limit", type=float, default=300.0, help="give up after this many seconds")
    options = parser.parse_args(argv)
    if options.delegations < 1 or options.rounds < 1 or options.interval <= 0 or options.hold_seconds < 0:
        parser.error("--delegations and --rounds must be at least 1, --interval above 0, --hold-seconds not negative")
    if not Path("/proc/self/smaps_rollup").exists():
        parser.error("this benchmark reads /proc (Linux 4.14 or later)")
    result = asyncio.run(bounded(options))
    print(
        f"{result['delegations_at_once']} browser delegations at once, {result['rounds']} rounds "
        f"({result['samples']} samples every {result['sample_interval_s']} s), this process and its children: "
        f"{result['before_browser_rss_mb']} MiB RSS before the browser, {result['idle_rss_mb']} MiB with it idle"
    )
    print(
        f"peak RSS {result['peak_rss_mb']} MiB ({result['per_delegation_rss_mb']} MiB a delegation above idle), "
        f"PSS {result['peak_pss_mb']} MiB ({result['per_delegation_pss_mb']} MiB a delegation); "
        f"{result['processes_at_peak']} processes at the peak, {result['chromium_browsers_at_peak']} of them "
        f"Chromium browsers, {result['renderers_at_peak']} renderers; budget {result['budget_pss_mb']} MiB PSS: "
        f"{'within' if result['within_budget'] else 'OVER'}"
    )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
