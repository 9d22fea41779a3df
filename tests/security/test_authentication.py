"""Authentication for real: tokens signed with locally made keys, published by a loopback OpenID metadata endpoint.

The bot is configured as in production (an app id and password), except that COS_OPENID_METADATA_URL points its
token validation (bot/teams/auth.py) at a loopback issuer instead of Microsoft's. Every forged variant of a channel
token is refused before the bot runs; the genuine one is served and answered over TLS, with the bot's own outbound
token. A slow or failing key endpoint holds up no other request, and is not asked again on every request.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import ssl
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from botframework.connector.auth import MicrosoftAppCredentials, PasswordServiceClientCredentialFactory
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import func, select

from bot.http.app import create_app
from bot.settings import Settings
from bot.teams.auth import SigningKeys, SigningKeysUnavailable
from bot.teams.botbuilder import create_adapter
from bot.teams.handler import ChiefOfStaffBot
from planner.services.directory import Directory
from planner.store import Store
from planner.store.schema import plans
from tests.bot.conftest import TENANT, Running, TeamsUser
from tests.conftest import FakeClock
from tests.fakes.connector import FakeConnector
from tests.security.conftest import every_stored_value, secret_fragments

APP_ID = "00000000-0000-0000-0000-00000000c05f"
APP_PASSWORD = "app-password-for-the-authentication-tests"
CHANNEL_ISSUER = "https://api.botframework.com"
NEW_PLAN = "new plan Launch from 2026-01-01 to 2026-03-31 kpi SQLs 500"


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class OpenIdIssuer:
    """A loopback OpenID provider: a metadata document and the JWKS it names, served from a thread of its own (so
    that a bot that blocked its event loop to fetch them would still get them, and show the stall).

    `mode` "ok" answers; "fail" answers 500; "hang" answers nothing until the issuer stops.
    """

    def __init__(self) -> None:
        self.key = _rsa_key()
        self.kid = f"kid-{uuid.uuid4().hex[:8]}"
        self.fetches = 0
        self.mode = "ok"
        self.asked = threading.Event()
        """Set when the metadata is asked for."""
        self._release: asyncio.Event | None = None
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="openid-issuer", daemon=True)
        self._port = 0
        self._path = uuid.uuid4().hex  # botbuilder caches keys per URL for a day: a URL of our own each time

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._port}/{self._path}"

    @property
    def metadata_url(self) -> str:
        return f"{self.base}/.well-known/openid-configuration"

    def jwks(self) -> dict[str, Any]:
        key = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [key | {"kid": self.kid, "use": "sig", "alg": "RS256", "endorsements": ["msteams"]}]}

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)

        self._release = asyncio.Event()

        async def metadata(_request: web.Request) -> web.Response:
            self.fetches += 1
            self.asked.set()
            if self.mode == "hang":
                assert self._release is not None
                await self._release.wait()
            if self.mode != "ok":
                return web.json_response({"error": "unavailable"}, status=500)
            return web.json_response(
                {
                    "issuer": CHANNEL_ISSUER,
                    "jwks_uri": f"{self.base}/keys",
                    "id_token_signing_alg_values_supported": ["RS256"],
                }
            )

        async def keys(_request: web.Request) -> web.Response:
            return web.json_response(self.jwks())

        app = web.Application()
        app.router.add_get(f"/{self._path}/.well-known/openid-configuration", metadata)
        app.router.add_get(f"/{self._path}/keys", keys)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self._port = runner.addresses[0][1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    def __enter__(self) -> OpenIdIssuer:
        self._thread.start()
        assert self._ready.wait(10), "the OpenID issuer did not start"
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._release is not None:
            self._loop.call_soon_threadsafe(self._release.set)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def token(
        self, service_url: str, *, key: rsa.RSAPrivateKey | None = None, kid: str | None = None, **claims: Any
    ) -> str:
        """A Bot Connector channel token for the bot; `claims` override (None removes a claim)."""
        return jwt.encode(
            _claims(service_url, **claims), key or self.key, algorithm="RS256", headers={"kid": kid or self.kid}
        )

    def hmac_token(self, service_url: str) -> str:
        """The old algorithm confusion: HS256, keyed with the issuer's public key (PyJWT will not make one)."""
        secret = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        header = _b64({"alg": "HS256", "typ": "JWT", "kid": self.kid})
        payload = _b64(_claims(service_url))
        signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _claims(service_url: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": CHANNEL_ISSUER,
        "aud": APP_ID,
        "serviceurl": service_url,
        "nbf": now - 60,
        "iat": now - 60,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


class _IssuedToken(MicrosoftAppCredentials):
    def __init__(self, app_id: str, token: str) -> None:
        super().__init__(app_id, "")
        self._token = token

    def get_access_token(self, force_refresh: bool = False) -> str:
        return self._token


class LocalOutboundTokens(PasswordServiceClientCredentialFactory):
    """botbuilder's app id and password checks as they are; the bot's outbound token is made here, where
    Entra ID would issue it (no network in tests)."""

    def __init__(self, token: str) -> None:
        super().__init__(APP_ID, APP_PASSWORD)
        self.token = token

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> MicrosoftAppCredentials:
        if not await self.is_valid_app_id(app_id):
            raise PermissionError(f"not this bot's app id: {app_id}")
        return _IssuedToken(app_id, self.token)


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    key = _rsa_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "connector.pem", directory / "connector.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def issuer() -> Iterator[OpenIdIssuer]:
    with OpenIdIssuer() as running_issuer:
        yield running_issuer


@pytest.fixture
async def tls_connector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeConnector]:
    """A Bot Connector on loopback over TLS, its certificate trusted by the bot's outbound client (requests)."""
    cert_path, key_path = _self_signed_certificate(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    fake = FakeConnector(ssl_context=context)
    await fake.start()
    yield fake
    await fake.close()


@dataclass
class Authenticated:
    user: TeamsUser
    issuer: OpenIdIssuer
    outbound: LocalOutboundTokens

    @property
    def store(self) -> Store:
        return self.user.running.store

    async def post(self, authorization: str | None, **fields: Any) -> int:
        activity = self.user.activity(text=NEW_PLAN, **fields)
        headers = {"Authorization": authorization} if authorization is not None else {}
        async with self.user.running.session.post(self.user.running.url, json=activity, headers=headers) as response:
            await response.read()
            return response.status


@contextlib.asynccontextmanager
async def authenticated_bot(
    store: Store,
    connector: FakeConnector,
    issuer: OpenIdIssuer,
    clock: FakeClock,
    channel_keys: SigningKeys | None = None,
) -> AsyncIterator[Authenticated]:
    """The bot as in production (app id and password), its tokens' keys published by `issuer`."""
    settings = Settings.from_env(
        {
            "MICROSOFT_APP_ID": APP_ID,
            "MICROSOFT_APP_PASSWORD": APP_PASSWORD,
            "COS_ALLOWED_SERVICE_HOSTS": "127.0.0.1,localhost",
            "COS_OPENID_METADATA_URL": issuer.metadata_url,
        }
    )
    outbound = LocalOutboundTokens(f"outbound-{uuid.uuid4().hex}")
    adapter = create_adapter(settings, credentials_factory=outbound, channel_keys=channel_keys)
    bot = ChiefOfStaffBot(store, settings, clock=clock)
    bot.adapter = adapter
    server = TestServer(create_app(store, adapter, bot, settings), host="127.0.0.1")
    await server.start_server()
    session = aiohttp.ClientSession()
    running = Running(store, bot, server, connector, session)
    try:
        yield Authenticated(TeamsUser(running), issuer, outbound)
    finally:
        await bot.drain()
        for client in adapter.bot_framework_authentication.outbound._connector_clients.values():
            await client._client.__aexit__(None, None, None)
        await session.close()
        await server.close()


@pytest.fixture
async def authenticated(
    store: Store, tls_connector: FakeConnector, issuer: OpenIdIssuer, clock: FakeClock
) -> AsyncIterator[Authenticated]:
    async with authenticated_bot(store, tls_connector, issuer, clock) as running:
        yield running


async def _plans(store: Store) -> int:
    async with store.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(plans))).scalar_one()


