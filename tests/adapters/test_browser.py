"""The browser adapter against a loopback vendor web app, in Debian's Chromium: sign-in, 2FA, session, origin guard.

The tests share one Chromium (and so one event loop) for the module: starting it is the slowest thing they do.
Chromium is a subprocess, out of reach of the socket guard in tests/conftest.py: what keeps it on 127.0.0.1 is the
adapter's own guard (its host-resolver rule resolves 127.0.0.1 only), which these tests check.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from adapters.browser import BrowserAdapterFactory, BrowserAgent, BrowserConfig, Chromium, MemoryStorageStateStore
from adapters.egress import UNREACHABLE
from planner.domain.delegations import DelegationStatus
from planner.ports import (
    AgentConfigInvalid,
    AgentNotReached,
    AgentTimeout,
    AgentUnavailable,
    DelegationRequest,
    HumanChannel,
    UnknownCapability,
)
from planner.store.vault import Vault
from tests.adapters.operator import LOOPBACK
from tests.adapters.web_vendor import CODE, PASSWORD, USERNAME, AnsweringPerson, WebVendor, vendor_config

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

in_module_loop = pytest.mark.asyncio(loop_scope="module")
"""For the tests that use the shared Chromium: they run in the module's event loop, which it is bound to."""


class SilentPerson(HumanChannel):
    """A person who never answers (and a channel that does not enforce the timeout itself)."""

    def __init__(self) -> None:
        self.questions: list[str] = []

    async def ask(self, question: str, *, timeout_seconds: float) -> str:
        self.questions.append(question)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


