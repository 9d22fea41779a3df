"""botbuilder, the Teams SDK this bot runs on: the adapter that authenticates and runs turns, and serving an
inbound activity through it."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any, TypeAlias

from aiohttp import web
from botbuilder.core import ActivityHandler, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botframework.connector.auth import AuthenticationConstants, ServiceClientCredentialsFactory
from msrest.exceptions import DeserializationError

from bot import messages
from bot.settings import Settings
from bot.teams.auth import InboundTokens, SigningKeys
from bot.teams.connectors import ReusedConnectorClients

logger = logging.getLogger(__name__)

Adapter: TypeAlias = CloudAdapter
"""What runs the bot's turns and authenticates them (see `create_adapter`)."""


class ActivityUnreadable(ValueError):
    """An activity with a field of the wrong form (a timestamp that is not one): the sender's fault, answer 400."""

    def __init__(self) -> None:
        super().__init__("the activity could not be read: a field has a value of the wrong form")


def create_adapter(
    settings: Settings,
    *,
    credentials_factory: ServiceClientCredentialsFactory | None = None,
    channel_keys: SigningKeys | None = None,
) -> Adapter:
    """A CloudAdapter that checks every inbound token when credentials are set (local mode: none to check, see
    bot/teams/auth.py), reusing its connector clients (see `bot.teams.connectors`).

    `credentials_factory` replaces botbuilder's own (the app id and password) for the bot's outbound tokens;
    `channel_keys` the Bot Connector's signing keys, read from COS_OPENID_METADATA_URL or Microsoft's cloud.
    """
    configuration = SimpleNamespace(
        APP_ID=settings.app_id,
        APP_PASSWORD=settings.app_password,
        APP_TYPE=settings.app_type,
        APP_TENANTID=settings.app_tenant_id,
    )
    outbound = ConfigurationBotFrameworkAuthentication(configuration, credentials_factory=credentials_factory)
    authentication = InboundTokens(
        ReusedConnectorClients(outbound),
        app_id=settings.app_id,
        channel_keys=channel_keys
        or SigningKeys(settings.openid_metadata_url or AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL),
        emulator_keys=SigningKeys(AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL),
    )
    adapter = CloudAdapter(authentication)
    adapter.on_turn_error = on_turn_error
    return adapter


async def on_turn_error(turn_context: TurnContext, error: Exception) -> None:
    """The last resort of a turn: log it, tell the user plainly, never leak the error."""
    logger.error("a turn failed: %s", type(error).__name__, exc_info=error)
    try:
        await turn_context.send_activity(messages.FAILED)
    except Exception:
        logger.exception("could not tell the user that the turn failed")


async def process(
    adapter: Adapter, bot: ActivityHandler, request: web.Request, activity: dict[str, Any]
) -> web.StreamResponse | None:
    """Authenticate `request` and run `bot`'s turn on `activity` (its body, already read and checked).

    Raises web.HTTPException (401, 403) for a refused token, jwt.PyJWTError for a malformed one,
    SigningKeysUnavailable when the issuer's keys cannot be fetched, ActivityUnreadable for a field of the wrong form.
    """
    # CloudAdapter reads the body again through request.json(): give it the bytes already read and checked.
    request._read_bytes = json.dumps(activity).encode()
    try:
        return await adapter.process(request, bot)
    except DeserializationError as error:
        raise ActivityUnreadable() from error