async def test_a_token_signed_by_the_published_key_is_served_and_answered(authenticated: Authenticated) -> None:
    connector = authenticated.user.running.connector
    token = authenticated.issuer.token(connector.url)
    assert await authenticated.post(f"Bearer {token}") in (200, 201)
    [reply] = await connector.wait_for(1)
    assert "Master plan P1 created" in (reply.body.get("text") or "")
    assert reply.authorization == f"Bearer {authenticated.outbound.token}"
    assert await _plans(authenticated.store) == 1
    assert authenticated.issuer.fetches >= 1  # the keys really came from the loopback metadata


FORGERIES: dict[str, dict[str, Any]] = {
    "wrong issuer": {"iss": "https://sts.attacker.example/"},
    "no issuer": {"iss": None},
    "wrong audience": {"aud": "11111111-2222-3333-4444-555555555555"},
    "no audience": {"aud": None},
    "expired an hour ago": {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200},
    "not valid for another hour": {"nbf": int(time.time()) + 3600},
    "service URL claim of another connector": {"serviceurl": "https://smba.trafficmanager.net/amer/"},
    "no service URL claim": {"serviceurl": None},
}


@pytest.mark.parametrize("claims", FORGERIES.values(), ids=FORGERIES.keys())
async def test_a_token_with_a_wrong_claim_is_refused_before_the_bot_runs(
    authenticated: Authenticated, claims: dict[str, Any]
) -> None:
    connector = authenticated.user.running.connector
    token = authenticated.issuer.token(connector.url, **claims)
    assert await authenticated.post(f"Bearer {token}") in (401, 403)
    await _assert_the_bot_never_ran(authenticated)


