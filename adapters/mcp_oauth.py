"""OAuth 2.1 sign-in for MCP servers that act as a person: the authorization-code grant with PKCE, from the `mcp` SDK.

An admin registers such a server with `oauth_grant: authorization_code` (see `MCPConfig`). Each person who
delegates to it gets a session of their own, authorized with their own grant: `PersonTokens` keeps the tokens, per
adapter and person, in a `GrantStore` (the registry's is sealed with the vault, planner/services/oauth.py), and the
adapter's registration with the authorization server (dynamic, or the admin's pre-registered client) beside them.
`PersonOAuthProvider` is the SDK's `OAuthClientProvider`: it discovers the authorization server, registers the bot
when the server lets it, refreshes an expired token with the refresh token, and when there is no usable grant sends
the person the authorization URL through their `SignInChannel` (a Teams card) and finishes the exchange with what
the bot's callback received.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Literal, Protocol

import httpx2
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl, ValidationError

CLIENT_NAME = "Chief of Staff"
_REGISTRATION = ""
"""The person under whom the adapter's own registration with the authorization server is kept."""


class GrantStore(Protocol):
    """Where an adapter keeps what each person granted it, as bytes (the registry seals them with the vault)."""

    async def load(self, user_id: str) -> bytes | None:
        """What was kept for `user_id`, or None."""
        ...

    async def save(self, user_id: str, grant: bytes) -> None:
        """Keep `grant` for `user_id` in place of what was kept."""
        ...


class MemoryGrantStore:
    """Grants kept in memory: for an agent built alone (tests, the conformance client); a restart forgets them."""

    def __init__(self) -> None:
        self.grants: dict[str, bytes] = {}

    async def load(self, user_id: str) -> bytes | None:
        return self.grants.get(user_id)

    async def save(self, user_id: str, grant: bytes) -> None:
        self.grants[user_id] = grant


class SignInRefused(Exception):
    """The authorization server sent the person back with an error (they declined, or it refused the request)."""

    def __init__(self, error: str) -> None:
        self.error = error
        super().__init__(f"the sign-in ended with {error!r}")


class PersonTokens:
    """One person's tokens (with when they expire) and the adapter's registration: the SDK's `TokenStorage`."""

    def __init__(self, grants: GrantStore, user_id: str) -> None:
        self._grants = grants
        self.user_id = user_id

    async def _load(self, user_id: str) -> dict[str, object]:
        kept = await self._grants.load(user_id)
        try:
            loaded = json.loads(kept) if kept else {}
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}

    async def get_tokens(self) -> OAuthToken | None:
        kept = (await self._load(self.user_id)).get("tokens")
        try:
            return OAuthToken.model_validate(kept) if kept else None
        except ValidationError:
            return None

    async def expires_at(self) -> float | None:
        """When the kept access token expires (seconds since the epoch), or None when it did not say."""
        expires = (await self._load(self.user_id)).get("expires_at")
        return float(expires) if isinstance(expires, int | float) else None

    async def set_tokens(self, tokens: OAuthToken) -> None:
        expires_at = time.time() + tokens.expires_in if tokens.expires_in is not None else None
        grant = {"tokens": tokens.model_dump(mode="json", exclude_none=True), "expires_at": expires_at}
        await self._grants.save(self.user_id, json.dumps(grant).encode())

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        kept = (await self._load(_REGISTRATION)).get("client")
        try:
            return OAuthClientInformationFull.model_validate(kept) if kept else None
        except ValidationError:
            return None

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        grant = {"client": client_info.model_dump(mode="json", exclude_none=True)}
        await self._grants.save(_REGISTRATION, json.dumps(grant).encode())


class PreRegisteredClient:
    """`tokens`, with the client the admin registered with the authorization server beforehand as the registration
    (the SDK reads it from its `TokenStorage`)."""

    def __init__(self, tokens: PersonTokens, client: OAuthClientInformationFull) -> None:
        self._tokens = tokens
        self._client = client

    async def get_tokens(self) -> OAuthToken | None:
        return await self._tokens.get_tokens()

    async def set_tokens(self, tokens: OAuthToken) -> None:
        await self._tokens.set_tokens(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self._client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        await self._tokens.set_client_info(client_info)


SignInFn = Callable[[str], Awaitable[Mapping[str, str]]]
"""Send the person the authorization URL and wait for what the callback received."""


class PersonOAuthProvider(OAuthClientProvider):
    """The SDK's authorization-code flow for one person, signing in through `sign_in` when there is no usable grant.

    `client_id` (and `client_secret`): a client the admin registered with the authorization server beforehand;
    without one the bot registers itself (dynamic registration), or names itself by `client_metadata_url` where the
    server supports client ID metadata documents.
    """

    def __init__(
        self,
        *,
        server_url: str,
        tokens: PersonTokens,
        redirect_uri: str,
        sign_in: SignInFn,
        scope: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        client_metadata_url: str | None = None,
    ) -> None:
        method: Literal["client_secret_basic", "none"] = "client_secret_basic" if client_secret else "none"
        metadata = OAuthClientMetadata(
            redirect_uris=[AnyUrl(redirect_uri)],
            client_name=CLIENT_NAME,
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method=method,
            scope=scope,
        )
        self._tokens = tokens
        self._sign_in = sign_in
        self._authorization_url = ""
        self._expiry_loaded = False
        self._loading_expiry = asyncio.Lock()
        storage: TokenStorage = tokens
        if client_id:
            preregistered = OAuthClientInformationFull(
                client_id=client_id,
                client_secret=client_secret,
                redirect_uris=[AnyUrl(redirect_uri)],
                grant_types=["authorization_code", "refresh_token"],
                token_endpoint_auth_method=method,
                scope=scope,
            )
            storage = PreRegisteredClient(tokens, preregistered)
        super().__init__(
            server_url,
            metadata,
            storage,
            redirect_handler=self._redirect,
            callback_handler=self._callback,
            client_metadata_url=client_metadata_url,
        )

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        """The SDK's flow, once told when the kept token expires (the SDK does not keep that), so a token kept
        before a restart is refreshed rather than sent expired."""
        async with self._loading_expiry:
            if not self._expiry_loaded:
                self.context.token_expiry_time = await self._tokens.expires_at()
                self._expiry_loaded = True
        flow = super().async_auth_flow(request)
        try:
            outgoing = await anext(flow)
            while True:
                response = yield outgoing
                outgoing = await flow.asend(response)
        except StopAsyncIteration:
            return
        finally:
            await flow.aclose()

    async def _redirect(self, authorization_url: str) -> None:
        self._authorization_url = authorization_url

    async def _callback(self) -> AuthorizationCodeResult:
        answer = await self._sign_in(self._authorization_url)
        if "error" in answer or not answer.get("code"):
            raise SignInRefused(answer.get("error") or "no code")
        return AuthorizationCodeResult(code=answer["code"], state=answer.get("state"), iss=answer.get("iss"))
