"""The browser adapter against a single-page app that draws its forms after it loads, with the README's recipe.

Like tests/adapters/test_browser.py, the tests share one Chromium (and so the module's event loop).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from adapters.browser import (
    BrowserAgent,
    BrowserConfig,
    Chromium,
    MemoryStorageStateStore,
    _OriginGuard,
    _providers_and_problems,
)
from adapters.browser_codegen import checked_config, recipe_from_codegen
from planner.domain.delegations import DelegationStatus
from planner.ports import (
    AgentConfigInvalid,
    AgentNotReached,
    AgentUnavailable,
    DelegationRequest,
    HumanChannel,
    QuestionCancelled,
)
from planner.store.vault import Vault
from tests.adapters.operator import LOOPBACK
from tests.adapters.web_vendor import AnsweringPerson
from tests.fakes.identity_provider import IdentityProvider
from tests.fakes.spa_vendor import SpaVendor

ROOT = Path(__file__).resolve().parents[2]
EMAIL = "ops@brand.example"
PASSWORD = "a long passphrase"
CODE = "448912"
README_ORIGIN = "https://flows.example.com"

in_module_loop = pytest.mark.asyncio(loop_scope="module")


def readme_recipe(name: str) -> dict[str, Any]:
    """The JSON block marked `<!-- recipe: name -->` in the README, exactly as written."""
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- recipe: {re.escape(name)} -->\s*```json\n(.*?)```", text, re.DOTALL)
    assert match is not None, f"the README has no recipe {name!r}"
    config = json.loads(match.group(1))
    assert isinstance(config, dict)
    return config


def flows_config(vendor: SpaVendor, **timeouts: float) -> dict[str, Any]:
    """The README's recipe, pointed at the loopback app (its origin and its account are the only changes)."""
    text = json.dumps(readme_recipe("flows")).replace(README_ORIGIN, vendor.url)
    config: dict[str, Any] = json.loads(text)
    assert config["credentials"] == {"email": EMAIL, "password": PASSWORD}
    config["name"] = "flows"
    config["timeouts"] = {**config["timeouts"], "step_seconds": 10, **timeouts}
    return config


class TypingPerson(HumanChannel):
    """A person who types the code the way people do, in groups."""

    def __init__(self, typed: str) -> None:
        self.typed = typed
        self.questions: list[str] = []

    async def ask(self, question: str, *, timeout_seconds: float) -> str:
        self.questions.append(question)
        return self.typed


class CancellingPerson(HumanChannel):
    """A person who says `cancel` instead of giving the code."""

    async def ask(self, question: str, *, timeout_seconds: float) -> str:
        raise QuestionCancelled("flows")


