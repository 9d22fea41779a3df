"""Inbound Bot Framework tokens, checked here; everything outbound stays botbuilder's.

botbuilder (4.17) fetches the signing keys with a blocking `requests` call without a timeout, on the event loop,
and fetches them again on every request while that fails; it lets a token through whose activity names no
channel, and accepts a token without `exp` or of any lifetime. `InboundTokens` implements botbuilder's public
`BotFrameworkAuthentication` interface instead: the checks of the Bot Framework's protocol
(https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-authentication), with keys
fetched by aiohttp within a deadline and cached (`SigningKeys`); connector and user token clients come from the
authentication botbuilder builds for the bot's credentials.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
from botbuilder.schema import Activity, CallerIdConstants
from botframework.connector.auth import (
    AuthenticateRequestResult,
    AuthenticationConstants,
    BotFrameworkAuthentication,
    ClaimsIdentity,
    ConnectorFactory,
    EmulatorValidation,
    SkillValidation,
    UserTokenClient,
)
from botframework.connector.skills import BotFrameworkClient

logger = logging.getLogger(__name__)

ALGORITHMS = ("RS256",)
"""What botbuilder verifies signatures with (it lists RS384 and RS512 too, then decodes with RS256 only)."""
CLOCK_SKEW_SECONDS = 5 * 60
"""Leeway on `exp`, `nbf` and `iat`: the five minutes the Bot Framework's protocol and botbuilder allow."""
MAX_LIFETIME_SECONDS = 24 * 60 * 60
"""The longest a token may be valid (Bot Connector tokens live about an hour): a longer one is refused."""
EMULATOR_ISSUERS = tuple(EmulatorValidation.TO_BOT_FROM_EMULATOR_TOKEN_VALIDATION_PARAMETERS.issuer)
MAX_DOCUMENT_BYTES = 1024 * 1024


