"""No secret in the logs (every logger, at DEBUG) nor in the database in plaintext (every value of every table),
while the bot registers, tests and uses adapters, keeps a browser session, takes signed context events and talks
to the LLM. The app password and the tokens of authentication are checked in test_authentication.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx2
import pytest

from adapters import adapter_kinds
from bot.delegating import Delegator
from bot.http.context_events import PATH as EVENTS_PATH
from bot.llm import Assistant
from bot.operations import default_registry
from bot.sender import Sender
from bot.settings import Settings
from bot.teams.botbuilder import create_channel
from planner.services.context import ContextSources, sign
from planner.store import Store
from planner.store.vault import Vault
from tests.adapters.operator import LIMITS
from tests.adapters.vendor_agent import serve_in_process
from tests.bot.conftest import TENANT, Running, TeamsUser
from tests.conftest import FakeClock
from tests.fakes.connector import FakeConnector
from tests.security.conftest import every_stored_value, secret_fragments, start_bot_with, stop_bot

VAULT_KEY = Vault.generate_key()
VENDOR_TOKEN = "vendor-bearer-0f3c9a7d41e24b6b9d2e8c5a"
BROWSER_PASSWORD = "browser-password-7e1d4c2b9a8f6e5d"
SESSION_COOKIE = "session-cookie-3b9f1e7c5a2d8e4f6a1b"
LLM_KEY = "sk-ant-test-5d1e9c3b7a2f8e4d6c0b1a9f"


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record of every logger at DEBUG and above."""
    caplog.set_level(logging.DEBUG)
    return caplog