def _signature_forgeries(issuer: OpenIdIssuer, service_url: str) -> dict[str, str]:
    stranger = _rsa_key()
    header, payload, _signature = issuer.token(service_url).split(".")
    other_signature = issuer.token(service_url, aud="someone-else").split(".")[2]
    return {
        "signed by another key under the published kid": issuer.token(service_url, key=stranger),
        "signed by a key the metadata does not publish": issuer.token(service_url, key=stranger, kid="kid-unknown"),
        "HS256 keyed with the public key": issuer.hmac_token(service_url),
        "a valid token's signature on other claims": f"{header}.{payload}.{other_signature}",
        "no signature": f"{header}.{payload}.",
        "not a JWT": "not-a-jwt",
    }


SIGNATURE_CASES = [
    "signed by another key under the published kid",
    "signed by a key the metadata does not publish",
    "HS256 keyed with the public key",
    "a valid token's signature on other claims",
    "no signature",
    "not a JWT",
]


@pytest.mark.parametrize("case", SIGNATURE_CASES)
async def test_a_token_with_a_bad_signature_is_refused_before_the_bot_runs(
    authenticated: Authenticated, case: str
) -> None:
    connector = authenticated.user.running.connector
    token = _signature_forgeries(authenticated.issuer, connector.url)[case]
    assert await authenticated.post(f"Bearer {token}") in (401, 403)
    await _assert_the_bot_never_ran(authenticated)


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Basic dXNlcjpwYXNz"])
async def test_a_request_without_a_bearer_token_is_refused(
    authenticated: Authenticated, authorization: str | None
) -> None:
    assert await authenticated.post(authorization) in (401, 403)
    await _assert_the_bot_never_ran(authenticated)


async def test_a_genuine_token_for_one_service_url_cannot_be_replayed_with_another(
    authenticated: Authenticated,
) -> None:
    connector = authenticated.user.running.connector
    token = authenticated.issuer.token(connector.url)
    other = connector.url.replace("127.0.0.1", "localhost")
    assert await authenticated.post(f"Bearer {token}", serviceUrl=other) in (401, 403)
    await _assert_the_bot_never_ran(authenticated)


async def _assert_the_bot_never_ran(authenticated: Authenticated) -> None:
    assert authenticated.user.running.connector.sent == []
    assert await _plans(authenticated.store) == 0
    assert await Directory(authenticated.store, TENANT).conversations() == []


