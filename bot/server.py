"""The bot process: migrate, wire store + adapter + bot into the HTTP app, serve until told to stop."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import signal
import sys
from pathlib import Path

import anthropic
from aiohttp import web

from adapters.a2a import PUSH_PATH, A2APush
from bot.artifacts import ArtifactLinks
from bot.delegating import Delegator
from bot.http.a2a_push import add_a2a_push_routes
from bot.http.app import create_app
from bot.http.oauth_callback import CALLBACK_PATH, add_oauth_callback_route
from bot.llm import Assistant
from bot.operations import default_registry
from bot.progress import LiveCards
from bot.recommending import ClaudeRecommender
from bot.sampling import ClaudeSampler
from bot.scheduler import start_scheduler, worker_name
from bot.sender import Sender
from bot.settings import Settings
from bot.teams.botbuilder import BotbuilderChannel, create_adapter
from bot.teams.handler import ChiefOfStaffBot
from bot.text.errors import describe_plain
from planner.domain.decisions import DecisionKeys
from planner.services.sealed import count_sealed_secrets
from planner.services.tenants import Tenants
from planner.store import Store
from planner.store.migrate import upgrade
from planner.store.vault import VaultError

logger = logging.getLogger(__name__)


class LocalKeyLost(RuntimeError):
    """Local mode's key file is gone while the database holds secrets sealed with it: a new key would open none."""

    def __init__(self, path: Path, sealed: int) -> None:
        super().__init__(
            f"the local secret key file {path} is missing, but the database holds {sealed} secret(s) or signed "
            "decision(s) sealed with the key it held. Restore the file from a backup (or set COS_SECRET_KEYS to that "
            "key) and start again. If the key is lost for good, start over on purpose: set COS_SECRET_KEYS to a new "
            "key (see .env.example), register again the adapters and context sources whose secrets it sealed, and "
            "keep a copy of this database: the decision log's earlier entries can no longer be verified."
        )


async def prepare_local_key(settings: Settings, store: Store) -> None:
    """In local mode without COS_SECRET_KEYS, make the key file when the database holds nothing sealed yet.

    Raises LocalKeyLost when the file is missing and something is sealed (never a silent new key).
    """
    path = _missing_local_key(settings)
    if path is None:
        return
    sealed = await count_sealed_secrets(store)
    if sealed:
        raise LocalKeyLost(path, sealed)
    settings.create_local_key()
    logger.info("made a new secret key in %s (keep it: the secrets stored by this bot need it)", path)


def _missing_local_key(settings: Settings) -> Path | None:
    """Where local mode's key file belongs, when the settings need one and it is not there."""
    if not settings.needs_local_key:
        return None
    path = Path(settings.secret_key_file).absolute()
    return None if path.exists() else path


def decision_keys(settings: Settings) -> DecisionKeys | None:
    """The keys that sign the decision log; without them (no COS_SECRET_KEYS in production) it is kept unsigned."""
    try:
        keys = settings.decision_keys()
    except VaultError as error:
        logger.error("the decision log is not signed: %s", describe_plain(error))
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


def create_sampler(settings: Settings, assistant: Assistant | None) -> ClaudeSampler | None:
    """The bot's model lent to MCP servers that ask (COS_MCP_SAMPLING=on, with a key); None: their requests are
    declined."""
    if not settings.mcp_sampling:
        return None
    if assistant is None:
        logger.warning("MCP sampling stays off: COS_MCP_SAMPLING=on needs ANTHROPIC_API_KEY")
        return None
    return ClaudeSampler(assistant.client, model=assistant.model)


def create_delegator(
    tenants: Tenants,
    settings: Settings,
    sender: Sender,
    *,
    a2a_push: A2APush | None = None,
    sampler: ClaudeSampler | None = None,
) -> Delegator | None:
    """Delegation to vendor agents, when secrets can be kept (COS_SECRET_KEYS, or a local key in local mode)."""
    try:
        vault = settings.vault()
    except VaultError as error:
        logger.error("delegation is off: %s", describe_plain(error))
        return None
    if vault is None:
        logger.warning("delegation is off: set COS_SECRET_KEYS so adapter secrets can be kept encrypted")
        return None
    return Delegator(
        tenants.store,
        vault,
        tenants=tenants,
        deliver_now=sender.deliver,
        approval_expiry=settings.approval_expiry,
        limits=settings.adapter_limits,
        a2a_push=a2a_push,
        live_cards=LiveCards(sender),
        sampler=sampler,
        oauth_callback=settings.public_url + CALLBACK_PATH if settings.public_url else "",
    )


def keep_memory_private() -> bool:
    """Make this process not dumpable (Linux): another process of the same user, such as an adapter's stdio server,
    then cannot read its environment or memory through /proc, where the bot's secrets are. False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


_PR_SET_DUMPABLE = 4


def freeze_startup_heap() -> None:
    """Leave what start-up made (modules, classes, the SDKs' tables and schemas) out of the garbage collector's full
    collections from now on. It lives as long as the process; scanned at every full collection, it made each one,
    under many delegations, a pause in which no turn was answered."""
    gc.collect()
    gc.freeze()


async def run(settings: Settings, *, host: str, port: int) -> int:
    """Serve the bot until SIGINT or SIGTERM."""
    if not keep_memory_private():
        logger.warning("could not keep the process's memory private: an adapter's process may read its secrets")
    store = Store.from_url(settings.database_url)
    await upgrade(store.engine)
    try:
        await prepare_local_key(settings, store)
    except LocalKeyLost:
        await store.close()
        raise
    store.decision_keys = decision_keys(settings)  # only now: local mode's key may have just been made
    adapter = create_adapter(settings)
    assistant = create_assistant(settings)
    # With a key, Claude writes the digest's recommendations as it does in chat; the rules otherwise.
    recommender = ClaudeRecommender(assistant.client, model=assistant.model) if assistant else None
    channel = BotbuilderChannel(adapter, app_id=settings.app_id or None)
    tenants = Tenants(store)  # each tenant's services, built once, for everything wired below
    links = ArtifactLinks.from_settings(settings)  # also signs the sign-in cards' links
    sender = Sender(
        store,
        channel,
        worker=worker_name(),
        recommender=recommender,
        tenants=tenants,
        artifact_links=links,
    )
    # A2A agents post task updates to the bot only where the internet can reach it; elsewhere their tasks are polled.
    a2a_push = A2APush(settings.public_url + PUSH_PATH) if settings.public_url else None
    delegator = create_delegator(
        tenants, settings, sender, a2a_push=a2a_push, sampler=create_sampler(settings, assistant)
    )
    bot = ChiefOfStaffBot(store, settings, assistant=assistant, delegator=delegator, tenants=tenants)
    bot.adapter = adapter
    app = create_app(store, adapter, bot, settings)
    if a2a_push is not None:
        add_a2a_push_routes(app, a2a_push)
    if delegator is not None:
        add_oauth_callback_route(app, store, delegator.vault, links)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    freeze_startup_heap()
    scheduler = start_scheduler(
        store,
        channel,
        every_seconds=settings.tick_seconds,
        sender=sender,
        delegator=delegator,
        resume=bot.resume_approved,
        checkpoints=settings.decision_checkpoints_path if store.decision_keys else None,
    )
    mode = "local mode (no authentication)" if settings.local_mode else "authenticated"
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
