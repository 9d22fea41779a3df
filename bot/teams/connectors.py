"""Connector clients built once and reused, instead of once per turn and per proactive message.

botbuilder's CloudAdapter asks for a new connector client (and a new user token client) for every turn and
every proactive message. Building one is costly (msrest's retry policy set-up alone searches a long list of status
codes over and over), and it happens twice per message: at Teams' rate of 50 messages a second that would take a
whole core and cap the sender below Teams' ceiling. A client holds nothing specific to one message (its service URL and
credentials; the credentials cache their token), so one per bot, service URL and audience serves every message,
as botbuilder's older BotFrameworkAdapter did with its own cache.
"""

from __future__ import annotations

import logging
from typing import TypeVar

import requests
from botbuilder.schema import Activity
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AuthenticateRequestResult,
    AuthenticationConstants,
    BotFrameworkAuthentication,
    ClaimsIdentity,
    ConnectorFactory,
    UserTokenClient,
)
from botframework.connector.skills import BotFrameworkClient

logger = logging.getLogger(__name__)
MAX_CLIENTS = 256
"""Service URLs remembered at most (Teams uses a handful; the bound is against a flood of made-up ones)."""
Key = TypeVar("Key")
Client = TypeVar("Client")


def _remember(cache: dict[Key, Client], key: Key, client: Client) -> Client:
    if len(cache) >= MAX_CLIENTS:
        del cache[next(iter(cache))]  # the oldest
    cache[key] = client
    return client


def _app_id(claims_identity: ClaimsIdentity) -> str | None:
    """The bot's app id in the claims (the audience from a channel, the app id claim otherwise), as botbuilder
    reads it to build the client."""
    return claims_identity.get_claim_value(AuthenticationConstants.AUDIENCE_CLAIM) or claims_identity.get_claim_value(
        AuthenticationConstants.APP_ID_CLAIM
    )


class _ReusingConnectorFactory(ConnectorFactory):
    def __init__(
        self,
        inner: ConnectorFactory,
        app_id: str | None,
        clients: dict[tuple[str | None, str, str | None], ConnectorClient],
    ) -> None:
        self._inner = inner
        self._app_id = app_id
        self._clients = clients

    async def create(self, service_url: str, audience: str | None = None) -> ConnectorClient:
        key = (self._app_id, service_url, audience)
        client = self._clients.get(key)
        if client is None:
            client = _remember(self._clients, key, await self._inner.create(service_url, audience))
        return client


class ReusedConnectorClients(BotFrameworkAuthentication):
    """`inner` (botbuilder's authentication), with its connector and user token clients kept and reused."""

    def __init__(self, inner: BotFrameworkAuthentication) -> None:
        self._inner = inner
        self._connector_clients: dict[tuple[str | None, str, str | None], ConnectorClient] = {}
        self._token_clients: dict[str | None, UserTokenClient] = {}

    async def authenticate_request(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
        """botbuilder's check of the token; raises PermissionError for any token it cannot accept.

        botbuilder refuses most bad tokens with PermissionError, but some forged or malformed ones surface as
        whatever broke first (a bare Exception for a disallowed algorithm, IndexError for an unpublished key id,
        KeyError for a token without an issuer, AttributeError without a token): all are the caller's fault, so
        all are a refusal (401), not a server error. Only failing to fetch the signing keys stays a server error.
        """
        try:
            result = await self._inner.authenticate_request(activity, auth_header)
        except (PermissionError, requests.RequestException):
            raise
        except Exception as error:
            logger.warning("refused a token that failed validation (%s)", type(error).__name__)
            raise PermissionError("the token could not be validated") from error
        if result.connector_factory is not None:
            result.connector_factory = _ReusingConnectorFactory(
                result.connector_factory, _app_id(result.claims_identity), self._connector_clients
            )
        return result

    async def authenticate_streaming_request(
        self, auth_header: str, channel_id_header: str
    ) -> AuthenticateRequestResult:
        return await self._inner.authenticate_streaming_request(auth_header, channel_id_header)

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return _ReusingConnectorFactory(
            self._inner.create_connector_factory(claims_identity), _app_id(claims_identity), self._connector_clients
        )

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        app_id = _app_id(claims_identity)
        client = self._token_clients.get(app_id)
        if client is None:
            client = _remember(self._token_clients, app_id, await self._inner.create_user_token_client(claims_identity))
        return client

    def create_bot_framework_client(self) -> BotFrameworkClient:
        return self._inner.create_bot_framework_client()

    def get_originating_audience(self) -> str:
        return self._inner.get_originating_audience()

    async def authenticate_channel_request(self, auth_header: str) -> ClaimsIdentity:
        return await self._inner.authenticate_channel_request(auth_header)