class SigningKeysUnavailable(ConnectionError):
    """The issuer's signing keys could not be fetched, and none are held: tokens cannot be checked now."""

    def __init__(self, url: str, reason: str, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(
            f"the Bot Framework's signing keys could not be fetched from {url} ({reason}); activities are answered "
            f"503 until they can be, tried again at most every {retry_after:g} s. Check that this host reaches it "
            "(COS_OPENID_METADATA_URL names another issuer)."
        )


@dataclass(frozen=True)
class SigningKey:
    key: Any
    """The public key (a `cryptography` RSA key) PyJWT verifies with."""
    endorsements: frozenset[str]
    """The channels this key may sign for (e.g. msteams)."""


class SigningKeys:
    """The keys an OpenID issuer publishes (its metadata names its JWKS), fetched off the turn's path of waiting:
    each fetch is bounded by `timeout`, concurrent callers share one fetch, keys are kept `max_age`, fetched again
    for an unknown key id at most every `refresh_every`, and after a failed fetch not before `retry_after`
    (meanwhile the keys held are used, or, with none, SigningKeysUnavailable is raised at once)."""

    def __init__(
        self,
        metadata_url: str,
        *,
        timeout: float = 5.0,
        max_age: float = 24 * 60 * 60,
        refresh_every: float = 5 * 60,
        retry_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metadata_url = metadata_url
        self.timeout = timeout
        self.max_age = max_age
        self.refresh_every = refresh_every
        self.retry_after = retry_after
        self.fetches = 0
        """Fetches tried so far (each one fetches the metadata, then the keys it names)."""
        self._clock = clock
        self._lock = asyncio.Lock()
        self._keys: dict[str, SigningKey] | None = None
        self._fetched_at = 0.0
        self._failed_at: float | None = None
        self._failure = ""

    async def get(self, kid: str) -> SigningKey | None:
        """The key published under `kid`, or None if the issuer publishes none by that id.

        Raises SigningKeysUnavailable when no keys are held and they cannot be fetched now.
        """
        async with self._lock:
            now = self._clock()
            stale = self._keys is None or now - self._fetched_at >= self.max_age
            unknown = self._keys is not None and kid not in self._keys and now - self._fetched_at >= self.refresh_every
            backing_off = self._failed_at is not None and now - self._failed_at < self.retry_after
            if (stale or unknown) and not backing_off:
                await self._refresh()
            if self._keys is None:
                raise SigningKeysUnavailable(self.metadata_url, self._failure, self.retry_after)
            return self._keys.get(kid)

    async def _refresh(self) -> None:
        self.fetches += 1
        try:
            async with asyncio.timeout(self.timeout), aiohttp.ClientSession() as session:
                metadata = await _json(session, self.metadata_url)
                jwks_uri = metadata.get("jwks_uri") if isinstance(metadata, Mapping) else None
                if not isinstance(jwks_uri, str):
                    raise ValueError("the metadata names no jwks_uri")
                jwks = await _json(session, jwks_uri)
            keys = _parse_keys(jwks)
        except TimeoutError:
            self._failed(f"no answer within {self.timeout:g} s")
        except (aiohttp.ClientError, ValueError) as error:
            self._failed(f"{type(error).__name__}: {error}")
        else:
            self._keys, self._fetched_at, self._failed_at = keys, self._clock(), None

    def _failed(self, reason: str) -> None:
        self._failed_at, self._failure = self._clock(), reason
        held = "keeping the keys fetched before" if self._keys is not None else "no keys held"
        logger.error("could not fetch the signing keys from %s (%s); %s", self.metadata_url, reason, held)


async def _json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url, allow_redirects=False) as response:
        response.raise_for_status()
        body = await response.content.read(MAX_DOCUMENT_BYTES + 1)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
    return json.loads(body)


def _parse_keys(jwks: Any) -> dict[str, SigningKey]:
    entries = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(entries, list):
        raise ValueError("the JWKS has no list of keys")
    keys: dict[str, SigningKey] = {}
    for entry in entries:
        kid = entry.get("kid") if isinstance(entry, Mapping) else None
        if not isinstance(kid, str) or entry.get("kty") != "RSA":
            continue
        try:
            public_key = jwt.PyJWK(dict(entry), algorithm=ALGORITHMS[0]).key
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            logger.warning("skipped a published signing key that could not be read (kid %r)", kid)
            continue
        endorsements = entry.get("endorsements") or []
        keys[kid] = SigningKey(public_key, frozenset(e for e in endorsements if isinstance(e, str)))
    return keys


class TokenRefused(PermissionError):
    """An inbound token is not one the bot accepts (botbuilder's CloudAdapter answers PermissionError with 401)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the activity's token was refused: {reason}")


class InboundTokens(BotFrameworkAuthentication):
    """Checks each inbound activity's token; `outbound` (botbuilder's authentication for the bot's credentials)
    makes the connector and user token clients.

    A Bot Connector token (issuer https://api.botframework.com) must: be an RS256 JWT whose key id the channel's
    OpenID metadata publishes and whose signature that key verifies; be endorsed, by that key, for the activity's
    channelId (which must be present); be addressed (`aud`) to the bot's app id; carry `exp`, be valid now
    (`nbf`, `iat` and `exp` with five minutes of clock skew) and for at most a day; name the activity's serviceUrl
    in its `serviceurl` claim. An Emulator token (the issuers botbuilder lists) is checked against the Emulator's
    keys, needs a `ver` claim and names the bot in `appid` (ver 1.0) or `azp` (2.0). Skill tokens are refused (this
    bot calls no skills and is none). In local mode (no app id) nothing can be checked: every activity is
    anonymous, and bot/http/app.py keeps the port to loopback and same-site callers.
    """

    def __init__(
        self,
        outbound: BotFrameworkAuthentication,
        *,
        app_id: str,
        channel_keys: SigningKeys,
        emulator_keys: SigningKeys,
        channel_issuer: str = AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbound = outbound
        self.app_id = app_id
        self.channel_keys = channel_keys
        self.emulator_keys = emulator_keys
        self.channel_issuer = channel_issuer
        self._clock = clock

    async def authenticate_request(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
        """Raises TokenRefused (a PermissionError) for a token the bot does not accept, SigningKeysUnavailable when
        the keys to check it cannot be fetched."""
        if not self.app_id:
            identity, caller_id = ClaimsIdentity({}, True, AuthenticationConstants.ANONYMOUS_AUTH_TYPE), None
        else:
            identity = await self.identity(auth_header, activity.channel_id, service_url=activity.service_url or "")
            caller_id = CallerIdConstants.public_azure_channel
        result = AuthenticateRequestResult()
        result.claims_identity = identity
        result.audience = self.outbound.get_originating_audience()
        result.caller_id = caller_id
        result.connector_factory = self.outbound.create_connector_factory(identity)
        return result

    async def authenticate_streaming_request(
        self, auth_header: str, channel_id_header: str
    ) -> AuthenticateRequestResult:
        """As `authenticate_request`, for a streaming connection (no activity: the channel comes in a header)."""
        if not self.app_id:
            identity, caller_id = ClaimsIdentity({}, True, AuthenticationConstants.ANONYMOUS_AUTH_TYPE), None
        else:
            identity = await self.identity(auth_header, channel_id_header, service_url=None)
            caller_id = CallerIdConstants.public_azure_channel
        result = AuthenticateRequestResult()
        result.claims_identity = identity
        result.audience = self.outbound.get_originating_audience()
        result.caller_id = caller_id
        return result

    async def authenticate_channel_request(self, auth_header: str) -> ClaimsIdentity:
        raise TokenRefused("this bot takes no calls from skills")

    async def identity(
        self, auth_header: str | None, channel_id: str | None, *, service_url: str | None
    ) -> ClaimsIdentity:
        """The claims of a valid token (see the class); `service_url` None skips the serviceurl check (streaming).

        Raises TokenRefused, or SigningKeysUnavailable.
        """
        scheme, _, token = (auth_header or "").partition(" ")
        if scheme != "Bearer" or not token or " " in token:
            raise TokenRefused("the Authorization header must be `Bearer <token>`")
        if not channel_id:
            raise TokenRefused("the activity names no channelId, so no endorsement can vouch for it")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise TokenRefused("it is not a JWT") from None
        if header.get("alg") not in ALGORITHMS:
            raise TokenRefused(f"it is not signed with {', '.join(ALGORITHMS)}")
        if SkillValidation.is_skill_claim(unverified):
            raise TokenRefused("it is a skill's token")
        issuer = unverified.get("iss")
        from_emulator = issuer in EMULATOR_ISSUERS
        if issuer != self.channel_issuer and not from_emulator:
            raise TokenRefused("its issuer is neither the Bot Framework nor the Emulator")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRefused("it names no signing key (kid)")
        key = await (self.emulator_keys if from_emulator else self.channel_keys).get(kid)
        if key is None:
            raise TokenRefused("its signing key is not one the issuer publishes")
        # Bot Connector keys always list the channels they sign for; the Emulator's list none.
        if (key.endorsements or not from_emulator) and channel_id not in key.endorsements:
            raise TokenRefused(f"its signing key is not endorsed for the channel {channel_id!r}")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=list(ALGORITHMS),
                issuer=issuer,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp"], "verify_aud": False},
            )
        except jwt.PyJWTError as error:
            raise TokenRefused(f"{type(error).__name__}: {error}") from None
        self._check_lifetime(claims)
        if from_emulator:
            self._check_emulator_app(claims)
        else:
            if claims.get("aud") != self.app_id:
                raise TokenRefused("it is addressed to another bot")
            if service_url is not None and claims.get(AuthenticationConstants.SERVICE_URL_CLAIM) != service_url:
                raise TokenRefused("its serviceurl claim is not the activity's serviceUrl")
        return ClaimsIdentity(claims, True)

    def _check_lifetime(self, claims: Mapping[str, Any]) -> None:
        now = self._clock()
        expires = claims["exp"]
        issued = claims.get("iat", claims.get("nbf", now))
        if expires - min(issued, now) > MAX_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS:
            raise TokenRefused(f"it is valid for longer than {MAX_LIFETIME_SECONDS // 3600} hours")

    def _check_emulator_app(self, claims: Mapping[str, Any]) -> None:
        version = claims.get(AuthenticationConstants.VERSION_CLAIM)
        if version in (None, ""):
            raise TokenRefused("an Emulator token needs a ver claim")
        if version == "1.0":
            app_id = claims.get(AuthenticationConstants.APP_ID_CLAIM)
        elif version == "2.0":
            app_id = claims.get(AuthenticationConstants.AUTHORIZED_PARTY)
        else:
            raise TokenRefused(f"unknown Emulator token version {version!r}")
        if app_id != self.app_id:
            raise TokenRefused("it was issued to another app")

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return self.outbound.create_connector_factory(claims_identity)

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        return await self.outbound.create_user_token_client(claims_identity)

    def create_bot_framework_client(self) -> BotFrameworkClient:
        return self.outbound.create_bot_framework_client()

    def get_originating_audience(self) -> str:
        return self.outbound.get_originating_audience()