BRIEF = DelegationRequest(
    capability="create_campaign_brief",
    input={"name": "Spring launch & partners/EMEA", "audience": "CMOs at mid-size SaaS"},
    timeout_seconds=60,
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chromium() -> AsyncIterator[Chromium]:
    shared = Chromium(hosts=["127.0.0.1"], egress=LOOPBACK)
    yield shared
    await shared.close()


@pytest_asyncio.fixture(loop_scope="module")
async def vendor() -> AsyncIterator[WebVendor]:
    async with WebVendor(username=USERNAME, password=PASSWORD, code=CODE) as vendor:
        yield vendor


@pytest.fixture
def vault() -> Vault:
    return Vault([Vault.generate_key()])


@pytest_asyncio.fixture(loop_scope="module")
async def make_agent(vault: Vault, chromium: Chromium) -> AsyncIterator[Callable[..., BrowserAgent]]:
    """Builds browser agents in the shared Chromium (or their own) and closes them when the test ends."""
    agents: list[BrowserAgent] = []

    def make(
        config: dict[str, Any], sessions: MemoryStorageStateStore | None = None, *, own_chromium: bool = False
    ) -> BrowserAgent:
        shared = None if own_chromium else chromium
        agent = BrowserAgent(
            BrowserConfig.from_dict(config), vault=vault, sessions=sessions, chromium=shared, egress=LOOPBACK
        )
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        await agent.close()


@in_module_loop
async def test_signing_in_relays_the_2fa_code_to_a_person_and_returns_the_brief_with_a_screenshot(
    vendor: WebVendor, make_agent: Callable[..., BrowserAgent]
) -> None:
    agent = make_agent(vendor_config(vendor))
    person = AnsweringPerson()

    result = await agent.delegate(BRIEF, human=person)

    assert result.status is DelegationStatus.SUCCEEDED, result.error
    assert result.data == {
        "brief_id": "BR-1001",
        "summary": 'Brief "Spring launch & partners/EMEA" for CMOs at mid-size SaaS',
    }
    assert result.output == 'Brief BR-1001 created: Brief "Spring launch & partners/EMEA" for CMOs at mid-size SaaS'
    assert len(person.questions) == 1
    assert "code" in person.questions[0]
    assert "vendor-marketing" in person.questions[0]
    assert vendor.logins == 1
    [screenshot] = result.evidence
    assert (screenshot.kind, screenshot.media_type, screenshot.description) == (
        "screenshot",
        "image/png",
        "the created brief",
    )
    assert screenshot.content.startswith(PNG_SIGNATURE)
    assert result.seconds > 0
    # Each step of the recipe was reported as it was done: its number and kind in words, never what was typed.
    kinds = ["opened a page", "filled in a field", "clicked", "waited for the page", "read the result"]
    kinds += ["read the result", "took a screenshot"]
    assert person.steps == [f"step {n} of 7: {kind}" for n, kind in enumerate(kinds, start=1)]
    assert result.progress == tuple(person.steps)


@in_module_loop
async def test_a_second_delegation_reuses_the_encrypted_session_without_signing_in_again(
    vendor: WebVendor, make_agent: Callable[..., BrowserAgent], vault: Vault
) -> None:
    sessions = MemoryStorageStateStore()
    agent = make_agent(vendor_config(vendor), sessions)
    person = AnsweringPerson()

    first = await agent.delegate(BRIEF, human=person)
    second = await agent.delegate(BRIEF, human=person)

    assert (first.status, second.status) == (DelegationStatus.SUCCEEDED, DelegationStatus.SUCCEEDED)
    assert second.data is not None
    assert second.data["brief_id"] == "BR-1002"
    assert vendor.logins == 1
    assert len(person.questions) == 1
    stored = sessions.state
    assert stored is not None
    [token] = vendor.session_tokens
    assert token.encode() not in stored
    assert b"vendor_session" not in stored
    assert b"vendor-theme" not in stored
    state = json.loads(vault.decrypt(stored))
    assert token in [cookie["value"] for cookie in state["cookies"]]


@in_module_loop
async def test_delegations_run_at_once_each_in_its_own_context_and_sign_in_once(
    vendor: WebVendor, make_agent: Callable[..., BrowserAgent]
) -> None:
    agent = make_agent(vendor_config(vendor))
    person = AnsweringPerson()
    slow = DelegationRequest(capability="open_slow_page", input={}, timeout_seconds=60)

    # All signed out at first: one signs in (one code asked), the others wait and take its session.
    briefs = await asyncio.gather(*(agent.delegate(BRIEF, human=person) for _ in range(3)))
    # Signed in: none waits for another (the vendor holds every /slow page until told).
    waiting = [asyncio.create_task(agent.delegate(slow, human=person)) for _ in range(3)]
    try:
        await vendor.wait_for_requests("/slow", 3, within=30)
    finally:
        vendor.release_slow_pages()
    slows = await asyncio.gather(*waiting)

    assert [r.status for r in briefs + slows] == [DelegationStatus.SUCCEEDED] * 6, [r.error for r in briefs + slows]
    assert sorted(r.data["brief_id"] for r in briefs if r.data) == ["BR-1001", "BR-1002", "BR-1003"]
    assert vendor.logins == 1
    assert len(person.questions) == 1


@in_module_loop
async def test_a_new_agent_picks_up_the_saved_session(
    vendor: WebVendor, make_agent: Callable[..., BrowserAgent]
) -> None:
    sessions = MemoryStorageStateStore()
    await make_agent(vendor_config(vendor), sessions).delegate(BRIEF, human=AnsweringPerson())

    after_restart = make_agent(vendor_config(vendor), sessions, own_chromium=True)
    result = await after_restart.delegate(BRIEF, human=None)

    assert result.status is DelegationStatus.SUCCEEDED, result.error
    assert vendor.logins == 1


@in_module_loop
async def test_an_expired_session_signs_in_again(vendor: WebVendor, make_agent: Callable[..., BrowserAgent]) -> None:
    agent = make_agent(vendor_config(vendor))
    person = AnsweringPerson()
    await agent.delegate(BRIEF, human=person)

    vendor.expire_sessions()
    result = await agent.delegate(BRIEF, human=person)

    assert result.status is DelegationStatus.SUCCEEDED, result.error
    assert vendor.logins == 2
    assert len(person.questions) == 2


@in_module_loop
async def test_nobody_answering_the_code_question_in_time_fails_the_delegation_and_says_so(
    vendor: WebVendor, make_agent: Callable[..., BrowserAgent]
) -> None:
    config = vendor_config(vendor, timeouts={"step_seconds": 5, "code_answer_seconds": 1})
    agent = make_agent(config)
    person = SilentPerson()

    result = await agent.delegate(BRIEF, human=person)

    assert result.status is DelegationStatus.FAILED
    assert result.error is not None
    assert "nobody answered the sign-in code question within 1 s (timed out)" in result.error
    assert len(person.questions) == 1
    assert vendor.logins == 0


@in_module_loop
async def test_a_refused_code_fails_the_delegation_and_says_so(
    vendor: WebVendor, make_agent: Callable[..., BrowserAgent]
) -> None:
    agent = make_agent(vendor_config(vendor, timeouts={"step_seconds": 2}))

    result = await agent.delegate(BRIEF, human=AnsweringPerson(code="000000"))

    assert result.status is DelegationStatus.FAILED
    assert result.error is not None
    assert "the site did not accept the code" in result.error
    assert "000000" not in result.error
    assert vendor.logins == 0


@in_module_loop
async def test_a_site_asking_for_a_code_with_no_person_to_ask_fails_the_delegation(
    vendor: WebVendor, make_agent: Callable[..., BrowserAgent]
) -> None:
    result = await make_agent(vendor_config(vendor)).delegate(BRIEF, human=None)

    assert result.status is DelegationStatus.FAILED
    assert result.error is not None
    assert "asks for a sign-in code, but no person can be asked" in result.error
    assert vendor.logins == 0


@in_module_loop
async def test_a_page_pulling_another_origin_is_blocked_before_it_reaches_it(
    vendor: WebVendor, make_agent: Callable[..., BrowserAgent]
) -> None:
    agent = make_agent(vendor_config(vendor))

    result = await agent.delegate(DelegationRequest(capability="open_reports"), human=AnsweringPerson())

    assert result.status is DelegationStatus.SUCCEEDED, result.error
    assert result.data == {"status": "Reports ready"}
    assert vendor.foreign_requests == []
    blocked = next(item for item in result.evidence if item.kind == "text")
    assert f"{vendor.foreign_url}/pixel.png".encode() in blocked.content
    assert b"http://evil.example/track.js" in blocked.content
    assert f"ws://127.0.0.2:{vendor.port}/live".encode() in blocked.content
    # The other origin answers anyone who asks, so its empty log means the browser never asked.
    async with aiohttp.ClientSession() as session, session.get(f"{vendor.foreign_url}/pixel.png") as answer:
        assert answer.status == 200
    assert vendor.foreign_requests == ["/pixel.png"]


@pytest.mark.parametrize("capability", ["follow_link", "follow_redirect"])
@in_module_loop
async def test_leaving_the_registered_origins_fails_the_delegation(
    vendor: WebVendor, make_agent: Callable[..., BrowserAgent], capability: str
) -> None:
    agent = make_agent(vendor_config(vendor))

    result = await agent.delegate(DelegationRequest(capability=capability), human=AnsweringPerson())

    assert result.status is DelegationStatus.FAILED
    assert result.error is not None
    assert f"tried to leave the registered origins for {vendor.foreign_url}/phish" in result.error
    assert vendor.foreign_requests == []


def test_a_goto_outside_the_registered_origins_is_refused_when_registering() -> None:
    config = {
        "name": "vendor-marketing",
        "origins": ["https://app.vendor.example"],
        "capabilities": {
            "export": {"steps": [{"kind": "goto", "url": "https://evil.example/collect?data={report}"}]},
            "sneaky": {"steps": [{"kind": "goto", "url": "https://{host}/export"}]},
        },
    }

    with pytest.raises(AgentConfigInvalid) as refused:
        BrowserConfig.from_dict(config)

    assert refused.value.problems == [
        "capability 'export', step 1 (goto): url 'https://evil.example/collect' is outside the registered origins "
        "(https://app.vendor.example)",
        "capability 'sneaky', step 1 (goto): url must be absolute with a fixed origin "
        "(input may fill the path or query only)",
    ]


def test_configuration_errors_name_every_problem() -> None:
    config = {
        "name": "vendor marketing",
        "origins": ["https://app.vendor.example/login", "ftp://files.vendor.example"],
        "timeouts": {"step_seconds": 0, "navigation_secs": 5},
        "login": {
            "signed_out_selector": "#login",
            "steps": [
                {"kind": "goto", "url": "https://app.vendor.example/login"},
                {"kind": "fill", "selector": "#password", "value": "{credentials.password}"},
                {"kind": "screenshot"},
            ],
        },
        "capabilities": {
            "create_brief": {
                "steps": [
                    {"kind": "click", "selector": "#new"},
                    {"kind": "hoover", "selector": "#menu"},
                    {"kind": "fill", "value": "{name}"},
                    {"kind": "wait_for"},
                    {"kind": "extract_text", "selector": "#id", "feild": "brief_id"},
                ],
                "output": "Created {brief_id}",
            }
        },
    }

    with pytest.raises(AgentConfigInvalid) as refused:
        BrowserConfig.from_dict(config)

    problems = refused.value.problems
    expected = [
        "timeouts: unknown field 'navigation_secs' (did you mean 'navigation_seconds'?)",
        "timeouts.step_seconds: must be a positive number of seconds",
        "capability 'create_brief', step 2: unknown step kind 'hoover' (did you mean 'hover'?)",
        "capability 'create_brief', step 3 (fill): missing 'selector'",
        "capability 'create_brief', step 5 (extract_text): unknown field 'feild' (did you mean 'field'?)",
        "capability 'create_brief', step 5 (extract_text): missing 'field'",
        "origins #1 'https://app.vendor.example/login' must be scheme://host[:port] only",
        "origins #2 'ftp://files.vendor.example' is not an http(s) origin",
        "name: must be a short name without spaces",
        "capability 'create_brief': must start with a goto step",
        "capability 'create_brief', step 4 (wait_for): give exactly one of 'selector' or 'url'",
        "capability 'create_brief': output uses {brief_id}, which no step extracts or takes as input",
        "login, step 2 (fill): uses {credentials.password} but no credential 'password' is set",
        "login, step 3 (screenshot): a sign-in recipe may only goto, fill, click, wait_for, expect_code",
    ]
    for fragment in expected:
        assert any(fragment in problem for problem in problems), (fragment, problems)
    assert len(problems) == len(expected), problems
    assert "invalid adapter configuration: " in str(refused.value)


@in_module_loop
async def test_a_failing_site_makes_the_agent_unavailable_and_unhealthy(
    vendor: WebVendor, make_agent: Callable[..., BrowserAgent]
) -> None:
    agent = make_agent(vendor_config(vendor))
    assert (await agent.health()).ok

    vendor.failing = True

    with pytest.raises(AgentUnavailable, match="answered 500: the site is failing"):
        await agent.delegate(BRIEF, human=AnsweringPerson())
    health = await agent.health()
    assert not health.ok
    assert "answered 500" in health.detail


@in_module_loop
async def test_an_unreachable_site_makes_the_agent_unavailable_and_the_delegation_safe_to_run_again(
    vendor: WebVendor, make_agent: Callable[..., BrowserAgent]
) -> None:
    agent = make_agent(vendor_config(vendor))
    await vendor.stop()

    with pytest.raises(AgentNotReached) as raised:
        await agent.delegate(BRIEF, human=AnsweringPerson())
    health = await agent.health()
    assert raised.value.reason == (
        f"step 1 (goto '{vendor.url}/briefs/new'): {UNREACHABLE} (before the recipe submitted anything)"
    )
    assert not health.ok
    assert health.detail == f"{vendor.url}/: {UNREACHABLE}"


@in_module_loop
async def test_a_broken_page_fails_the_step_it_stopped_at_with_a_screenshot(
    vendor: WebVendor, make_agent: Callable[..., BrowserAgent]
) -> None:
    config = vendor_config(vendor, timeouts={"step_seconds": 2})
    config.pop("login")
    agent = make_agent(config)
    vendor.broken = True

    result = await agent.delegate(BRIEF)

    assert result.status is DelegationStatus.FAILED
    assert result.error is not None
    assert result.error.startswith("step 2 (fill '#audience') found nothing within 2 s: the page may have changed")
    [screenshot] = result.evidence
    assert screenshot.content.startswith(PNG_SIGNATURE)


@in_module_loop
async def test_a_delegation_slower_than_its_timeout_raises_agent_timeout(
    vendor: WebVendor, make_agent: Callable[..., BrowserAgent]
) -> None:
    agent = make_agent(vendor_config(vendor))
    await agent.delegate(BRIEF, human=AnsweringPerson())

    with pytest.raises(AgentTimeout, match="no answer within 1 s"):
        await agent.delegate(DelegationRequest(capability="open_slow_page", timeout_seconds=1))


@in_module_loop
async def test_chromium_missing_makes_the_agent_unavailable_and_says_how_to_fix_it(
    vendor: WebVendor, make_agent: Callable[..., BrowserAgent]
) -> None:
    agent = make_agent(vendor_config(vendor, chromium_path="/nonexistent/chromium"), own_chromium=True)

    with pytest.raises(AgentUnavailable, match="Chromium could not start from /nonexistent/chromium") as raised:
        await agent.delegate(BRIEF)

    assert "apt-get install chromium" in str(raised.value)
    assert not (await agent.health()).ok


@in_module_loop
async def test_credentials_never_appear_in_repr_errors_logs_or_evidence(
    vendor: WebVendor, make_agent: Callable[..., BrowserAgent], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = vendor_config(vendor, timeouts={"step_seconds": 2})
    vendor.password = "a-different-password"
    agent = make_agent(config)

    result = await agent.delegate(BRIEF, human=AnsweringPerson())

    assert result.status is DelegationStatus.FAILED
    assert result.error is not None
    assert result.error.startswith("signing in, step 5 (expect_code '#code') found nothing within 2 s")
    texts = [
        result.error,
        repr(agent),
        repr(agent.config),
        str(agent.config),
        caplog.text,
        *(item.description for item in result.evidence),
        *(item.content.decode(errors="replace") for item in result.evidence if item.kind != "screenshot"),
    ]
    for text in texts:
        assert PASSWORD not in text
        assert USERNAME not in text
    assert json.dumps(agent.config.to_dict()).find(PASSWORD) == -1
    assert agent.config.to_dict(with_secrets=True)["credentials"] == {"username": USERNAME, "password": PASSWORD}


@in_module_loop
async def test_capabilities_say_which_input_each_recipe_needs_and_unknown_ones_are_refused(
    vendor: WebVendor, make_agent: Callable[..., BrowserAgent]
) -> None:
    agent = make_agent(vendor_config(vendor))

    capabilities = {capability.name: capability for capability in await agent.capabilities()}
    brief = capabilities["create_campaign_brief"]
    assert brief.input_schema["required"] == ["name", "audience"]
    assert brief.description == "Create a campaign brief in the vendor's tool"

    with pytest.raises(UnknownCapability, match="cannot 'send_email'; it can: create_campaign_brief"):
        await agent.delegate(DelegationRequest(capability="send_email"))
    missing = await agent.delegate(DelegationRequest(capability="create_campaign_brief", input={"name": "Launch"}))
    assert missing.status is DelegationStatus.FAILED
    assert missing.error == "the recipe needs input audience; the request gave name"
    assert vendor.requests == []


def test_a_config_survives_its_json_form(vendor: WebVendor) -> None:
    config = BrowserConfig.from_dict(vendor_config(vendor))

    stored = json.loads(json.dumps(config.to_dict(with_secrets=True)))
    assert BrowserConfig.from_dict(stored, name="vendor-marketing") == config
    assert "credentials" not in config.to_dict()


@in_module_loop
async def test_the_registry_factory_keeps_credentials_secret_and_builds_an_agent_with_its_session_store(
    vendor: WebVendor, vault: Vault, chromium: Chromium
) -> None:
    stores: dict[str, MemoryStorageStateStore] = {}
    factory = BrowserAdapterFactory(
        vault=vault,
        sessions=lambda name: stores.setdefault(name, MemoryStorageStateStore()),
        chromium=chromium,
        egress=LOOPBACK,
    )
    registered = {key: value for key, value in vendor_config(vendor).items() if key != "name"}

    valid = factory.validate(registered)
    agent = factory.build("acme", valid)
    try:
        result = await agent.delegate(BRIEF, human=AnsweringPerson())
    finally:
        await agent.close()

    assert set(factory.secret_fields) == {"credentials"}
    assert valid["credentials"] == {"username": USERNAME, "password": PASSWORD}
    assert (agent.kind, agent.name) == ("browser", "acme")
    assert result.status is DelegationStatus.SUCCEEDED, result.error
    assert stores["acme"].state is not None
    with pytest.raises(AgentConfigInvalid, match="origins: must be a list"):
        factory.validate({**registered, "origins": "http://127.0.0.1"})
