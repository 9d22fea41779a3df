"""The bot process: migrate, wire store + adapter + bot into the HTTP app, serve until told to stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from types import SimpleNamespace

from aiohttp import web
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication

from bot.app import create_app
from bot.settings import Settings
from bot.teams import ChiefOfStaffBot
from planner.migrate import upgrade
from planner.store import Store

logger = logging.getLogger(__name__)


def create_adapter(settings: Settings) -> CloudAdapter:
    """A CloudAdapter that validates every inbound JWT when credentials are set (local mode: none to check)."""
    configuration = SimpleNamespace(
        APP_ID=settings.app_id,
        APP_PASSWORD=settings.app_password,
        APP_TYPE=settings.app_type,
        APP_TENANTID=settings.app_tenant_id,
    )
    return CloudAdapter(ConfigurationBotFrameworkAuthentication(configuration))


async def run(settings: Settings, *, host: str, port: int) -> int:
    """Serve the bot until SIGINT or SIGTERM."""
    store = Store.from_url(settings.database_url)
    await upgrade(store.engine)
    adapter = create_adapter(settings)
    bot = ChiefOfStaffBot(store, settings)
    app = create_app(store, adapter, bot, max_body_bytes=settings.max_body_bytes)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    mode = "local mode (no authentication, loopback only)" if settings.local_mode else "authenticated"
    logger.info("Chief of Staff listening on http://%s:%s/api/messages, %s", host, port, mode)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        logger.info("stopping")
        await runner.cleanup()
        await store.close()
    return 0