def logged_text(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    lines = []
    for record in caplog.records:
        lines.append(formatter.format(record))  # the message with its arguments, and any traceback
        lines.append(repr(record.args))
        lines.append(repr(getattr(record, "__dict__", {})))
    return "\n".join(lines)


class LLMReplay:
    """The Messages API on a mock transport: always says the same thing, keeps the headers it was sent."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.headers.append(dict(request.headers))
        return httpx2.Response(
            200,
            json={
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-5-5",
                "content": [{"type": "text", "text": "Noted: nothing to change."}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 5},
            },
        )


@pytest.fixture
async def bot(store: Store, connector: FakeConnector, clock: FakeClock) -> AsyncIterator[tuple[Running, LLMReplay]]:
    env = {"COS_SECRET_KEYS": VAULT_KEY, "ANTHROPIC_API_KEY": LLM_KEY, "COS_ADMINS": "aad-lead"}
    settings = Settings.from_env(env)
    sender = Sender(store, create_channel(settings), worker="secrets")
    vault = settings.vault()
    assert vault is not None
    delegator = Delegator(store, vault, deliver_now=sender.deliver, limits=LIMITS)
    llm = LLMReplay()
    client = anthropic.AsyncAnthropic(
        api_key=settings.anthropic_api_key,
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(llm)),
    )
    assistant = Assistant(client, default_registry(), model=settings.llm_model)
    running = await start_bot_with(store, connector, clock, env, delegator=delegator, assistant=assistant)
    yield running, llm
    await stop_bot(running)
    await delegator.close()
    await client.close()


def browser_config() -> dict[str, Any]:
    origin = "https://portal.vendor.example"
    return {
        "name": "portal",
        "origins": [origin],
        "credentials": {"username": "bot@vendor.example", "password": BROWSER_PASSWORD},
        "login": {
            "signed_out_selector": "#login-form",
            "steps": [
                {"kind": "goto", "url": f"{origin}/login"},
                {"kind": "fill", "selector": "#username", "value": "{credentials.username}"},
                {"kind": "fill", "selector": "#password", "value": "{credentials.password}"},
                {"kind": "click", "selector": "#sign-in"},
            ],
        },
        "capabilities": {"open_reports": {"steps": [{"kind": "goto", "url": f"{origin}/reports"}]}},
    }


class SignedInBrowser:
    """What the browser agent asks of a Playwright context when it keeps the session: its storage state."""

    async def storage_state(self) -> dict[str, Any]:
        return {
            "cookies": [{"name": "session", "value": SESSION_COOKIE, "domain": "portal.vendor.example", "path": "/"}],
            "origins": [],
        }


async def exercise_everything(running: Running, hmac_secret: str) -> None:
    lead = TeamsUser(running)
    await lead.ask("new plan Launch from 2026-01-01 to 2026-03-31 kpi SQLs 500")
    await lead.ask("tactical January from 2026-01-01 to 2026-01-31 kpi SQLs 150")
    await lead.ask("add task Draft the launch email to P2 due 2026-01-09 for me")
    async with serve_in_process(token=VENDOR_TOKEN) as url:
        config = {"transport": "http", "url": url, "bearer_token": VENDOR_TOKEN}
        [registered] = await lead.ask(f"adapter add mcp vendor {json.dumps(config)}")
        assert "registered" in registered
        await lead.ask("adapter test vendor")
        wrong = {"transport": "http", "url": url, "bearer_token": VENDOR_TOKEN[::-1]}
        await lead.ask(f"adapter add mcp impostor {json.dumps(wrong)}")
        await lead.ask("adapter test impostor")  # refused by the vendor: the failure is logged
        await lead.ask('delegate T1 to vendor draft_email {"audience": "CFOs", "topic": "the launch"}')
        await lead.ask("adapters")
        await running.bot.drain()
    await lead.ask("adapter test vendor")  # the vendor is gone now: a connection failure
    [registered] = await lead.ask(f"adapter add browser portal {json.dumps(browser_config())}")
    assert "registered" in registered
    await lead.ask(f"adapter add browser broken {json.dumps(browser_config() | {'origins': ['ftp://x']})}")

    # The browser agent keeps its signed-in session the way it does after a delegation.
    delegator = running.bot.delegator
    assert delegator is not None
    factory = adapter_kinds(running.store, TENANT, delegator.vault)["browser"]
    agent = factory.build("portal", browser_config())
    await agent.save_session(SignedInBrowser())  # type: ignore[arg-type]
    assert await agent._load_session() is not None  # it reads back: the test kept a real session

    body = json.dumps(
        {"id": "evt-1", "type": "ticket_opened", "account": "acct-1", "at": running.bot.clock().isoformat()}
    ).encode()
    headers = {"Content-Type": "application/json", "X-COS-Source": "helpdesk", "X-COS-Tenant": TENANT}
    url = running.server.make_url(EVENTS_PATH)
    statuses = []
    for signature in (sign(hmac_secret, body), sign(hmac_secret[::-1], body), hmac_secret, f"sha256={hmac_secret}"):
        async with running.session.post(url, data=body, headers=headers | {"X-COS-Signature": signature}) as answer:
            statuses.append(answer.status)
    assert statuses == [202, 401, 401, 401]

    await lead.say("What should we focus on this week?")  # not a command: the assistant answers
    await running.bot.drain()


async def test_no_secret_reaches_the_logs_the_database_or_teams(
    bot: tuple[Running, LLMReplay], all_logs: pytest.LogCaptureFixture
) -> None:
    running, llm = bot
    delegator = running.bot.delegator
    assert delegator is not None
    hmac_secret = await ContextSources(running.store, TENANT, delegator.vault).add("helpdesk", actor="aad-lead")

    await exercise_everything(running, hmac_secret)

    assert any(LLM_KEY in json.dumps(headers) for headers in llm.headers)  # the key was really used
    secrets = {
        "vault key": VAULT_KEY,
        "vendor token": VENDOR_TOKEN,
        "browser password": BROWSER_PASSWORD,
        "browser session": SESSION_COOKIE,
        "context source secret": hmac_secret,
        "LLM key": LLM_KEY,
    }
    logs = logged_text(all_logs)
    assert len(all_logs.records) > 20  # the run really logged (at DEBUG)
    stored = await every_stored_value(running.store.engine)
    assert stored
    teams = json.dumps([sent.body for sent in running.connector.sent])
    for what, secret in secrets.items():
        for fragment in secret_fragments(secret):
            assert fragment not in logs, f"the {what} is in the logs"
            assert fragment not in teams, f"the {what} was sent to Teams"
            for table, column, value in stored:
                text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                assert fragment not in text, f"the {what} is stored in plaintext in {table}.{column}"
