"""The measurement surface: the chart plots the right series and is a real PNG, the card passes the Adaptive Card 1.5
schema, "how are we doing?" answers in Teams and logs its recommendations, and chart links are signed and expire."""

from __future__ import annotations

import asyncio
import json
import struct
import time
import zlib
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiohttp
import anthropic
import httpx2
import pytest
from aiohttp.test_utils import TestServer
from matplotlib.dates import num2date

from bot.cards.digest import measurement_card, of_kpis
from bot.cards.elements import CARD_BUDGET_BYTES, serialized_size
from bot.charts import (
    CHART_PATH,
    PNG_SIGNATURE,
    SHOWN_WIDTH_PX,
    ChartLinks,
    build_figure,
    burn_up,
    chart_png,
    data_uri,
    signing_keys,
)
from bot.cli import main as cli
from bot.http.app import create_app
from bot.http.metric_events import PATH as METRIC_EVENTS_PATH
from bot.recommending import ClaudeRecommender
from bot.scheduler import tick
from bot.settings import Settings
from bot.teams.botbuilder import BotbuilderChannel, create_adapter
from bot.teams.handler import ChiefOfStaffBot
from bot.text.recommendations import rule_recommendations
from planner.domain.measurement import MeasurementReport, MetricSeries, measure
from planner.domain.model import MetricSpec, TaskChanges, TaskStatus, Window
from planner.domain.triggers import TriggerRules
from planner.services.context import ContextSources, sign
from planner.services.decisions import DecisionLog
from planner.services.measurement import RECOMMENDATION_ACTION
from planner.services.plans import Plans
from planner.services.triggers import TriggerEngine
from planner.store import Store
from planner.store.migrate import upgrade
from planner.store.vault import Vault
from tests.adapters.test_mcp import shared_vendor  # noqa: F401 - the vendor agent fixture
from tests.bot.cards.test_cards import all_text, of_type, schema_errors
from tests.bot.conftest import TENANT, Running, TeamsUser, start_bot
from tests.bot.test_context_events import serve
from tests.bot.test_llm import RECORDINGS, ReplayTransport, assistant_with
from tests.bot.test_nudges import said, sender_for
from tests.conftest import FakeClock
from tests.fakes.connector import FakeConnector
from tests.planner.test_measurement import AS_OF, FACTS, SERIES
from tests.planner.test_playbooks import finished_launch


