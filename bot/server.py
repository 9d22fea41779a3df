"""The bot process: migrate, wire store + adapter + bot into the HTTP app, serve until told to stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from types import SimpleNamespace

import anthropic
from aiohttp import web
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import CallerIdConstants
from botframework.connector.auth import AuthenticationConstants, ServiceClientCredentialsFactory

from bot import messages
from bot.app import create_app
from bot.connectors import ReusedConnectorClients
from bot.delegating import Delegator
from bot.llm import Assistant
from bot.operations import default_registry
from bot.recommending import ClaudeRecommender
from bot.scheduler import start_scheduler, worker_name
from bot.sender import Sender
from bot.settings import Settings
from bot.teams import ChiefOfStaffBot
from planner.decisions import DecisionKeys
from planner.migrate import upgrade
from planner.store import Store
from planner.vault import VaultError

logger = logging.getLogger(__name__)


def create_adapter(
    settings: Settings, *, credentials_factory: ServiceClientCredentialsFactory | None = None
) -> CloudAdapter:
    """A CloudAdapter that validates every inbound JWT when credentials are set (local mode: none to check),
    reusing its connector clients (see `bot.connectors`).

    `credentials_factory` replaces botbuilder's own (the app id and password) for the bot's outbound tokens.
    """
    configuration = SimpleNamespace(
        APP_ID=settings.app_id,
        APP_PASSWORD=settings.app_password,
        APP_TYPE=settings.app_type,
        APP_TENANTID=settings.app_tenant_id,
    )
    if settings.openid_metadata_url:
        # botbuilder's public-cloud values, with the signing keys read from elsewhere: setting any of these
        # switches botbuilder to its parameterized authentication, which then needs them all.
        configuration.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = settings.openid_metadata_url
        configuration.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL = (
            AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL
        )
        configuration.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER
        configuration.TO_CHANNEL_FROM_BOT_LOGIN_URL = AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL
        configuration.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE = AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE
        configuration.OAUTH_URL = AuthenticationConstants.OAUTH_URL
        configuration.CALLER_ID = CallerIdConstants.public_azure_channel
    authentication = ConfigurationBotFrameworkAuthentication(configuration, credentials_factory=credentials_factory)
    adapter = CloudAdapter(ReusedConnectorClients(authentication))
    adapter.on_turn_error = on_turn_error
    return adapter


def decision_keys(settings: Settings) -> DecisionKeys | None:
    """The keys that sign the decision log; without them (no COS_SECRET_KEYS in production) it is kept unsigned."""
    try:
        keys = settings.decision_keys()
    except VaultError as error:
        logger.error("the decision log is not signed: %s", error)
        return None
    if keys is None:
        logger.warning("the decision log is not signed: set COS_SECRET_KEYS (see .env.example)")
    return keys


def create_assistant(settings: Settings) -> Assistant | None:
    """Claude, when a key is configured; without one the bot works through its command grammar."""
    if not settings.anthropic_api_key:
        return None
    client = anthropic.AsyncAnthropic(api_key=settings.anthropic_api_key, max_retries=1, timeout=30.0)
    return Assistant(client, default_registry(), model=settings.llm_model)


def create_delegator(store: Store, settings: Settings, sender: Sender) -> Delegator | None:
    """Delegation to vendor agents, when secrets can be kept (COS_SECRET_KEYS, or a local key in local mode)."""
    try:
        vault = settings.vault()
    except VaultError as error:
        logger.error("delegation is off: %s", error)
        return None
    if vault is None:
        logger.warning("delegation is off: set COS_SECRET_KEYS so adapter secrets can be kept encrypted")
        return None
    return Delegator(
        store,
        vault,
        deliver_now=sender.deliver,
        approval_expiry=settings.approval_expiry,
        limits=settings.adapter_limits,
    )


async def on_turn_error(turn_context: TurnContext, error: Exception) -> None:
    """The last resort of a turn: log it, tell the user plainly, never leak the error."""
    logger.error("a turn failed: %s", type(error).__name__, exc_info=error)
    try:
        await turn_context.send_activity(messages.FAILED)
    except Exception:
        logger.exception("could not tell the user that the turn failed")


async def run(settings: Settings, *, host: str, port: int) -> int:
    """Serve the bot until SIGINT or SIGTERM."""
    store = Store.from_url(settings.database_url)
    await upgrade(store.engine)
    store.decision_keys = decision_keys(settings)
    adapter = create_adapter(settings)
    assistant = create_assistant(settings)
    # With a key, Claude writes the digest's recommendations as it does in chat; the rules otherwise.
    recommender = ClaudeRecommender(assistant.client, model=assistant.model) if assistant else None
    sender = Sender(store, adapter, app_id=settings.app_id or None, worker=worker_name(), recommender=recommender)
    delegator = create_delegator(store, settings, sender)
    bot = ChiefOfStaffBot(store, settings, assistant=assistant, delegator=delegator)
    bot.adapter = adapter
    app = create_app(store, adapter, bot, settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    scheduler = start_scheduler(
        store,
        adapter,
        app_id=settings.app_id or None,
        every_seconds=settings.tick_seconds,
        sender=sender,
        delegator=delegator,
        resume=bot.resume_approved,
        checkpoints=settings.decision_checkpoints_path if store.decision_keys else None,
    )
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
        scheduler.shutdown(wait=False)
        await runner.cleanup()
        await bot.drain()
        if delegator is not None:
            await delegator.close()
        await store.close()
    return 0