WORKFLOW = DelegationRequest(
    capability="create_workflow", input={"name": "Weekly digest", "trigger": "schedule"}, timeout_seconds=60
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chromium() -> AsyncIterator[Chromium]:
    shared = Chromium(hosts=["127.0.0.1"], egress=LOOPBACK)
    yield shared
    await shared.close()


@pytest_asyncio.fixture(loop_scope="module")
async def vendor() -> AsyncIterator[SpaVendor]:
    async with SpaVendor(email=EMAIL, password=PASSWORD, code=CODE) as vendor:
        yield vendor


@pytest.fixture
def vault() -> Vault:
    return Vault([Vault.generate_key()])


@pytest_asyncio.fixture(loop_scope="module")
async def make_agent(vault: Vault, chromium: Chromium) -> AsyncIterator[Callable[..., BrowserAgent]]:
    agents: list[BrowserAgent] = []

    def make(config: dict[str, Any], sessions: MemoryStorageStateStore | None = None) -> BrowserAgent:
        agent = BrowserAgent(
            BrowserConfig.from_dict(config), vault=vault, sessions=sessions, chromium=chromium, egress=LOOPBACK
        )
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        await agent.close()


@in_module_loop
async def test_the_readme_recipe_signs_in_to_a_single_page_app_that_draws_its_forms_late(
    vendor: SpaVendor, make_agent: Callable[..., BrowserAgent]
) -> None:
    sessions = MemoryStorageStateStore()
    agent = make_agent(flows_config(vendor), sessions)
    person = AnsweringPerson(CODE)

    result = await agent.delegate(WORKFLOW, human=person)

    assert result.status is DelegationStatus.SUCCEEDED, result.error
    assert result.output == "Saved W-1: Weekly digest (schedule)"
    assert vendor.workflows == [{"id": "W-1", "name": "Weekly digest", "trigger": "schedule"}]
    assert vendor.logins == 1
    assert len(person.questions) == 1
    assert sessions.saves >= 1


@in_module_loop
async def test_the_saved_session_of_a_single_page_app_is_reused_without_asking_again(
    vendor: SpaVendor, make_agent: Callable[..., BrowserAgent]
) -> None:
    sessions = MemoryStorageStateStore()
    person = AnsweringPerson(CODE)
    first = await make_agent(flows_config(vendor), sessions).delegate(WORKFLOW, human=person)

    second = await make_agent(flows_config(vendor), sessions).delegate(WORKFLOW, human=person)

    assert (first.status, second.status) == (DelegationStatus.SUCCEEDED, DelegationStatus.SUCCEEDED), second.error
    assert second.output == "Saved W-2: Weekly digest (schedule)"
    assert vendor.logins == 1
    assert len(person.questions) == 1


@in_module_loop
async def test_a_code_typed_with_a_hyphen_is_typed_in_as_one_code(
    vendor: SpaVendor, make_agent: Callable[..., BrowserAgent]
) -> None:
    result = await make_agent(flows_config(vendor)).delegate(WORKFLOW, human=TypingPerson("448-912"))

    assert result.status is DelegationStatus.SUCCEEDED, result.error
    assert vendor.codes_tried == [CODE]


@in_module_loop
async def test_a_person_cancelling_the_code_question_is_reported_as_cancelled_not_as_a_timeout(
    vendor: SpaVendor, make_agent: Callable[..., BrowserAgent]
) -> None:
    result = await make_agent(flows_config(vendor)).delegate(WORKFLOW, human=CancellingPerson())

    assert result.status is DelegationStatus.FAILED
    assert result.error is not None
    assert "cancelled by the person asked for the sign-in code" in result.error
    assert "timed out" not in result.error
    assert vendor.workflows == []


@in_module_loop
async def test_a_vendor_failing_in_background_requests_before_anything_was_submitted_defers_the_delegation(
    vendor: SpaVendor, make_agent: Callable[..., BrowserAgent]
) -> None:
    vendor.api_failing = True
    agent = make_agent(flows_config(vendor, step_seconds=2))
    person = AnsweringPerson(CODE)

    with pytest.raises(AgentNotReached) as raised:
        await agent.delegate(WORKFLOW, human=person)

    assert "/api/me answered 503: the site is failing" in raised.value.reason
    assert "before the recipe submitted anything" in raised.value.reason
    assert person.questions == []
    assert vendor.workflows == []


@in_module_loop
async def test_a_vendor_failing_after_the_recipe_submitted_is_of_unknown_outcome_not_a_wrong_page(
    vendor: SpaVendor, make_agent: Callable[..., BrowserAgent]
) -> None:
    sessions = MemoryStorageStateStore()
    first = await make_agent(flows_config(vendor), sessions).delegate(WORKFLOW, human=AnsweringPerson(CODE))
    assert first.status is DelegationStatus.SUCCEEDED, first.error
    vendor.save_failing = True

    with pytest.raises(AgentUnavailable) as raised:
        await make_agent(flows_config(vendor, step_seconds=2), sessions).delegate(WORKFLOW)

    assert not isinstance(raised.value, AgentNotReached)  # it may have acted: never sent again by itself
    assert "/api/workflows answered 500: the site is failing" in raised.value.reason
    assert "after the recipe submitted something" in raised.value.reason
    assert [workflow["id"] for workflow in vendor.workflows] == ["W-1", "W-2"]


TOOLS = {
    "description": "Find a campaign, import a brief and download the report",
    "steps": [
        {"kind": "goto", "url": "{origin}/tools"},
        {"kind": "hover", "selector": 'role=button[name="More"]'},
        {"kind": "click", "selector": "text=Import a brief"},
        {"kind": "fill", "frame": "iframe[title=Search]", "selector": "label=Search", "value": "{campaign}"},
        {"kind": "press", "frame": "iframe[title=Search]", "selector": "label=Search", "key": "Enter"},
        {"kind": "extract_text", "frame": "iframe[title=Search]", "selector": "#found", "field": "found"},
        {"kind": "upload", "selector": "label=Brief file", "name": "{campaign}.txt", "content": "{brief}"},
        {"kind": "click", "selector": 'role=button[name="Upload"]'},
        {"kind": "extract_text", "selector": "#uploaded", "field": "uploaded"},
        {"kind": "download", "selector": "text=Download the report", "description": "the leads report"},
    ],
    "output": "{found}; {uploaded}",
}


@in_module_loop
async def test_recipes_hover_press_keys_fill_inside_iframes_upload_and_download(
    vendor: SpaVendor, make_agent: Callable[..., BrowserAgent]
) -> None:
    config = flows_config(vendor)
    config["capabilities"]["use_tools"] = json.loads(json.dumps(TOOLS).replace("{origin}", vendor.url))
    agent = make_agent(config)
    request = DelegationRequest(
        capability="use_tools", input={"campaign": "spring", "brief": "Launch on 3 March."}, timeout_seconds=60
    )

    result = await agent.delegate(request, human=AnsweringPerson(CODE))

    assert result.status is DelegationStatus.SUCCEEDED, result.error
    assert result.output == "Found: spring; Uploaded spring.txt (18 bytes)"
    assert vendor.uploads == [("spring.txt", b"Launch on 3 March.")]
    report = next(item for item in result.evidence if item.kind == "file")
    assert (report.media_type, report.description) == ("text/csv", "the leads report")
    assert report.content == b"campaign,leads\nspring,42\n"


def sso_config(vendor: SpaVendor, idp: IdentityProvider, *, providers: list[str]) -> dict[str, Any]:
    config = flows_config(vendor)
    config["identity_providers"] = providers
    config["login"] = {
        "signed_out_selector": 'role=button[name="Sign in"]',
        "signed_in_selector": 'role=heading[name="Overview"]',
        "steps": [
            {"kind": "goto", "url": f"{vendor.url}/sso/start"},
            {"kind": "fill", "selector": "label=Work email", "value": "{credentials.email}"},
            {"kind": "click", "selector": 'role=button[name="Continue with SSO"]'},
            {"kind": "wait_for", "selector": 'role=heading[name="Overview"]'},
        ],
    }
    return config


@in_module_loop
async def test_signing_in_passes_through_an_identity_provider_listed_with_a_wildcard(
    vendor: SpaVendor, vault: Vault
) -> None:
    async with IdentityProvider(email=EMAIL) as idp:
        vendor.identity_provider = idp
        config = sso_config(vendor, idp, providers=[f"http://*.idp.localhost:{idp.port}"])
        agent = BrowserAgent(BrowserConfig.from_dict(config), vault=vault, egress=LOOPBACK)  # resolves *.idp.localhost
        try:
            result = await agent.delegate(WORKFLOW)
        finally:
            await agent.close()

    assert result.status is DelegationStatus.SUCCEEDED, result.error
    assert (idp.sign_ins, vendor.logins) == (1, 1)
    assert result.output == "Saved W-1: Weekly digest (schedule)"


@in_module_loop
async def test_an_identity_provider_not_listed_is_refused(
    vendor: SpaVendor, make_agent: Callable[..., BrowserAgent]
) -> None:
    async with IdentityProvider(email=EMAIL) as idp:
        vendor.identity_provider = idp
        result = await make_agent(sso_config(vendor, idp, providers=[])).delegate(WORKFLOW)

    assert result.status is DelegationStatus.FAILED
    assert result.error is not None
    assert f"tried to leave the registered origins for {idp.url}/authorize" in result.error
    assert idp.sign_ins == 0


def test_a_wildcard_identity_provider_allows_its_subdomains_only() -> None:
    providers, problems = _providers_and_problems(["https://*.okta.com", "https://login.microsoftonline.com"])
    guard = _OriginGuard(frozenset(), providers)

    assert problems == []
    assert guard.allows("https://brand.okta.com/app/sso")
    assert guard.allows("https://a.b.okta.com/")
    assert guard.allows("https://login.microsoftonline.com/common/oauth2")
    assert not guard.allows("https://okta.com/")
    assert not guard.allows("https://evilokta.com/")
    assert not guard.allows("https://brand.okta.com.evil.example/")
    assert not guard.allows("http://brand.okta.com/")
    assert not guard.allows("https://brand.okta.com:8443/")
    assert not guard.allows("https://microsoftonline.com/")


def test_identity_providers_that_are_too_wide_are_refused_when_registering() -> None:
    config = {**readme_recipe("flows"), "name": "flows"}
    config["identity_providers"] = ["https://*.com", "https://login.*.example", "https://*.10.0.0.1", "okta.com"]

    with pytest.raises(AgentConfigInvalid) as refused:
        BrowserConfig.from_dict(config)

    assert [problem.split(" ", 3)[:3] for problem in refused.value.problems] == [
        ["identity_providers", "#1", "'https://*.com'"],
        ["identity_providers", "#2", "'https://login.*.example'"],
        ["identity_providers", "#3", "'https://*.10.0.0.1'"],
        ["identity_providers", "#4", "'okta.com'"],
    ]


RECORDED = """
import re
from playwright.sync_api import Playwright, sync_playwright, expect


def run(playwright: Playwright) -> None:
    browser = playwright.chromium.launch(headless=False)
    context = browser.new_context()
    page = context.new_page()
    page.goto("{origin}/tools")
    page.get_by_role("button", name="More").hover()
    page.get_by_role("link", name="Import a brief").click()
    page.locator("iframe[title=\\"Search\\"]").content_frame.get_by_label("Search").click()
    page.locator("iframe[title=\\"Search\\"]").content_frame.get_by_label("Search").fill("autumn")
    page.locator("iframe[title=\\"Search\\"]").content_frame.get_by_label("Search").press("Enter")
    expect(page.locator("iframe[title=\\"Search\\"]").content_frame.get_by_text("Found:")).to_be_visible()
    page.get_by_label("Brief file").set_input_files("brief.txt")
    page.get_by_role("button", name="Upload").click()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the report").click()
    download = download_info.value

    # ---------------------
    context.close()
    browser.close()


with sync_playwright() as playwright:
    run(playwright)
"""


@in_module_loop
async def test_a_recording_from_playwright_codegen_imports_into_a_recipe_that_runs(
    vendor: SpaVendor, make_agent: Callable[..., BrowserAgent]
) -> None:
    imported = recipe_from_codegen(RECORDED.replace("{origin}", vendor.url), description="Import a brief")
    config = {"name": "flows", **checked_config(imported, "import_brief")}
    agent = make_agent(config)
    [capability] = await agent.capabilities()
    assert capability.input_schema["required"] == ["search", "brief_file_file_name", "brief_file_content"]
    request = DelegationRequest(
        capability="import_brief",
        input={"search": "spring", "brief_file_file_name": "brief.txt", "brief_file_content": "Launch."},
        timeout_seconds=60,
    )

    result = await agent.delegate(request)

    assert result.status is DelegationStatus.SUCCEEDED, result.error
    assert vendor.uploads == [("brief.txt", b"Launch.")]
    assert any(item.kind == "file" and item.content.startswith(b"campaign,leads") for item in result.evidence)
    assert imported.notes == []


@in_module_loop
async def test_a_refused_code_on_a_single_page_app_fails_without_repeating_the_code(
    vendor: SpaVendor, make_agent: Callable[..., BrowserAgent]
) -> None:
    result = await make_agent(flows_config(vendor, step_seconds=2)).delegate(WORKFLOW, human=TypingPerson("000 111"))

    assert result.status is DelegationStatus.FAILED
    assert result.error is not None
    assert "the site did not accept the code" in result.error
    assert "000111" not in result.error
    assert "000 111" not in result.error
    assert vendor.codes_tried == ["000111"]
    assert vendor.workflows == []