def report_with_advice() -> MeasurementReport:
    report = measure(FACTS, AS_OF)
    return replace(report, recommendations=tuple(rule_recommendations(report)))


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk, after checking its signature and the chunk's CRC."""
    assert png[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", png[8:16])
    assert (length, kind) == (13, b"IHDR")
    header = png[16 : 16 + length]
    (crc,) = struct.unpack(">I", png[16 + length : 20 + length])
    assert zlib.crc32(kind + header) == crc
    width, height = struct.unpack(">II", header[:8])
    return width, height


def lines_by_label(axes):  # type: ignore[no-untyped-def]
    # Lines labelled `_…` are matplotlib's unlabelled ones (the day-measured marker).
    return {line.get_label(): line for line in axes.get_lines() if not line.get_label().startswith("_")}


def days_of(line) -> list[date]:  # type: ignore[no-untyped-def]
    return [num2date(x).date() if not isinstance(x, date) else x for x in line.get_xdata()]


def test_the_burn_up_plots_tasks_done_and_planned_each_day_to_the_day_measured() -> None:
    figure = build_figure(measure(FACTS, AS_OF))
    tasks_axes, _ = figure.axes
    lines = lines_by_label(tasks_axes)
    assert set(lines) == {"planned", "done"}
    days = days_of(lines["done"])
    assert days[0] == date(2026, 1, 5)
    assert days[-1] == AS_OF
    done = dict(zip(days, list(lines["done"].get_ydata()), strict=True))
    # T1 done on the 7th, T2 on the 12th, T7 on the 14th, T3 on the 16th; T8 on the 19th is after the day measured
    assert [done[date(2026, 1, d)] for d in (6, 7, 11, 12, 14, 16, 18)] == [0, 1, 1, 2, 3, 4, 4]
    assert set(lines["planned"].get_ydata()) == {8}


def test_each_kpi_is_plotted_as_a_share_of_its_way_to_target_beside_its_target_pace() -> None:
    figure = build_figure(measure(FACTS, AS_OF))
    _, kpi_axes = figure.axes
    lines = lines_by_label(kpi_axes)
    assert set(lines) == {
        "SQLs",
        "SQLs target pace",
        "Cost per lead (P3)",
        "Cost per lead (P3) target pace",
        "Launch signups (P2)",
        "Launch signups (P2) target pace",
    }
    assert list(lines["SQLs"].get_ydata()) == pytest.approx([60 / 280 * 100, 120 / 280 * 100])
    assert days_of(lines["SQLs"]) == [date(2026, 1, 11), date(2026, 1, 18)]
    # Cost per lead goes down 100 -> 80: 95 is a quarter of the way; the reading of the 25th is after the day measured
    assert list(lines["Cost per lead (P3)"].get_ydata()) == pytest.approx([25.0])
    assert list(lines["Launch signups (P2)"].get_ydata()) == []
    pace = lines["Cost per lead (P3) target pace"]
    assert days_of(pace) == [date(2026, 1, 12), date(2026, 2, 1)]
    assert list(pace.get_ydata()) == [0.0, 100.0]
    assert lines["SQLs"].get_color() == lines["SQLs target pace"].get_color()


def test_the_chart_renders_as_a_png_of_the_figures_size() -> None:
    figure = build_figure(measure(FACTS, AS_OF))
    expected = (int(figure.get_figwidth() * figure.dpi), int(figure.get_figheight() * figure.dpi))
    png = chart_png(measure(FACTS, AS_OF))
    assert png_size(png) == expected == (828, 576)
    assert png.endswith(b"IEND\xaeB`\x82")


def test_burn_up_of_a_plan_not_started_is_empty() -> None:
    days, done, scope = burn_up(measure(FACTS, date(2026, 1, 1)))
    assert (days, done, scope) == ([], [], [])


def test_the_card_with_its_chart_inline_is_valid_and_fits_in_a_teams_message() -> None:
    report = report_with_advice()
    card = measurement_card(report, chart_url=data_uri(chart_png(report)))
    assert schema_errors(card) == []
    assert serialized_size(card) <= CARD_BUDGET_BYTES
    [image] = of_type(card, "Image")
    assert image["url"].startswith("data:image/png;base64,")
    text = all_text(card)
    assert "On time: 60 % (3 of 5)" in text
    assert "Cycle time: 3.4 days" in text
    assert "Throughput: 2 tasks a week" in text
    assert "Carried over: 1" in text
    assert "Delegations done: 3 (copilot 1, hubspot 2)" in text
    assert "people and the bot: 1 decided · approved 0 %, edited 0 %, rejected 0 %, expired 100 %" in text
    assert "P2 Launch: launched in 11 days" in text
    assert "P3 ABM: 0 of 1 milestones done" in text
    assert "Against pace: 86 % (expected 140)" in text
    assert "At the end: 240 by Sun 1 Feb" in text
    assert "Next: Unblock the late work behind SQLs first: T4." in text
    assert "Delegation success: 60 %" in text
    assert "hubspot: 3 decided · approved 33 %, edited 33 %, rejected 33 %, expired 0 %" in text
    assert "gate:budget: 1 decided · approved 0 %, edited 0 %, rejected 0 %, expired 100 %" in text


def test_a_chart_too_large_for_a_message_is_left_out_and_the_card_says_so() -> None:
    report = report_with_advice()
    card = measurement_card(report, chart_url="data:image/png;base64," + "A" * 40_000)
    assert schema_errors(card) == []
    assert of_type(card, "Image") == []
    assert "The chart is too large to send in a message." in all_text(card)


# ---- in Teams ---------------------------------------------------------------------------------------------------


async def pipeline(store: Store, clock: FakeClock) -> int:
    """A master plan of February with SQLs behind pace and one task late, as of Monday 16 February."""
    clock.now = datetime(2026, 2, 2, 9, tzinfo=UTC)
    tenant = Plans(store, TENANT)
    master = await tenant.create_master_plan(
        title="Q1 pipeline",
        owner="aad-lead",
        window=Window(start=date(2026, 2, 2), end=date(2026, 3, 1)),
        metrics=[MetricSpec(name="SQLs", target=280)],
        actor="aad-lead",
    )
    launch = await tenant.create_tactical_plan(
        master.id, title="Launch", owner="aad-lead", window=master.window, actor="aad-lead"
    )
    late = await tenant.add_task(launch.id, title="Landing page", due_on=date(2026, 2, 10), actor="aad-lead")
    done = await tenant.add_task(launch.id, title="Launch email", due_on=date(2026, 2, 12), actor="aad-lead")
    clock.now = datetime(2026, 2, 11, 9, tzinfo=UTC)
    await tenant.update_task(done.id, TaskChanges(status=TaskStatus.DONE), actor="aad-lead")
    sqls = await tenant.find_metric("SQLs")
    await tenant.record_reading(sqls.id, 70, at=datetime(2026, 2, 15, 12, tzinfo=UTC), actor="aad-lead")
    clock.now = datetime(2026, 2, 15, 18, tzinfo=UTC)
    assert late.id
    return master.id


async def test_how_are_we_doing_answers_with_the_card_and_logs_each_recommendation_once(
    running: Running, store: Store, clock: FakeClock
) -> None:
    master_id = await pipeline(store, clock)
    lead = TeamsUser(running, time_zone=None)
    [answer] = await lead.ask("how are we doing?")
    assert answer.startswith(f"P{master_id} Q1 pipeline: 50 % of tasks on time, 1 done; heading short: SQLs.")
    card = running.connector.cards()[-1]
    assert schema_errors(card) == []
    assert of_type(card, "Image")[0]["url"].startswith("data:image/png;base64,")
    # 70 SQLs in 14 of 28 days: 140 at the end against 280, with T1 late
    assert "At the end: 140 by Sun 1 Mar" in all_text(card)
    assert "Next: Unblock the late work behind SQLs first: T1." in all_text(card)
    await lead.ask("how are we doing")
    logged = [d for d in await DecisionLog(store, TENANT).entries() if d.action == RECOMMENDATION_ACTION]
    assert len(logged) == 1
    [entry] = logged
    assert (entry.actor, entry.verdict) == ("bot", "recommend")
    assert entry.data["recommended"] == "Unblock the late work behind SQLs first: T1."
    assert entry.data["projected"] == pytest.approx(140)
    assert "reaches 140 by Sun 1 Mar" in entry.rationale


# ---- signed chart links ------------------------------------------------------------------------------------------

KEY = Vault.generate_key()


def test_a_chart_link_is_refused_once_tampered_with_or_expired() -> None:
    links = ChartLinks(signing_keys(Settings.from_env({"COS_SECRET_KEYS": KEY})), base_url="https://bot.example")
    now = datetime(2026, 2, 15, 18, tzinfo=UTC)
    url = links.link(TENANT, 1, date(2026, 2, 15), now=now)
    query = dict(part.split("=", 1) for part in url.split("?", 1)[1].split("&"))
    path = CHART_PATH.format(tenant=TENANT, plan=1)
    expires, signature = int(query["expires"]), query["signature"]
    assert url.startswith(f"https://bot.example{path}?as_of=2026-02-15&expires=")
    assert links.verify(path, date(2026, 2, 15), expires, signature, now=now)
    assert not links.verify(CHART_PATH.format(tenant=TENANT, plan=2), date(2026, 2, 15), expires, signature, now=now)
    assert not links.verify(path, date(2026, 2, 16), expires, signature, now=now)
    assert not links.verify(path, date(2026, 2, 15), expires + 60, signature, now=now)
    assert not links.verify(path, date(2026, 2, 15), expires, signature, now=now + timedelta(days=8))
    other = ChartLinks(signing_keys(Settings.from_env({"COS_SECRET_KEYS": Vault.generate_key()})))
    assert not other.verify(path, date(2026, 2, 15), expires, signature, now=now)


async def test_the_bot_serves_a_chart_for_a_signed_link_only(store: Store, clock: FakeClock) -> None:
    master_id = await pipeline(store, clock)
    settings = Settings.from_env({"COS_SECRET_KEYS": KEY})
    adapter = create_adapter(settings)
    server = TestServer(create_app(store, adapter, ChiefOfStaffBot(store, settings, clock=clock), settings))
    await server.start_server()
    links = ChartLinks(signing_keys(settings), base_url=str(server.make_url("/")))
    try:
        async with aiohttp.ClientSession() as session:
            url = links.link(TENANT, master_id, date(2026, 2, 15), now=clock.now)
            async with session.get(url) as response:
                assert response.status == 200
                assert response.content_type == "image/png"
                assert png_size(await response.read()) == (828, 576)
            async with session.get(url.replace("signature=", "signature=0")) as response:
                assert response.status == 403
            clock.advance(days=8)
            async with session.get(url) as response:
                assert response.status == 403
                assert "expired" in (await response.json())["error"]
    finally:
        await server.close()


async def test_the_leaders_friday_digest_carries_the_figures_chart_and_next_steps(
    running: Running, store: Store, clock: FakeClock
) -> None:
    await pipeline(store, clock)
    await TeamsUser(running).ask("help")  # the leader's personal chat is known
    before = len(running.connector.sent)
    friday = datetime(2026, 2, 20, 15, tzinfo=UTC)
    clock.now = friday
    await TriggerEngine(store, rules=TriggerRules(enabled=frozenset({"weekly_cycle"}))).evaluate(friday)
    await sender_for(store).deliver()
    [digest] = [s.body for s in running.connector.sent[before:] if s.conversation_id == "a:personal-lead"]
    assert "Your digest for 2026-W08" in digest["text"]
    card = digest["attachments"][0]["content"]
    assert schema_errors(card) == []
    assert of_type(card, "Image")[0]["url"].startswith("data:image/png;base64,")
    assert "Next: Unblock the late work behind SQLs first: T1." in all_text(card)
    assert [d.action for d in await DecisionLog(store, TENANT).entries()].count(RECOMMENDATION_ACTION) == 1


async def test_with_a_key_claude_writes_the_digests_next_steps_too(
    running: Running, store: Store, clock: FakeClock
) -> None:
    await pipeline(store, clock)
    await TeamsUser(running).ask("help")
    before = len(running.connector.sent)
    clock.now = datetime(2026, 2, 20, 15, tzinfo=UTC)
    await TriggerEngine(store, rules=TriggerRules(enabled=frozenset({"weekly_cycle"}))).evaluate(clock.now)
    transport = ReplayTransport(recorded("recommendation.json"))
    sender = sender_for(store)
    sender.recommender = ClaudeRecommender(assistant_with(transport).client, model="m")
    await sender.deliver()
    [digest] = [s.body for s in running.connector.sent[before:] if s.conversation_id == "a:personal-lead"]
    card = digest["attachments"][0]["content"]
    assert schema_errors(card) == []
    assert "Next: Move the landing page (T1) to the web agency this week" in all_text(card)
    assert len(transport.requests) == 1
    [entry] = [d for d in await DecisionLog(store, TENANT).entries() if d.action == RECOMMENDATION_ACTION]
    assert entry.actor == "llm"


async def test_signed_metric_events_are_stored_by_the_bot_and_unsigned_ones_refused(
    store: Store, clock: FakeClock
) -> None:
    await pipeline(store, clock)
    secret = await ContextSources(store, TENANT, Vault([KEY])).add("crm", actor="aad-admin")
    server, session = await serve(store, clock, {"COS_SECRET_KEYS": KEY})
    url = server.make_url(METRIC_EVENTS_PATH)

    async def post(body: object, signature: str | None = None) -> tuple[int, dict[str, object]]:
        raw = json.dumps(body).encode()
        headers = {"X-COS-Source": "crm", "X-COS-Tenant": TENANT, "X-COS-Signature": signature or sign(secret, raw)}
        async with session.post(url, data=raw, headers=headers) as response:
            return response.status, await response.json()

    sent_at = clock.now.isoformat()
    reading = {
        "id": "crm-1",
        "sent_at": sent_at,
        "metric": "SQLs",
        "value": 90,
        "unit": "SQL",
        "at": "2026-02-15T17:00:00Z",
    }
    try:
        assert await post(reading) == (202, {"stored": 1})
        status, replayed = await post(reading)
        assert status == 409
        assert "already posted event id(s) 'crm-1'" in str(replayed["error"])
        assert (await post({**reading, "id": "crm-2"}, signature="sha256=" + "0" * 64))[0] == 401
        status, problem = await post({**reading, "id": "crm-3", "unit": "%"})
        assert status == 400
        assert "SQLs is counted in no unit" in str(problem["error"])
    finally:
        await session.close()
        await server.close()
    sqls = await Plans(store, TENANT).find_metric("SQLs")
    assert [(r.value, r.source) for r in await Plans(store, TENANT).readings(sqls.id)] == [
        (70, "chat"),
        (90, "event:crm"),
    ]


async def test_a_leader_reads_a_retrospective_saves_it_and_seeds_the_next_plan_in_chat(
    running: Running, store: Store, clock: FakeClock
) -> None:
    master_id, launch_id = await finished_launch(store, clock)
    lead = TeamsUser(running, time_zone=None)
    [answer] = await lead.ask(f"retro P{launch_id}")
    assert answer == f"Retrospective of P{launch_id} March launch (ended): 2 task(s) slipped."
    card = running.connector.cards()[-1]
    assert schema_errors(card) == []
    text = all_text(card)
    assert "Signups: 60 of 100 (60 %)" in text
    assert "Landing page (due 2026-03-06): done 3 day(s) late" in text
    [saved] = await lead.ask(f"save playbook P{launch_id} as Product launch")
    assert saved.startswith(f"Saved playbook 'product launch' from P{launch_id}: 2 task(s) over 28 days")
    assert "Signups 60 (reached 60 % of the way last time: target scaled by 0.6)" in saved
    [listed] = await lead.ask("playbooks")
    assert listed == "Playbooks: product launch."
    [created] = await lead.ask(f"use playbook product launch for May launch from 2026-05-04 in P{master_id}")
    assert "May launch (4 May \u2013 31 May 2026" in created
    assert created.endswith("from playbook 'product launch': 2 task(s), targets Signups 60.")


async def test_when_a_tactical_plan_ends_its_owner_gets_the_retrospective_once(
    running: Running, store: Store, clock: FakeClock
) -> None:
    _, launch_id = await finished_launch(store, clock)
    await TeamsUser(running).ask("help")
    before = len(running.connector.sent)
    adapter = create_adapter(Settings.from_env({}))
    await tick(store, BotbuilderChannel(adapter), at=clock.now)
    await tick(store, BotbuilderChannel(adapter), at=clock.now)
    # Told once, in one card with whatever else that tick had for its owner.
    sent = [s.body for s in running.connector.sent[before:] if "has ended" in said(s.body)]
    assert len(sent) == 1
    assert f"P{launch_id} March launch has ended." in said(sent[0])
    card = sent[0]["attachments"][0]["content"]
    assert schema_errors(card) == []
    assert "Retrospective: P" in all_text(card)


# ---- Claude's recommendations ------------------------------------------------------------------------------------


def recorded(name: str) -> list[dict[str, object]]:
    return json.loads((RECORDINGS / name).read_text())


async def test_with_a_key_claude_writes_the_recommendation_and_the_log_says_so(
    store: Store, connector: FakeConnector, clock: FakeClock
) -> None:
    await pipeline(store, clock)
    transport = ReplayTransport(recorded("recommendation.json"))
    running = await start_bot(store, connector, clock, assistant=assistant_with(transport))
    try:
        lead = TeamsUser(running, time_zone=None)
        await lead.ask("how are we doing")
    finally:
        await running.bot.drain()
        await running.session.close()
        await running.server.close()
    [request] = transport.requests
    assert request["tool_choice"] == {"type": "tool", "name": "recommend"}
    brief = json.loads(request["messages"][0]["content"])
    [sqls] = brief["kpis"]
    assert (sqls["latest"], sqls["projected_at_end"], sqls["target"]) == (70, pytest.approx(140), 280)
    assert sqls["rule_suggestion"] == "Unblock the late work behind SQLs first: T1."
    card = connector.cards()[-1]
    assert schema_errors(card) == []
    assert "Next: Move the landing page (T1) to the web agency this week" in all_text(card)
    [entry] = [d for d in await DecisionLog(store, TENANT).entries() if d.action == RECOMMENDATION_ACTION]
    assert (entry.actor, entry.data["by"]) == ("llm", "llm")
    assert entry.rationale.startswith("SQLs are at 70 against 140 expected")


async def test_kpis_the_model_leaves_out_or_cannot_answer_get_the_rules_advice() -> None:
    report = measure(FACTS, AS_OF)
    answered = ReplayTransport(recorded("recommendation.json"))
    sqls, cost, signups = await ClaudeRecommender(assistant_with(answered).client, model="m").recommend(report)
    assert (sqls.by, cost.by, signups.by) == ("llm", "rules", "rules")
    assert cost.action == "Push Cost per lead a little harder this week."
    overloaded = ReplayTransport(
        [
            lambda: httpx2.Response(
                529, json={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
            )
        ]
    )
    advice = await ClaudeRecommender(assistant_with(overloaded).client, model="m").recommend(report)
    assert [a.by for a in advice] == ["rules"] * 3
    assert advice == rule_recommendations(report)


# ---- from a shell, against the project's real MCP vendor agent -------------------------------------------------


def test_a_feed_pulls_campaign_metrics_from_a_real_mcp_agent_from_the_shell(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    shared_vendor: str,  # noqa: F811 - the fixture imported above
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("COS_SECRET_KEYS", KEY)
    monkeypatch.setenv("COS_ADAPTER_ALLOWED_NETWORKS", "127.0.0.1/32")  # the operator allows the loopback vendor
    monkeypatch.delenv("MICROSOFT_APP_ID", raising=False)

    async def plan() -> int:
        store = Store.from_url(url)
        try:
            await upgrade(store.engine)
            master = await Plans(store, TENANT).create_master_plan(
                title="Q1 pipeline",
                owner="aad-lead",
                window=Window(start=date(2026, 1, 1), end=date(2026, 12, 31)),
                metrics=[MetricSpec(name="SQLs", target=500)],
                actor="aad-lead",
            )
            return master.id
        finally:
            await store.close()

    async def readings() -> list[tuple[float, str]]:
        store = Store.from_url(url)
        try:
            plans = Plans(store, TENANT)
            return [(r.value, r.source) for r in await plans.readings((await plans.find_metric("SQLs")).id)]
        finally:
            await store.close()

    master_id = asyncio.run(plan())
    tenant = ["--tenant", TENANT]
    config = json.dumps({"transport": "http", "url": shared_vendor})
    assert cli(["adapters", "register", *tenant, "mcp", "vendor", config]) == 0
    assert cli(["adapters", "enable", *tenant, "vendor", "campaign_metrics"]) == 0  # its tools are off until then
    feed = ["--adapter", "vendor", "--capability", "campaign_metrics", "--input", '{"campaign": "abm-q1"}']
    assert cli(["metrics", "add-feed", "SQLs", *tenant, *feed, "--field", "sqls", "--unit", "kg"]) == 1
    assert "SQLs is counted in no unit" in capsys.readouterr().err
    assert cli(["metrics", "add-feed", "SQLs", *tenant, *feed, "--field", "sqls", "--unit", "SQL"]) == 0
    assert "from vendor campaign_metrics .sqls, every 60 min" in capsys.readouterr().out
    assert cli(["metrics", "pull"]) == 0
    assert "1 reading(s) stored, 0 feed(s) failed" in capsys.readouterr().out
    assert asyncio.run(readings()) == [(21.0, "adapter:vendor")]
    assert cli(["metrics", "pull"]) == 0  # not due again for an hour
    assert "0 reading(s) stored" in capsys.readouterr().out
    assert cli(["metrics", "feeds", *tenant]) == 0
    assert ", ok" in capsys.readouterr().out
    assert cli(["metrics", "chart-link", str(master_id), *tenant, "--base-url", "https://bot.example"]) == 0
    link = capsys.readouterr().out.strip()
    assert link.startswith(f"https://bot.example/api/charts/{TENANT}/{master_id}.png?as_of=")
    assert "&signature=" in link


def test_a_plan_with_many_kpis_still_fits_in_one_message_with_its_chart() -> None:
    many = tuple(
        MetricSeries(
            metric=replace(SERIES[0].metric, id=n, name=f"Campaign {n} SQLs with a long descriptive name"),
            plan=SERIES[0].plan,
            readings=SERIES[0].readings,
        )
        for n in range(1, 41)
    )
    report = measure(replace(FACTS, series=many), AS_OF)
    report = replace(report, recommendations=tuple(rule_recommendations(report)))
    card = measurement_card(report, chart_url=data_uri(chart_png(report)))
    assert schema_errors(card) == []
    assert serialized_size(card) <= CARD_BUDGET_BYTES
    assert len(of_type(card, "Image")) == 1
    shown = len(of_kpis(card))
    assert 3 <= shown < 40
    assert f"{40 - shown} more KPI(s), not shown to fit in a message: Campaign {shown + 1} SQLs" in all_text(card)


async def test_a_model_slower_than_a_chat_turn_allows_leaves_the_advice_to_the_rules() -> None:
    report = measure(FACTS, AS_OF)

    async def never_answers(request: httpx2.Request) -> httpx2.Response:
        await asyncio.sleep(30)
        raise AssertionError("the recommender should have given up")

    client = anthropic.AsyncAnthropic(
        api_key="test-key", max_retries=0, http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(never_answers))
    )
    started = time.perf_counter()
    advice = await ClaudeRecommender(client, model="m", timeout_seconds=0.2).recommend(report)
    assert time.perf_counter() - started < 5
    assert advice == rule_recommendations(report)


def test_the_chart_is_drawn_at_least_800_px_wide_one_question_a_panel_each_kpi_named_on_the_chart() -> None:
    figure = build_figure(measure(FACTS, AS_OF))
    assert figure.get_figwidth() * figure.dpi >= 800
    tasks_axes, kpi_axes = figure.axes
    assert tasks_axes.get_title(loc="left").startswith("Are the tasks getting done?")
    assert kpi_axes.get_title(loc="left").startswith("Is each KPI on its target pace?")
    named = {text.get_text() for text in kpi_axes.texts}
    assert {"SQLs 43%", "Cost per lead (P3) 25%"} <= named
    assert any(text.endswith("no reading yet: Launch signups (P2)") for text in named)
    # Teams shows the card's image about 414 px wide: the smallest text still reads at 10 px or more.
    scale = SHOWN_WIDTH_PX / (figure.get_figwidth() * figure.dpi)
    assert min(label.get_fontsize() for label in tasks_axes.get_xticklabels()) * scale >= 10


async def test_how_are_we_doing_a_plan_with_no_task_due_yet_says_so_in_words(running: Running) -> None:
    lead = TeamsUser(running, time_zone=None)
    await lead.ask("new plan Q1 from 2026-02-01 to 2026-03-31 kpi SQLs 500")
    [answer] = await lead.ask("how are we doing", replies=1)
    assert answer.startswith("P1 Q1: no task due yet, 0 done")
