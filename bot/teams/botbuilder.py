"""botbuilder, the Teams SDK this bot runs on: the adapter that authenticates and runs turns, serving an inbound
activity through it, and `BotbuilderChannel`, the `TeamsChannel` on that adapter."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, TypeAlias

import aiohttp
from aiohttp import web
from botbuilder.core import ActivityHandler, BotAdapter, MessageFactory, TurnContext, serializer_helper
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, Attachment, ChannelAccount, ConversationParameters, ConversationReference
from botframework.connector.auth import AuthenticationConstants, ServiceClientCredentialsFactory
from msrest.exceptions import ClientRequestError, DeserializationError, HttpOperationError

from bot.cards import ADAPTIVE_CARD_CONTENT_TYPE
from bot.settings import Settings
from bot.teams.auth import InboundTokens, SigningKeys
from bot.teams.channel import Address, Member, Outgoing, Rejected, Throttled, TransientFailure
from bot.teams.connectors import ReusedConnectorClients
from bot.teams.content import CardContent
from bot.text import messages

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


def create_channel(settings: Settings, **adapter_options: Any) -> BotbuilderChannel:
    """The `TeamsChannel` on a new adapter (see `create_adapter`, which takes `adapter_options`)."""
    return BotbuilderChannel(create_adapter(settings, **adapter_options), app_id=settings.app_id or None)


async def on_turn_error(turn_context: TurnContext, error: Exception) -> None:
    """The last resort of a turn: log it, tell the user plainly, never leak the error."""
    logger.error("a turn failed: %s", type(error).__name__, exc_info=error)
    try:
        await turn_context.send_activity(messages.FAILED)
    except Exception:
        logger.exception("could not tell the user that the turn failed")


async def process(
    adapter: Adapter, bot: ActivityHandler, request: web.Request, activity: dict[str, Any]
) -> web.Response:
    """Authenticate `request` and run `bot`'s turn on `activity` (its body, already read and checked): 201, or an
    invoke's own answer.

    Raises web.HTTPException (400, 401, 403) for a refused activity or token, jwt.PyJWTError for a malformed token,
    SigningKeysUnavailable when the issuer's keys cannot be fetched, ActivityUnreadable for a field of the wrong form.
    """
    try:
        parsed = Activity().deserialize(activity)
    except DeserializationError as error:
        raise ActivityUnreadable() from error
    if not parsed.type:
        raise web.HTTPBadRequest(reason="an activity needs a type")
    try:
        invoke_response = await adapter.process_activity(request.headers.get("Authorization", ""), parsed, bot.on_turn)
    except PermissionError:
        raise web.HTTPUnauthorized() from None
    if invoke_response:
        return web.json_response(data=serializer_helper(invoke_response.body), status=invoke_response.status)
    return web.Response(status=201)


class BotbuilderChannel:
    """`TeamsChannel` on botbuilder's adapter: each call continues the conversation it is about, through the
    adapter's (reused) connector client, and botbuilder's and msrest's errors come out as `TeamsError`s."""

    def __init__(self, adapter: Adapter, *, app_id: str | None = None) -> None:
        self.adapter = adapter
        self.app_id = app_id

    async def send(self, address: Address, message: Outgoing) -> str | None:
        activity = outgoing_activity(message)

        async def send(turn_context: TurnContext) -> str | None:
            response = await turn_context.send_activity(activity)
            return response.id if response is not None else None

        return await self._continue(address, send)

    async def update(self, address: Address, activity_id: str, message: Outgoing) -> None:
        activity = outgoing_activity(message)
        activity.id = activity_id

        async def update(turn_context: TurnContext) -> None:
            await turn_context.update_activity(activity)

        await self._continue(address, update)

    async def member(self, conversation: Address, user_id: str) -> Member | None:
        async def look_up(turn_context: TurnContext) -> Member | None:
            connector: Any = turn_context.turn_state[BotAdapter.BOT_CONNECTOR_CLIENT_KEY]
            account = await connector.conversations.get_conversation_member(conversation.conversation_id, user_id)
            if account is None or not account.id:
                return None
            return Member(id=account.id, aad_object_id=account.aad_object_id or None, name=account.name or None)

        try:
            return await self._continue(conversation, look_up)
        except Rejected as error:
            if error.status == 404:  # not a member of this conversation
                return None
            raise

    async def open_personal_chat(self, via: Address, member: Member) -> Address:
        created: list[ConversationReference] = []

        async def remember(turn_context: TurnContext) -> None:
            created.append(TurnContext.get_conversation_reference(turn_context.activity))

        parameters = ConversationParameters(
            is_group=False,
            bot=ChannelAccount(id=via.bot_id) if via.bot_id else None,
            members=[ChannelAccount(id=member.id)],
            tenant_id=via.tenant_id,
            channel_data={"tenant": {"id": via.tenant_id}} if via.tenant_id else None,
        )
        with _teams_errors():
            await self.adapter.create_conversation(
                self.app_id or "", remember, parameters, via.channel_id, via.service_url, None
            )
        if not created:
            raise TransientFailure("Teams opened no conversation")
        reference = created[0]
        return Address(
            service_url=reference.service_url or via.service_url,
            conversation_id=reference.conversation.id,
            tenant_id=via.tenant_id,
            bot_id=via.bot_id,
            user_id=member.id,
            conversation_kind="personal",
            channel_id=via.channel_id,
        )

    async def _continue(self, address: Address, work: Callable[[TurnContext], Awaitable[Any]]) -> Any:
        """Run `work` in a continued conversation at `address`; what it returns, or its error as a TeamsError."""
        results: list[Any] = []
        failures: list[Exception] = []

        async def run(turn_context: TurnContext) -> None:
            # Caught here, not by the adapter's turn error handler: that one would apologise to the user.
            try:
                results.append(await work(turn_context))
            except Exception as error:
                failures.append(error)

        with _teams_errors():
            await self.adapter.continue_conversation(reference_of(address), run, self.app_id)
            if failures:
                raise failures[0]
        return results[0] if results else None


def reference_of(address: Address) -> ConversationReference:
    """The conversation reference botbuilder continues a conversation from."""
    return ConversationReference().deserialize(address.stored())


def outgoing_activity(message: Outgoing) -> Activity:
    """The message activity for `message`; its cards go to the wire as built (see `CardContent`)."""
    attachments = [
        Attachment(content_type=ADAPTIVE_CARD_CONTENT_TYPE, content=CardContent(dict(card))) for card in message.cards
    ]
    activity = MessageFactory.list(attachments) if attachments else MessageFactory.text(message.text or "")
    if message.text:
        activity.text = message.text
    if message.summary:
        activity.summary = message.summary
    if message.channel_data:
        activity.channel_data = dict(message.channel_data)
    return activity


@contextmanager
def _teams_errors() -> Iterator[None]:
    """botbuilder's, msrest's and aiohttp's errors as ours; anything else (a bug) as it is."""
    try:
        yield
    except HttpOperationError as error:
        response = error.response
        status = response.status_code if response is not None else None
        if status == 429:
            raise Throttled(_retry_after(response), str(error)) from error
        if status is None or status == 412 or status >= 500:
            raise TransientFailure(str(error), status=status) from error
        raise Rejected(status, str(error)) from error
    except (TimeoutError, ClientRequestError, aiohttp.ClientError, ConnectionError) as error:
        raise TransientFailure(f"connection failed: {error}") from error


def _retry_after(response: Any) -> float | None:
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None