async def test_neither_the_app_password_nor_a_token_is_logged_or_stored(
    authenticated: Authenticated, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    connector = authenticated.user.running.connector
    valid = authenticated.issuer.token(connector.url)
    forged = _signature_forgeries(authenticated.issuer, connector.url)
    assert await authenticated.post(f"Bearer {valid}") in (200, 201)
    for token in forged.values():
        assert await authenticated.post(f"Bearer {token}") in (401, 403)
    assert await authenticated.post(f"Bearer {authenticated.issuer.token(connector.url, aud='other')}") == 401
    await connector.wait_for(1)

    logs = "\n".join(f"{record.getMessage()} {record.exc_text or ''} {record.args!r}" for record in caplog.records)
    assert "refused" in logs  # the refusals were logged, without their tokens
    stored = await every_stored_value(authenticated.store.engine)
    # A JWT's header is the same in every token: its signature is what would give it away.
    signatures = {f"token ({case})": token.split(".")[-1] for case, token in (forged | {"valid": valid}).items()}
    secrets = {"app password": APP_PASSWORD, "outbound token": authenticated.outbound.token}
    secrets |= {what: signature for what, signature in signatures.items() if len(signature) >= 20}
    for what, secret in secrets.items():
        for fragment in secret_fragments(secret):
            assert fragment not in logs, f"the {what} is in the logs"
            assert not any(fragment in str(value) for _table, _column, value in stored), f"the {what} is stored"


LIFETIME_FORGERIES: dict[str, dict[str, Any]] = {
    "no exp": {"exp": None},
    "valid for ten years": {"exp": int(time.time()) + 10 * 365 * 86400},
    "valid for ten years, without iat or nbf": {"exp": int(time.time()) + 10 * 365 * 86400, "iat": None, "nbf": None},
    "issued two days ago, expiring in an hour": {"iat": int(time.time()) - 2 * 86400},
    "issued in an hour": {"iat": int(time.time()) + 3600},
}


@pytest.mark.parametrize("claims", LIFETIME_FORGERIES.values(), ids=LIFETIME_FORGERIES.keys())
async def test_a_token_without_exp_or_valid_for_more_than_a_day_is_refused(
    authenticated: Authenticated, claims: dict[str, Any]
) -> None:
    token = authenticated.issuer.token(authenticated.user.running.connector.url, **claims)
    assert await authenticated.post(f"Bearer {token}") == 401
    await _assert_the_bot_never_ran(authenticated)


@pytest.mark.parametrize("channel_id", ["", None, "webchat"], ids=["empty", "missing", "not endorsed"])
async def test_an_activity_whose_channel_the_key_does_not_endorse_is_refused(
    authenticated: Authenticated, channel_id: str | None
) -> None:
    token = authenticated.issuer.token(authenticated.user.running.connector.url)
    assert await authenticated.post(f"Bearer {token}", channelId=channel_id) == 401
    await _assert_the_bot_never_ran(authenticated)


async def test_a_key_endpoint_that_hangs_holds_up_no_other_request_and_the_wait_is_bounded(
    store: Store, tls_connector: FakeConnector, issuer: OpenIdIssuer, clock: FakeClock
) -> None:
    issuer.mode = "hang"
    keys = SigningKeys(issuer.metadata_url, timeout=1.0)
    async with authenticated_bot(store, tls_connector, issuer, clock, channel_keys=keys) as bot:
        token = issuer.token(tls_connector.url)
        started = time.monotonic()
        waiting = asyncio.create_task(bot.post(f"Bearer {token}"))
        assert await asyncio.to_thread(issuer.asked.wait, 10), "the bot never asked for the keys"
        async with asyncio.timeout(0.5):  # well inside the key fetch's one second
            async with bot.user.running.session.get(bot.user.running.server.make_url("/healthz")) as health:
                assert health.status == 200
        assert not waiting.done()
        async with asyncio.timeout(10):
            assert await waiting == 503
        assert 1.0 <= time.monotonic() - started < 5.0
        await _assert_the_bot_never_ran(bot)


async def test_a_failing_key_endpoint_is_asked_once_per_backoff_not_on_every_request(
    store: Store, tls_connector: FakeConnector, issuer: OpenIdIssuer, clock: FakeClock
) -> None:
    issuer.mode = "fail"
    async with authenticated_bot(store, tls_connector, issuer, clock) as bot:
        token = issuer.token(tls_connector.url)
        answers = [await bot.post(f"Bearer {token}") for _ in range(5)]
        answers += await asyncio.gather(*(bot.post(f"Bearer {token}") for _ in range(5)))
        assert answers == [503] * 10
        assert issuer.fetches == 1
        await _assert_the_bot_never_ran(bot)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_keys_are_fetched_again_for_an_unknown_key_at_most_every_few_minutes_and_after_a_backoff(
    issuer: OpenIdIssuer,
) -> None:
    now = FakeMonotonic()
    keys = SigningKeys(issuer.metadata_url, refresh_every=300, retry_after=30, clock=now)
    assert await keys.get(issuer.kid) is not None
    assert await keys.get("kid-unknown") is None
    assert issuer.fetches == 1  # the keys were fetched a moment ago: an unknown kid does not fetch them again
    now.now += 300
    assert await keys.get("kid-unknown") is None
    assert issuer.fetches == 2
    issuer.mode = "fail"
    now.now += 300
    assert await keys.get("kid-unknown") is None  # the keys held before still serve
    assert await keys.get(issuer.kid) is not None
    assert issuer.fetches == 3
    now.now += 29
    await keys.get("kid-unknown")
    assert issuer.fetches == 3  # backing off
    now.now += 1
    issuer.mode = "ok"
    await keys.get("kid-unknown")
    assert issuer.fetches == 4
    cold = SigningKeys(issuer.metadata_url, retry_after=30, clock=now)
    issuer.mode = "fail"
    for _ in range(3):
        with pytest.raises(SigningKeysUnavailable, match="could not be fetched"):
            await cold.get(issuer.kid)
    assert issuer.fetches == 5
