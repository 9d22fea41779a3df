"""Authentication for real: tokens signed with locally made keys, published by a loopback OpenID metadata endpoint.

The bot is configured as in production (an app id and password), except that COS_OPENID_METADATA_URL points
botbuilder's JWT validation at a loopback issuer instead of Microsoft's. Every forged variant of a channel token is
refused before the bot runs; the genuine one is served and answered over TLS, with the bot's own outbound token.
"""

from __future__ import annotations

import asyncio
import base64
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

from bot.app import create_app
from bot.server import create_adapter
from bot.settings import Settings
from bot.teams import ChiefOfStaffBot
from planner.directory import Directory
from planner.schema import plans
from planner.store import Store
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
    """A loopback OpenID provider: a metadata document and the JWKS it names, served from a thread of its own.

    botbuilder fetches both with `requests` (blocking) inside the bot's event loop, so they cannot be served by
    that loop.
    """

    def __init__(self) -> None:
        self.key = _rsa_key()
        self.kid = f"kid-{uuid.uuid4().hex[:8]}"
        self.fetches = 0
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

        async def metadata(_request: web.Request) -> web.Response:
            self.fetches += 1
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


@pytest.fixture
async def authenticated(
    store: Store, tls_connector: FakeConnector, issuer: OpenIdIssuer, clock: FakeClock
) -> AsyncIterator[Authenticated]:
    settings = Settings.from_env(
        {
            "MICROSOFT_APP_ID": APP_ID,
            "MICROSOFT_APP_PASSWORD": APP_PASSWORD,
            "COS_ALLOWED_SERVICE_HOSTS": "127.0.0.1,localhost",
            "COS_OPENID_METADATA_URL": issuer.metadata_url,
        }
    )
    outbound = LocalOutboundTokens(f"outbound-{uuid.uuid4().hex}")
    adapter = create_adapter(settings, credentials_factory=outbound)
    bot = ChiefOfStaffBot(store, settings, clock=clock)
    bot.adapter = adapter
    server = TestServer(create_app(store, adapter, bot, settings), host="127.0.0.1")
    await server.start_server()
    session = aiohttp.ClientSession()
    running = Running(store, bot, server, tls_connector, session)
    try:
        yield Authenticated(TeamsUser(running), issuer, outbound)
    finally:
        await bot.drain()
        for client in adapter.bot_framework_authentication._connector_clients.values():
            await client._client.__aexit__(None, None, None)
        await session.close()
        await server.close()


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
