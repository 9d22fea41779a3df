"""A big answer from an MCP agent: the owner's card shows an excerpt and a button to the whole answer, a signed link
the bot serves for a week; a link with a changed or stale signature opens nothing."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.artifacts import ArtifactLinks, add_artifact_routes
from bot.settings import Settings
from planner.store import Store
from planner.store.vault import Vault
from tests.adapters.vendor_agent import serve_in_process, tiny_png
from tests.adapters.web_vendor import PASSWORD, USERNAME, WebVendor, vendor_config
from tests.bot.cards.test_cards import all_text, of_type, schema_errors, top_actions
from tests.bot.conftest import Running, a_delegating_bot
from tests.bot.delegating import a_desk, to_the_writer, vendor_registered
from tests.conftest import FakeClock
from tests.fakes.connector import FakeConnector

VAULT = Vault([Vault.generate_key()])
"""The delegator's vault, which keeps evidence encrypted; the links open files with it."""
LINKS = ArtifactLinks((b"k" * 32,), base_url="https://bot.example", vault=VAULT)


@pytest.fixture
async def delegating(store: Store, connector: FakeConnector, clock: FakeClock) -> AsyncIterator[Running]:
    async with a_delegating_bot(store, connector, clock, artifact_links=LINKS, vault=VAULT) as running:
        yield running


async def test_the_owner_opens_a_big_answer_from_the_card_through_a_signed_link_that_expires(
    delegating: Running, clock: FakeClock
) -> None:
    task_id, lead, _ = await a_desk(delegating, clock)
    async with serve_in_process() as url:
        await vendor_registered(lead, url, "export_report")
        before = len(delegating.connector.sent)
        await lead.ask(f'delegate T{task_id} to vendor export_report {{"campaign": "abm-q1", "kib": 600}}')
        await delegating.bot.drain()
    [result] = to_the_writer(delegating, before)
    card = result.body["attachments"][0]["content"]
    assert schema_errors(card) == []
    assert "The whole answer (600 KiB) is a file" in all_text(card)
    [button] = top_actions(card)
    assert button["title"] == "Open the whole answer (600 KiB)"
    assert button["url"].startswith("https://bot.example/api/artifacts/")

    app = web.Application()
    add_artifact_routes(app, delegating.bot.tenants, Settings.from_env({}), links=LINKS)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        path = button["url"].removeprefix("https://bot.example")
        async with aiohttp.ClientSession() as session:
            async with session.get(server.make_url(path)) as opened:
                assert opened.status == 200
                assert opened.headers["Content-Disposition"].startswith("attachment")
                assert opened.headers["X-Content-Type-Options"] == "nosniff"
                body = await opened.read()
            assert len(body) == 600 * 1024
            assert body.startswith(b"abm-q1,sends,opens,clicks\n")
            async with session.get(server.make_url(path.replace("signature=", "signature=0"))) as forged:
                assert forged.status == 403
            clock.advance(days=8)
            async with session.get(server.make_url(path)) as stale:
                assert stale.status == 403
    finally:
        await server.close()


async def test_the_card_shows_a_checked_image_inline_the_resource_links_as_text_and_the_structured_answer(
    delegating: Running, clock: FakeClock
) -> None:
    task_id, lead, _ = await a_desk(delegating, clock)
    async with serve_in_process() as url:
        await vendor_registered(lead, url, "campaign_visual", "campaign_metrics")
        before = len(delegating.connector.sent)
        await lead.ask(f'delegate T{task_id} to vendor campaign_visual {{"campaign": "abm-q1"}}')
        await delegating.bot.drain()
        await lead.ask(f'delegate T{task_id} to vendor campaign_metrics {{"campaign": "abm-q1"}}')
        await delegating.bot.drain()
    visual, metrics = [
        s.body["attachments"][0]["content"]
        for s in delegating.connector.sent[before:]
        if s.conversation_id == "a:writer"
    ]
    assert schema_errors(visual) == []
    [image] = of_type(visual, "Image")
    assert image["url"] == "data:image/png;base64," + base64.b64encode(tiny_png()).decode()
    assert "- banner.psd: https://cdn.vendor.example/abm-q1.psd" in all_text(visual)
    assert "Links in the answer from vendor (from the agent, not from me" in all_text(visual)
    assert schema_errors(metrics) == []
    assert "Data from vendor:" in all_text(metrics)
    assert "sqls: 21" in all_text(metrics)


async def test_the_owner_views_a_browser_agents_screenshots_from_the_card_and_only_through_a_valid_link(
    delegating: Running, clock: FakeClock
) -> None:
    task_id, lead, _ = await a_desk(delegating, clock)
    async with WebVendor(username=USERNAME, password=PASSWORD, two_factor=False) as vendor:
        config = vendor_config(vendor)
        await lead.ask(f"adapter add browser vendor {json.dumps(config)}")
        before = len(delegating.connector.sent)
        await lead.ask(
            f'delegate T{task_id} to vendor create_campaign_brief {{"name": "ABM Q1", "audience": "CFOs in fintech"}}'
        )
        await delegating.bot.drain()
    [result] = to_the_writer(delegating, before)
    card = result.body["attachments"][0]["content"]
    assert schema_errors(card) == []
    assert "Brief BR-1001 created" in all_text(card)
    assert "A screenshot vendor took, the fields it filled masked: open it with its button below" in all_text(card)
    [button] = top_actions(card)
    assert button["title"] == "View evidence: the created brief"
    assert button["url"].startswith("https://bot.example/api/artifacts/")
    path = button["url"].removeprefix("https://bot.example")

    app = web.Application()
    add_artifact_routes(app, delegating.bot.tenants, Settings.from_env({}), links=LINKS)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.make_url(path)) as opened:
                assert opened.status == 200
                assert opened.content_type == "image/png"
                assert opened.headers["X-Content-Type-Options"] == "nosniff"
                assert (await opened.read()).startswith(b"\x89PNG\r\n\x1a\n")
            # Another delegation's path with this screenshot's id, signed by us: still not this delegation's evidence.
            tenant, delegation, evidence = path.split("?")[0].split("/")[-3:]
            elsewhere = LINKS.link(tenant, int(delegation) + 1, int(evidence), now=clock.now)
            assert elsewhere is not None
            async with session.get(server.make_url(elsewhere.removeprefix("https://bot.example"))) as other:
                assert other.status == 404
                assert b"PNG" not in await other.read()
            tampered = path.replace(f"/{evidence}?", f"/{int(evidence) + 1}?")
            async with session.get(server.make_url(tampered)) as forged:
                assert forged.status == 403
                assert b"PNG" not in await forged.read()
            clock.advance(days=8)
            async with session.get(server.make_url(path)) as stale:
                assert stale.status == 403
                assert b"PNG" not in await stale.read()
    finally:
        await server.close()
