"""Browser agents: vendor tools that only have a web UI, driven by Playwright through declarative recipes.

An admin registers a `BrowserConfig` (plain JSON): the origins the agent may visit, an optional sign-in recipe
with its credentials, and one recipe per capability. A recipe is a list of steps (`goto`, `fill`, `click`,
`wait_for`, `extract_text`, `screenshot`, `expect_code`) whose templates take only the request's input fields
(and, in `fill`, the credentials); nothing a page returns is ever executed.

The browser can only reach the registered origins: a context route aborts every other request, a host-resolver
rule makes every other host unresolvable (redirects are not routed by Playwright, so this is what stops them), and
a delegation whose page leaves the origins fails. The origins themselves must be allowed by the operator's address
rule (`adapters.egress`): an internal address is refused at registration, and when Chromium starts each origin's
host is resolved, every address checked, and the host pinned to the checked address in that rule, so Chromium never
asks DNS itself (a name that later resolves to an internal address gets nowhere). Which Chromium runs is the
operator's choice (`COS_CHROMIUM_PATH`), never a config's; it starts with a minimal environment (none of the bot's
secrets). The signed-in session (cookies, local storage) is kept encrypted
with the `Vault` in a `StorageStateStore` and reused, so a delegation signs in only when the site asks again.
When the site asks for a 2FA code, the adapter asks a person through the `HumanChannel` and types the answer in.

Outcomes, by cause:
- the site is unreachable, answers 5xx (the page, or a request it makes in the background when a step then fails),
  the page crashes, or the browser cannot start or dies: `AgentNotReached` while the recipe has submitted nothing
  (no click, key press or pick, no request but GETs: the delegation is deferred and run again), `AgentUnavailable`
  once it may have (outcome unknown: never re-sent by itself); both count against the agent's circuit;
- the delegation takes longer than `request.timeout_seconds` (time spent waiting for a person's code excepted):
  `AgentTimeout`;
- a step finds nothing in time, the page leaves the registered origins, signing in fails, or nobody gives the
  code (or the person cancels): a `failed` result saying which step and why, with a screenshot when one can be
  taken. These say the recipe or the person needs attention, not that the vendor is down, so they do not open the
  circuit.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import logging
import mimetypes
import os
import re
import shutil
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from playwright.async_api import (
    Browser,
    BrowserContext,
    FrameLocator,
    Locator,
    Page,
    Playwright,
    Request,
    Response,
    Route,
    WebSocketRoute,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from adapters.egress import UNREACHABLE, AddressRefused, Egress, HostNotFound, parse_address
from adapters.stdio_commands import INHERITED_VARIABLES
from planner.domain.delegations import DelegationStatus
from planner.domain.questions import code_answer
from planner.ports import (
    Agent,
    AgentConfigInvalid,
    AgentHealth,
    AgentNotReached,
    AgentTimeout,
    AgentUnavailable,
    Capability,
    DelegationRequest,
    DelegationResult,
    Evidence,
    HumanChannel,
    QuestionCancelled,
    UnknownCapability,
)
from planner.store.vault import Vault, VaultError

logger = logging.getLogger(__name__)

DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_PATH_ENV = "COS_CHROMIUM_PATH"
DEFAULT_CODE_QUESTION = "{agent} asks for your sign-in code (two-factor authentication). Reply with the code."

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CAPABILITY_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_CREDENTIAL_PREFIX = "credentials."
_NET_ERROR = re.compile(r"net::(ERR_[A-Z_]+)")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_MOST_STEPS = 20
"""The steps a result keeps of those the recipe reported: the last ones."""


def _now() -> datetime:
    return datetime.now(UTC)


# Templates ---------------------------------------------------------------------------------------------------------


def _template_problems(text: str) -> list[str]:
    problems: list[str] = []
    for match in _PLACEHOLDER.finditer(text):
        name = match.group(1)
        if name is None:
            continue
        bare = name.removeprefix(_CREDENTIAL_PREFIX)
        if not _IDENTIFIER.match(bare):
            problems.append(
                f"placeholder {{{name}}} is not an input field name or credentials.<name> (write {{{{ for a brace)"
            )
    leftover = _PLACEHOLDER.sub("", text)
    if "{" in leftover or "}" in leftover:
        problems.append("has an unmatched brace (write {{ or }} for a literal brace)")
    return problems


def _placeholders(text: str) -> list[str]:
    return [match.group(1) for match in _PLACEHOLDER.finditer(text) if match.group(1) is not None]


def _render(text: str, values: Mapping[str, str], *, for_url: bool = False) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)[0]
        value = values[name]
        return quote(value, safe="") if for_url else value

    return _PLACEHOLDER.sub(substitute, text)


# Origins -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class _Origin:
    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        port = "" if _DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}{port}"


def _origin_of(url: str) -> _Origin | None:
    """The http(s) origin of `url` (ws and wss count as their http twins), or None for any other kind of address."""
    try:
        parts = urlsplit(url)
        scheme = {"ws": "http", "wss": "https"}.get(parts.scheme.lower(), parts.scheme.lower())
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            return None
        return _Origin(scheme, parts.hostname.lower(), parts.port or _DEFAULT_PORTS[scheme])
    except ValueError:
        return None


def _parse_origin(text: str) -> tuple[_Origin | None, str]:
    origin = _origin_of(text)
    if origin is None or text.split(":", 1)[0].lower() not in _DEFAULT_PORTS:
        return None, "is not an http(s) origin like https://app.vendor.example or http://127.0.0.1:8080"
    parts = urlsplit(text)
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        return None, "must be scheme://host[:port] only, without a path, query or user"
    return origin, ""


@dataclass(frozen=True, order=True)
class _IdentityProvider:
    """An origin sign-in may pass through (an SSO hop): exact, or with `wildcard` any subdomain of `host`."""

    scheme: str
    host: str
    port: int
    wildcard: bool = False

    def matches(self, origin: _Origin) -> bool:
        if (origin.scheme, origin.port) != (self.scheme, self.port):
            return False
        return origin.host.endswith("." + self.host) if self.wildcard else origin.host == self.host

    @property
    def pattern(self) -> str:
        """The host as Chromium's host rules write it (`*.okta.com`)."""
        return f"*.{self.host}" if self.wildcard else self.host

    def __str__(self) -> str:
        port = "" if _DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        return f"{self.scheme}://{self.pattern}{port}"


def _parse_identity_provider(text: str) -> tuple[_IdentityProvider | None, str]:
    scheme, separator, rest = text.partition("://")
    wildcard = rest.startswith("*.")
    origin, problem = _parse_origin(f"{scheme}{separator}{rest[2:]}" if wildcard else text)
    if origin is None:
        return None, problem.replace("https://app.vendor.example", "https://login.idp.example or https://*.okta.com")
    if wildcard and (parse_address(origin.host) is not None or origin.host.count(".") < 1):
        return None, "may put *. only before a domain with at least two labels, like https://*.okta.com"
    if "*" in origin.host:
        return None, "may use * only as the first label, like https://*.okta.com"
    return _IdentityProvider(origin.scheme, origin.host, origin.port, wildcard), ""


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


# Steps -------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Goto:
    """Open `url`; `{field}` placeholders take the request's input, URL-encoded."""

    url: str
    kind = "goto"


@dataclass(frozen=True, kw_only=True)
class Fill:
    """Type `value` (a template of input fields, or `{credentials.name}`) into the field at `selector`."""

    selector: str
    value: str
    frame: str | None = None
    kind = "fill"


@dataclass(frozen=True, kw_only=True)
class Click:
    """Click the element at `selector`."""

    selector: str
    frame: str | None = None
    kind = "click"


@dataclass(frozen=True, kw_only=True)
class WaitFor:
    """Wait until an element at `selector` is visible, or the address matches the glob `url`."""

    selector: str | None = None
    url: str | None = None
    frame: str | None = None
    kind = "wait_for"


@dataclass(frozen=True, kw_only=True)
class ExtractText:
    """Read the text of the element at `selector` into the output field `field`."""

    selector: str
    field: str
    frame: str | None = None
    kind = "extract_text"


@dataclass(frozen=True, kw_only=True)
class Screenshot:
    """Keep a PNG of the page as evidence."""

    description: str = ""
    full_page: bool = False
    kind = "screenshot"


@dataclass(frozen=True, kw_only=True)
class ExpectCode:
    """If the site asks for a code at `selector`, ask a person for it, type it in and submit.

    With `unless`, the step waits for either the code field or that selector and asks only when the code field shows;
    without it, the code field must appear.
    """

    selector: str
    submit: str | None = None
    unless: str | None = None
    question: str = ""
    kind = "expect_code"


@dataclass(frozen=True, kw_only=True)
class Press:
    """Press `key` (`Enter`, `Escape`, `Control+A`…) in the element at `selector`, or in the page without one."""

    key: str
    selector: str | None = None
    frame: str | None = None
    kind = "press"


@dataclass(frozen=True, kw_only=True)
class Select:
    """Pick the option whose value or label is `value` (a template of input fields) in the `<select>` at `selector`."""

    selector: str
    value: str
    frame: str | None = None
    kind = "select"


@dataclass(frozen=True, kw_only=True)
class Hover:
    """Move the mouse over the element at `selector` (to open a menu that shows on hover)."""

    selector: str
    frame: str | None = None
    kind = "hover"


@dataclass(frozen=True, kw_only=True)
class Upload:
    """Put a file named `name` holding `content` (both templates of input fields) into the file input at `selector`."""

    selector: str
    name: str
    content: str
    media_type: str = "text/plain"
    frame: str | None = None
    kind = "upload"


@dataclass(frozen=True, kw_only=True)
class Download:
    """Click the element at `selector` and keep the file the site sends as evidence."""

    selector: str
    description: str = ""
    frame: str | None = None
    kind = "download"


Step = (
    Goto | Fill | Click | WaitFor | ExtractText | Screenshot | ExpectCode | Press | Select | Hover | Upload | Download
)

_IN_FRAME = "frame"
"""The field every step that finds an element takes: a selector of the iframe to look in (on a registered origin)."""

_STEP_FIELDS: dict[str, tuple[type[Any], tuple[str, ...], tuple[str, ...]]] = {
    # kind: (class, required fields, optional fields)
    "goto": (Goto, ("url",), ()),
    "fill": (Fill, ("selector", "value"), (_IN_FRAME,)),
    "click": (Click, ("selector",), (_IN_FRAME,)),
    "wait_for": (WaitFor, (), ("selector", "url", _IN_FRAME)),
    "extract_text": (ExtractText, ("selector", "field"), (_IN_FRAME,)),
    "screenshot": (Screenshot, (), ("description", "full_page")),
    "expect_code": (ExpectCode, ("selector",), ("submit", "unless", "question")),
    "press": (Press, ("key",), ("selector", _IN_FRAME)),
    "select": (Select, ("selector", "value"), (_IN_FRAME,)),
    "hover": (Hover, ("selector",), (_IN_FRAME,)),
    "upload": (Upload, ("selector", "name", "content"), ("media_type", _IN_FRAME)),
    "download": (Download, ("selector",), ("description", _IN_FRAME)),
}
MAX_DOWNLOAD_BYTES = 5 * 1024 * 1024
STEP_WORDS = {
    "goto": "opened a page",
    "fill": "filled in a field",
    "click": "clicked",
    "press": "pressed a key",
    "select": "picked an option",
    "hover": "pointed at an element",
    "wait_for": "waited for the page",
    "extract_text": "read the result",
    "upload": "uploaded a file",
    "download": "downloaded a file",
    "screenshot": "took a screenshot",
}
"""A recipe step's kind as the person following the delegation reads it (never its selector or value)."""
_LOGIN_KINDS = ("goto", "fill", "click", "wait_for", "expect_code", "press", "select", "hover")


def _did_you_mean(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _parse_step(raw: object, where: str, problems: list[str]) -> Step | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: must be an object like {{'kind': 'click', 'selector': '#save'}}")
        return None
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in _STEP_FIELDS:
        known = ", ".join(sorted(_STEP_FIELDS))
        hint = _did_you_mean(kind, _STEP_FIELDS) if isinstance(kind, str) else ""
        problems.append(f"{where}: unknown step kind {kind!r}{hint}; known kinds: {known}")
        return None
    cls, required, optional = _STEP_FIELDS[kind]
    before = len(problems)
    values: dict[str, Any] = {}
    for name in raw:
        if name != "kind" and name not in required and name not in optional:
            problems.append(f"{where} ({kind}): unknown field {name!r}{_did_you_mean(name, required + optional)}")
    for name in required + optional:
        value = raw.get(name)
        if value is None:
            if name in required:
                problems.append(f"{where} ({kind}): missing {name!r}")
            continue
        if name == "full_page":
            if not isinstance(value, bool):
                problems.append(f"{where} ({kind}): 'full_page' must be true or false")
                continue
        elif not isinstance(value, str) or (name not in ("value", "content") and not value.strip()):
            problems.append(f"{where} ({kind}): {name!r} must be a non-empty string")
            continue
        values[name] = value
    if len(problems) > before:
        return None
    step: Step = cls(**values)
    return step


def _step_to_dict(step: Step) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": step.kind}
    _, required, optional = _STEP_FIELDS[step.kind]
    for name in required + optional:
        value = getattr(step, name)
        if name in required or (value not in (None, "", False)):
            data[name] = value
    return data


def _describe(step: Step) -> str:
    if isinstance(step, Goto):
        return f"goto {_without_query(step.url)!r}"
    if isinstance(step, WaitFor):
        return f"wait_for {step.selector or step.url!r}"
    if isinstance(step, Screenshot):
        return "screenshot"
    if isinstance(step, Press):
        return f"press {step.key!r}" + (f" in {step.selector!r}" if step.selector else "")
    return f"{step.kind} {step.selector!r}"


def _templates(step: Step) -> list[tuple[str, str]]:
    """(field name, template text) of the step's templated fields."""
    if isinstance(step, Goto):
        return [("url", step.url)]
    if isinstance(step, Fill | Select):
        return [("value", step.value)]
    if isinstance(step, Upload):
        return [("name", step.name), ("content", step.content)]
    return []


# Configuration -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    """How long the browser waits: per step, per page load, for a person's code, for Chromium to start."""

    step_seconds: float = 15.0
    navigation_seconds: float = 30.0
    code_answer_seconds: float = 300.0
    launch_seconds: float = 30.0


class Credentials:
    """The secret part of a config (username, password…): typed into the sign-in form, never shown."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = dict(values or {})

    def names(self) -> list[str]:
        return sorted(self._values)

    def get(self, name: str) -> str | None:
        return self._values.get(name)

    def to_dict(self) -> dict[str, str]:
        """The secrets in the clear: only to encrypt them for storage."""
        return dict(self._values)

    def redact(self, text: str) -> str:
        """`text` with every secret value replaced by a mask."""
        for value in sorted(self._values.values(), key=len, reverse=True):
            if len(value) >= 3:
                text = text.replace(value, "•••")
        return text

    def __bool__(self) -> bool:
        return bool(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Credentials) and other._values == self._values

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Credentials(<{len(self._values)} hidden: {', '.join(self.names()) or 'none'}>)"

    __str__ = __repr__


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """How to do one capability in the vendor's UI; `output` is a template of extracted and input fields."""

    steps: tuple[Step, ...]
    description: str = ""
    output: str | None = None

    @property
    def input_fields(self) -> list[str]:
        """The request input fields the recipe's templates use, in order of first use."""
        return _input_fields(self.steps)

    @property
    def extracted_fields(self) -> list[str]:
        """The output fields the recipe reads from the page."""
        return _extracted_fields(self.steps)


def _input_fields(steps: Sequence[Step | None]) -> list[str]:
    names: list[str] = []
    for step in steps:
        for _, text in _templates(step) if step is not None else ():
            for name in _placeholders(text):
                if not name.startswith(_CREDENTIAL_PREFIX) and name not in names:
                    names.append(name)
    return names


def _extracted_fields(steps: Sequence[Step | None]) -> list[str]:
    return [step.field for step in steps if isinstance(step, ExtractText)]


@dataclass(frozen=True, kw_only=True)
class LoginRecipe:
    """How to sign in; `signed_out_selector` is an element shown only to a signed-out visitor (the sign-in form),
    `signed_in_selector` (optional) one shown only to a signed-in user (the app's menu): with it, telling the two apart
    on a page that draws itself late waits for whichever shows first instead of for the network to settle."""

    signed_out_selector: str
    steps: tuple[Step, ...]
    signed_in_selector: str | None = None


def _recipe_problems(
    where: str, steps: Sequence[Step | None], *, origins: Sequence[_Origin], credentials: Credentials, login: bool
) -> list[str]:
    """What is wrong with a recipe; a None step could not be read at all (and was reported then)."""
    problems: list[str] = []
    if not steps:
        return [f"{where}: has no steps"]
    if steps[0] is not None and not isinstance(steps[0], Goto):
        problems.append(f"{where}: must start with a goto step (the browser starts on a blank page)")
    listing = ", ".join(str(origin) for origin in origins) or "none"
    for number, step in enumerate(steps, start=1):
        if step is None:
            continue
        at = f"{where}, step {number} ({step.kind})"
        if login and step.kind not in _LOGIN_KINDS:
            problems.append(f"{at}: a sign-in recipe may only {', '.join(_LOGIN_KINDS)} (it must not keep evidence)")
        if isinstance(step, WaitFor) and (step.selector is None) == (step.url is None):
            problems.append(f"{at}: give exactly one of 'selector' or 'url'")
        if isinstance(step, ExtractText) and not _IDENTIFIER.match(step.field):
            problems.append(f"{at}: output field {step.field!r} must be a name like brief_id")
        for name, text in _templates(step):
            problems.extend(f"{at}: {name} {problem}" for problem in _template_problems(text))
            for placeholder in _placeholders(text):
                secret = placeholder.removeprefix(_CREDENTIAL_PREFIX)
                if placeholder.startswith(_CREDENTIAL_PREFIX):
                    if not isinstance(step, Fill):
                        problems.append(f"{at}: credentials may only be typed into a field (fill), never in a {name}")
                    elif credentials.get(secret) is None:
                        problems.append(f"{at}: uses {{{placeholder}}} but no credential {secret!r} is set")
                elif login:
                    problems.append(f"{at}: a sign-in recipe cannot use input field {{{placeholder}}}")
        if isinstance(step, Goto):
            problems.extend(_goto_problems(at, step.url, origins, listing))
    if not login:
        fields = _extracted_fields(steps)
        twice = sorted({name for name in fields if fields.count(name) > 1})
        problems.extend(f"{where}: output field {name!r} is extracted twice" for name in twice)
    return problems


def _goto_problems(at: str, url: str, origins: Sequence[_Origin], listing: str) -> list[str]:
    scheme, separator, rest = url.partition("://")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0] if separator else ""
    if not separator or "{" in scheme or "{" in authority:
        return [f"{at}: url must be absolute with a fixed origin (input may fill the path or query only)"]
    origin = _origin_of(f"{scheme}://{authority}/")
    if origin is None:
        return [f"{at}: url {url!r} is not an http(s) address"]
    if origins and origin not in origins:  # with no valid origin, the origins' own problem says it all
        return [f"{at}: url {_without_query(url)!r} is outside the registered origins ({listing})"]
    return []


@dataclass(frozen=True, kw_only=True)
class BrowserConfig:
    """A browser agent's registration: validated on construction; raises `AgentConfigInvalid` listing every problem."""

    name: str
    origins: tuple[str, ...]
    capabilities: Mapping[str, Recipe]
    login: LoginRecipe | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    headless: bool = True
    chromium_path: str | None = None
    """Where Chromium is; by default `COS_CHROMIUM_PATH`, then /usr/bin/chromium, then `chromium` on the PATH."""
    credentials: Credentials = field(default_factory=Credentials, repr=False)
    identity_providers: tuple[str, ...] = ()
    """Origins signing in may pass through (an SSO hop to an identity provider), `https://*.okta.com` for any
    subdomain; never a recipe's `goto`, and every other origin stays refused."""

    def __post_init__(self) -> None:
        origins, problems = _origins_and_problems(self.origins)
        providers, provider_problems = _providers_and_problems(self.identity_providers)
        problems += provider_problems
        problems += _config_problems(
            name=self.name,
            origins=origins,
            timeouts=self.timeouts,
            recipes={name: (recipe.steps, recipe.output) for name, recipe in self.capabilities.items()},
            login=(
                (self.login.signed_out_selector, self.login.steps, self.login.signed_in_selector)
                if self.login is not None
                else None
            ),
            credentials=self.credentials,
        )
        if problems:
            raise AgentConfigInvalid(problems)
        object.__setattr__(self, "origins", tuple(str(origin) for origin in origins))
        object.__setattr__(self, "identity_providers", tuple(str(provider) for provider in providers))

    @property
    def allowed_origins(self) -> frozenset[str]:
        return frozenset(self.origins)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, name: str | None = None) -> BrowserConfig:
        """A config from its JSON form (`name` may come apart); raises `AgentConfigInvalid` listing every problem."""
        problems: list[str] = []
        known = (
            "name",
            "origins",
            "identity_providers",
            "capabilities",
            "login",
            "timeouts",
            "headless",
            "chromium_path",
            "credentials",
        )
        problems += [f"unknown field {key!r}{_did_you_mean(str(key), known)}" for key in data if key not in known]
        if name is None:
            name = data.get("name")
        if not isinstance(name, str):
            problems.append("name: missing (a short name like acme-marketing)")
            name = ""
        raw_origins = data.get("origins")
        if not isinstance(raw_origins, list) or not all(isinstance(origin, str) for origin in raw_origins):
            problems.append("origins: must be a list like ['https://app.vendor.example']")
            raw_origins = []
        raw_providers = data.get("identity_providers", [])
        if not isinstance(raw_providers, list) or not all(isinstance(item, str) for item in raw_providers):
            problems.append("identity_providers: must be a list like ['https://login.microsoftonline.com']")
            raw_providers = []
        credentials = _parse_credentials(data.get("credentials"), problems)
        timeouts = _parse_timeouts(data.get("timeouts"), problems)
        login = _parse_login(data.get("login"), problems)
        drafts = _parse_capabilities(data.get("capabilities"), problems)
        headless = data.get("headless", True)
        if not isinstance(headless, bool):
            problems.append("headless: must be true or false")
            headless = True
        chromium_path = data.get("chromium_path")
        if chromium_path is not None and not isinstance(chromium_path, str):
            problems.append("chromium_path: must be a path to a Chromium executable")
            chromium_path = None
        if problems:
            # Some parts could not be read: report what is wrong with the rest too, so one round of fixes is enough.
            origins, origin_problems = _origins_and_problems(raw_origins)
            problems += (
                origin_problems
                + _providers_and_problems(raw_providers)[1]
                + _config_problems(
                    name=name,
                    origins=origins,
                    timeouts=timeouts,
                    recipes={key: (steps, output) for key, (steps, _, output) in drafts.items()},
                    login=login,
                    credentials=credentials,
                )
            )
            raise AgentConfigInvalid(problems)
        return cls(
            name=name,
            origins=tuple(raw_origins),
            identity_providers=tuple(raw_providers),
            capabilities={
                key: Recipe(steps=_complete(steps), description=description, output=output)
                for key, (steps, description, output) in drafts.items()
            },
            login=LoginRecipe(signed_out_selector=login[0], steps=_complete(login[1]), signed_in_selector=login[2])
            if login is not None
            else None,
            timeouts=timeouts,
            headless=headless,
            chromium_path=chromium_path,
            credentials=credentials,
        )

    def to_dict(self, *, with_secrets: bool = False) -> dict[str, Any]:
        """The JSON form, without `name`; the credentials only when asked (to encrypt them with the vault)."""
        data: dict[str, Any] = {
            "origins": list(self.origins),
            **({"identity_providers": list(self.identity_providers)} if self.identity_providers else {}),
            "capabilities": {
                name: {
                    "description": recipe.description,
                    "steps": [_step_to_dict(step) for step in recipe.steps],
                    **({"output": recipe.output} if recipe.output is not None else {}),
                }
                for name, recipe in self.capabilities.items()
            },
            "timeouts": {
                "step_seconds": self.timeouts.step_seconds,
                "navigation_seconds": self.timeouts.navigation_seconds,
                "code_answer_seconds": self.timeouts.code_answer_seconds,
                "launch_seconds": self.timeouts.launch_seconds,
            },
            "headless": self.headless,
            "chromium_path": self.chromium_path,
        }
        if self.login is not None:
            data["login"] = {
                "signed_out_selector": self.login.signed_out_selector,
                "steps": [_step_to_dict(step) for step in self.login.steps],
            }
            if self.login.signed_in_selector is not None:
                data["login"]["signed_in_selector"] = self.login.signed_in_selector
        if with_secrets:
            data["credentials"] = self.credentials.to_dict()
        return data


def _origins_and_problems(raw: Sequence[str]) -> tuple[list[_Origin], list[str]]:
    origins: list[_Origin] = []
    problems: list[str] = []
    if not raw:
        problems.append("origins: register at least one origin the agent may visit")
    for number, text in enumerate(raw, start=1):
        origin, problem = _parse_origin(text)
        if origin is None:
            problems.append(f"origins #{number} {text!r} {problem}")
        elif origin not in origins:
            origins.append(origin)
    return origins, problems


def _providers_and_problems(raw: Sequence[str]) -> tuple[list[_IdentityProvider], list[str]]:
    providers: list[_IdentityProvider] = []
    problems: list[str] = []
    for number, text in enumerate(raw, start=1):
        provider, problem = _parse_identity_provider(text)
        if provider is None:
            problems.append(f"identity_providers #{number} {text!r} {problem}")
        elif provider not in providers:
            providers.append(provider)
    return providers, problems


def _config_problems(
    *,
    name: str,
    origins: list[_Origin],
    timeouts: Timeouts,
    recipes: Mapping[str, tuple[Sequence[Step | None], str | None]],
    login: tuple[str, Sequence[Step | None], str | None] | None,
    credentials: Credentials,
) -> list[str]:
    problems: list[str] = []
    if not name.strip() or any(character.isspace() for character in name):
        problems.append("name: must be a short name without spaces, like acme-marketing")
    for attribute in ("step_seconds", "navigation_seconds", "code_answer_seconds", "launch_seconds"):
        value = getattr(timeouts, attribute)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            problems.append(f"timeouts.{attribute}: must be a positive number of seconds")
    if not recipes:
        problems.append("capabilities: give at least one recipe, e.g. create_campaign_brief")
    for capability, (steps, output) in recipes.items():
        where = f"capability {capability!r}"
        if not _CAPABILITY_NAME.match(capability):
            problems.append(f"{where}: name must be lower_snake_case")
        problems += _recipe_problems(where, steps, origins=origins, credentials=credentials, login=False)
        if output is not None:
            problems += [f"{where}: output {problem}" for problem in _template_problems(output)]
            known = set(_extracted_fields(steps)) | set(_input_fields(steps))
            for placeholder in _placeholders(output):
                if placeholder not in known:
                    problems.append(f"{where}: output uses {{{placeholder}}}, which no step extracts or takes as input")
    if login is not None:
        signed_out_selector, login_steps, signed_in_selector = login
        if not signed_out_selector.strip():
            problems.append("login: signed_out_selector must say which element shows the sign-in form")
        if signed_in_selector is not None and not signed_in_selector.strip():
            problems.append("login: signed_in_selector, when given, must say which element shows once signed in")
        problems += _recipe_problems("login", login_steps, origins=origins, credentials=credentials, login=True)
    return problems


def _complete(steps: Sequence[Step | None]) -> tuple[Step, ...]:
    return tuple(step for step in steps if step is not None)


def _parse_credentials(raw: object, problems: list[str]) -> Credentials:
    if raw is None:
        return Credentials()
    if not isinstance(raw, Mapping) or not all(
        isinstance(key, str) and _IDENTIFIER.match(key) and isinstance(value, str) for key, value in raw.items()
    ):
        problems.append("credentials: must map names (like username, password) to strings")
        return Credentials()
    return Credentials(raw)


def _parse_timeouts(raw: object, problems: list[str]) -> Timeouts:
    if raw is None:
        return Timeouts()
    if not isinstance(raw, Mapping):
        problems.append("timeouts: must be an object like {'step_seconds': 15}")
        return Timeouts()
    known = ("step_seconds", "navigation_seconds", "code_answer_seconds", "launch_seconds")
    values: dict[str, float] = {}
    for key, value in raw.items():
        if key not in known:
            problems.append(f"timeouts: unknown field {key!r}{_did_you_mean(str(key), known)}")
        elif isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            problems.append(f"timeouts.{key}: must be a positive number of seconds")
        else:
            values[key] = float(value)
    return Timeouts(**values)


def _parse_steps(raw: object, where: str, problems: list[str]) -> list[Step | None]:
    """The steps, with None in place of each step that could not be read (so later problems keep their numbers)."""
    if not isinstance(raw, list):
        problems.append(f"{where}: steps must be a list of steps")
        return []
    return [_parse_step(item, f"{where}, step {number}", problems) for number, item in enumerate(raw, start=1)]


def _parse_login(raw: object, problems: list[str]) -> tuple[str, list[Step | None], str | None] | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        problems.append("login: must be an object with signed_out_selector and steps")
        return None
    known = ("signed_out_selector", "signed_in_selector", "steps")
    for key in raw:
        if key not in known:
            problems.append(f"login: unknown field {key!r}{_did_you_mean(str(key), known)}")
    selector = raw.get("signed_out_selector")
    if not isinstance(selector, str):
        problems.append("login: missing 'signed_out_selector' (an element shown only when signed out)")
        selector = ""
    signed_in = raw.get("signed_in_selector")
    if signed_in is not None and not isinstance(signed_in, str):
        problems.append("login: signed_in_selector must be a selector (an element shown only when signed in)")
        signed_in = None
    return selector, _parse_steps(raw.get("steps"), "login", problems), signed_in


def _parse_capabilities(raw: object, problems: list[str]) -> dict[str, tuple[list[Step | None], str, str | None]]:
    """Each capability's (steps, description, output)."""
    if not isinstance(raw, Mapping):
        problems.append("capabilities: must map capability names to recipes")
        return {}
    recipes: dict[str, tuple[list[Step | None], str, str | None]] = {}
    for name, body in raw.items():
        where = f"capability {name!r}"
        if not isinstance(body, Mapping):
            problems.append(f"{where}: must be an object with description and steps")
            continue
        for key in body:
            if key not in ("description", "steps", "output"):
                hint = _did_you_mean(str(key), ("description", "steps", "output"))
                problems.append(f"{where}: unknown field {key!r}{hint}")
        description = body.get("description", "")
        output = body.get("output")
        if not isinstance(description, str):
            problems.append(f"{where}: description must be a string")
            description = ""
        if output is not None and not isinstance(output, str):
            problems.append(f"{where}: output must be a template string like 'Brief {{brief_id}} created'")
            output = None
        recipes[str(name)] = (_parse_steps(body.get("steps"), where, problems), description, output)
    return recipes


def chromium_executable(configured: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """Which Chromium to launch: configured, `COS_CHROMIUM_PATH`, Debian's, on the PATH, else Playwright's own."""
    environ = os.environ if environ is None else environ
    if configured:
        return configured
    if environ.get(CHROMIUM_PATH_ENV, "").strip():
        return environ[CHROMIUM_PATH_ENV].strip()
    if os.path.exists(DEFAULT_CHROMIUM):
        return DEFAULT_CHROMIUM
    return shutil.which("chromium")


# Sessions ----------------------------------------------------------------------------------------------------------


class StorageStateStore(Protocol):
    """Where a browser agent keeps its signed-in session between delegations, as bytes encrypted by the vault."""

    async def load_state(self) -> bytes | None:
        """The saved (encrypted) session, or None when there is none."""
        ...

    async def save_state(self, state: bytes) -> None:
        """Keep `state` (encrypted) in place of the previous session."""
        ...


class MemoryStorageStateStore:
    """A storage-state store in memory: for tests and single-process runs."""

    def __init__(self, state: bytes | None = None) -> None:
        self.state = state
        self.saves = 0

    async def load_state(self) -> bytes | None:
        """The saved session, if any."""
        return self.state

    async def save_state(self, state: bytes) -> None:
        """Replace the saved session."""
        self.state = state
        self.saves += 1


# The origin guard --------------------------------------------------------------------------------------------------


class _OriginGuard:
    """Aborts requests to unregistered origins and remembers what the page tried."""

    def __init__(
        self, origins: frozenset[_Origin], providers: Sequence[_IdentityProvider] = (), egress: Egress | None = None
    ) -> None:
        self._origins = origins
        self._providers = tuple(providers)
        self._egress = egress if egress is not None else Egress()
        self.page: Page | None = None
        """The delegation's page: its main frame leaving the origins fails the delegation (a popup's does not)."""
        self.blocked: list[str] = []
        self.escaped: str | None = None
        """The first navigation or redirect towards an unregistered origin: it fails the delegation."""
        self.read_only = False
        """A dry run outside signing in: requests that could change something (not GET, HEAD, OPTIONS) are aborted."""

    def allows(self, url: str) -> bool:
        origin = _origin_of(url)
        if origin is None:
            return False
        return origin in self._origins or any(provider.matches(origin) for provider in self._providers)

    async def _reachable(self, url: str) -> bool:
        """A host under a wildcard identity provider is resolved by Chromium itself: check where it leads first."""
        origin = _origin_of(url)
        if origin is None or origin in self._origins:
            return True
        if not any(provider.wildcard and provider.matches(origin) for provider in self._providers):
            return True  # an exact provider's host is pinned in Chromium's resolver like an origin's
        try:
            await self._egress.address_for(origin.host, origin.port)
        except (AddressRefused, HostNotFound) as error:
            logger.warning("browser: refused %s: %s", origin, error)
            return False
        return True

    def _note_escape(self, url: str) -> None:
        if self.escaped is None:
            self.escaped = url

    async def route(self, route: Route, request: Request) -> None:
        try:
            if self.read_only and request.method not in ("GET", "HEAD", "OPTIONS"):
                self.blocked.append(f"{request.method} {request.url} (a dry run)")
                await route.abort("blockedbyclient")
                return
            if self.allows(request.url) and await self._reachable(request.url):
                await route.continue_()
                return
            self.blocked.append(request.url)
            if request.is_navigation_request() and self._in_main_frame(request):
                self._note_escape(request.url)
            await route.abort("blockedbyclient")
        except PlaywrightError:
            # The context closed while the request was in flight: nothing is left to guard.
            return

    def _in_main_frame(self, request: Request) -> bool:
        try:
            frame = request.frame
        except PlaywrightError:
            # Requests from service workers have no frame; service workers are blocked anyway.
            return False
        return self.page is not None and frame is self.page.main_frame

    def on_request(self, request: Request) -> None:
        # Playwright does not route redirects; their hop shows here, and the host-resolver rule keeps it unresolved.
        if request.redirected_from is not None and not self.allows(request.url):
            self.blocked.append(request.url)
            self._note_escape(request.url)

    async def websocket(self, websocket: WebSocketRoute) -> None:
        try:
            if self.allows(websocket.url):
                websocket.connect_to_server()
            else:
                self.blocked.append(websocket.url)
                await websocket.close(code=1008, reason="origin not registered")
        except PlaywrightError:
            return


# Chromium ----------------------------------------------------------------------------------------------------------


class Chromium:
    """One Chromium process (with its Playwright driver), started on first use and again if it dies.

    Only `hosts` resolve in it: every other name, and every other IP address, is made unresolvable, which is what
    stops a redirect (Playwright does not route redirects) from reaching another host. A browser agent starts its
    own, resolving only its origins' hosts; agents that share one are kept apart by their routes only.
    """

    def __init__(
        self,
        *,
        hosts: Iterable[str],
        executable_path: str | None = None,
        headless: bool = True,
        launch_seconds: float = 30.0,
        egress: Egress | None = None,
        host_patterns: Iterable[str] = (),
    ) -> None:
        """`egress`: the addresses the hosts may resolve to (by default public ones only); `host_patterns`: names
        like `*.okta.com` Chromium resolves itself (identity providers' subdomains; checked by the route first)."""
        self.hosts = frozenset(host.lower() for host in hosts)
        self.host_patterns = frozenset(pattern.lower() for pattern in host_patterns)
        self.executable_path = executable_path if executable_path is not None else chromium_executable(None)
        self.headless = headless
        self.launch_seconds = launch_seconds
        self.egress = egress if egress is not None else Egress()
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"Chromium(executable_path={self.executable_path!r}, hosts={sorted(self.hosts)!r})"

    async def browser(self, *, for_agent: str) -> Browser:
        """The running browser, started if need be.

        Raises:
            AgentUnavailable: Chromium could not start (the message says how to install or point to it).
        """
        async with self._lock:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            await self._shutdown()
            rule = await self._resolver_rule(for_agent)
            try:
                self._playwright = await async_playwright().start()
                self._browser = await self._playwright.chromium.launch(
                    executable_path=self.executable_path,
                    headless=self.headless,
                    args=[f"--host-resolver-rules={rule}", "--force-webrtc-ip-handling-policy=disable_non_proxied_udp"],
                    env={name: os.environ[name] for name in INHERITED_VARIABLES if name in os.environ},
                    timeout=self.launch_seconds * 1000,
                )
            except PlaywrightError as error:
                await self._shutdown()
                logger.warning("Chromium did not start for %r: %s", for_agent, error)
                where = self.executable_path or "Playwright's own download"
                raise AgentNotReached(
                    for_agent,
                    f"Chromium could not start from {where} ({_first_line(error)}); "
                    f"install it (apt-get install chromium) or set {CHROMIUM_PATH_ENV}",
                ) from None
            return self._browser

    async def _resolver_rule(self, for_agent: str) -> str:
        """Chromium's host-resolver rule: each host pinned to its checked address, every other name unresolvable.

        Raises:
            AgentUnavailable: a host is, or resolves to, an address adapters may not reach, or does not resolve.
        """
        try:
            pinned = await self.egress.pinned(sorted(self.hosts))
        except (AddressRefused, HostNotFound) as error:
            logger.warning("browser agent %r: not starting Chromium: %s", for_agent, error)
            raise AgentUnavailable(for_agent, UNREACHABLE) from None
        maps = "".join(
            f"MAP {host} {f'[{address}]' if ':' in address else address} , "
            for host, address in pinned.items()
            if parse_address(host) is None
        )
        literals = "".join(f" , EXCLUDE {host}" for host in pinned if parse_address(host) is not None)
        patterns = "".join(f" , EXCLUDE {pattern}" for pattern in sorted(self.host_patterns))
        return f"{maps}MAP * ~NOTFOUND{literals}{patterns}"

    async def close(self) -> None:
        """Close the browser and stop Playwright."""
        async with self._lock:
            await self._shutdown()

    async def _shutdown(self) -> None:
        browser, playwright = self._browser, self._playwright
        self._browser = self._playwright = None
        if browser is not None:
            with contextlib.suppress(PlaywrightError):
                await browser.close()
        if playwright is not None:
            with contextlib.suppress(PlaywrightError):
                await playwright.stop()


# Running a recipe --------------------------------------------------------------------------------------------------


class _Rehearsed(Exception):
    """A dry run reached a step that could change something at the vendor (`at`), and stops there."""

    def __init__(self, at: str) -> None:
        self.at = at
        super().__init__(at)


class _Failed(Exception):
    """The delegation fails (the recipe or a person needs attention); `reason` is shown to the task's owner."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _read_at_most(path: str | os.PathLike[str], limit: int) -> bytes | None:
    """The file's bytes, or None when it holds more than `limit`."""
    with open(path, "rb") as file:
        content = file.read(limit + 1)
    return content if len(content) <= limit else None


def _locate(page: Page | FrameLocator, selector: str) -> Locator:
    kind, separator, text = selector.partition("=")
    if separator and kind == "label":
        return page.get_by_label(_unquote(text))
    if separator and kind == "placeholder":
        return page.get_by_placeholder(_unquote(text))
    return page.locator(selector)


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


_SUBMITTING = (Click, Press, Select, Upload, Download)
"""Steps that may change something at the vendor (typing alone does not)."""


def _selector_of(step: Step) -> str | None:
    """The element a step acts on or waits for in the page itself, if any."""
    if getattr(step, "frame", None) is not None:
        return None
    if isinstance(step, Fill | Click | ExtractText | ExpectCode | Select | Hover):
        return step.selector
    if isinstance(step, Press):
        return step.selector
    if isinstance(step, WaitFor):
        return step.selector
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


class _Run:
    """One delegation in one browser context: runs steps, signs in when asked, keeps evidence."""

    def __init__(
        self,
        agent: BrowserAgent,
        context: BrowserContext,
        page: Page,
        guard: _OriginGuard,
        *,
        human: HumanChannel | None,
        deadline: asyncio.Timeout,
        rehearsal: bool = False,
    ) -> None:
        self.agent = agent
        self.rehearsal = rehearsal
        """A dry run: stop before the first step that could change something, and let only GETs leave meanwhile."""
        guard.read_only = rehearsal
        self.config = agent.config
        self.context = context
        self.page = page
        self.guard = guard
        self.human = human
        self.deadline = deadline
        self.data: dict[str, str] = {}
        self.evidence: list[Evidence] = []
        self.signed_in = False
        self.signing_in = False
        self.sign_ins_seen = 0
        """The agent's `sign_ins` when this run's context was seeded with the saved session."""
        self.next_selector: str | None = None
        """What the step after the running one looks for: signing in waits for it or for the sign-in form."""
        self.server_error: str | None = None
        """The page itself answered 5xx: the site is failing."""
        self.background_error: str | None = None
        """A request the page made in the background (XHR, fetch, a script) answered 5xx, or the page crashed: when a
        step then fails, the vendor is failing, not the recipe."""
        self.submitted = False
        """The recipe may have changed something at the vendor: it clicked, pressed, picked or uploaded something, or
        the page sent anything but a GET. Until then a failure provably did nothing, and the run may be made again."""
        self.steps: list[str] = []
        """The recipe's steps done, as reported to the person following the delegation (kinds, never values)."""
        self.secrets: list[str] = []
        self.filled: list[tuple[str | None, str]] = []
        """(frame, selector) of each field the run typed into: masked in screenshots."""
        page.on("response", self._on_response)
        page.on("request", self._on_request)
        page.on("crash", self._on_crash)

    def _on_response(self, response: Response) -> None:
        if response.status < 500 or not self.guard.allows(response.url):
            return
        try:
            main = response.request.is_navigation_request() and response.frame is self.page.main_frame
        except PlaywrightError:
            return
        failure = f"{_without_query(response.url)} answered {response.status}"
        if main and self.server_error is None:
            self.server_error = failure
        elif not main and self.background_error is None:
            self.background_error = failure

    def _on_request(self, request: Request) -> None:
        if request.method not in ("GET", "HEAD", "OPTIONS") and not self.signing_in and self.guard.allows(request.url):
            self.submitted = True

    def _on_crash(self, page: Page) -> None:
        if self.background_error is None:
            self.background_error = "the page crashed"

    def unavailable(self, reason: str) -> AgentUnavailable:
        """The vendor failed: the run may be made again only if it provably did nothing there yet."""
        if self.submitted:
            return AgentUnavailable(self.agent.name, f"{reason} (after the recipe submitted something: check the site)")
        return AgentNotReached(self.agent.name, f"{reason} (before the recipe submitted anything)")

    def redact(self, text: str) -> str:
        text = self.config.credentials.redact(text)
        for secret in self.secrets:
            text = text.replace(secret, "•••")
        return text

    @property
    def _masks(self) -> list[Locator]:
        """What screenshots hide: the sign-in form's fields, and every field this run filled."""
        login = self.config.login.steps if self.config.login else ()
        fields = [(None, step.selector) for step in login if isinstance(step, Fill | ExpectCode)]
        return [self.locate(selector, frame) for frame, selector in dict.fromkeys(fields + self.filled)]

    async def screenshot(self, description: str, *, full_page: bool = False) -> None:
        png = await self.page.screenshot(
            type="png",
            full_page=full_page,
            mask=self._masks,
            timeout=self.config.timeouts.step_seconds * 1000,
        )
        self.evidence.append(
            Evidence(kind="screenshot", media_type="image/png", content=png, description=self.redact(description))
        )

    async def screenshot_on_failure(self, reason: str) -> None:
        with contextlib.suppress(PlaywrightError):
            await self.screenshot(f"the page when the delegation failed: {reason}")

    async def final_screenshot(self, description: str) -> None:
        # The work is done: a page that cannot be photographed should not turn it into a failure.
        try:
            await self.screenshot(description)
        except PlaywrightError as error:
            logger.warning("browser agent %r: no final screenshot (%s)", self.agent.name, _first_line(error))

    def check(self) -> None:
        """Stop if the page left the registered origins, the site failed, or the browser shows an error page."""
        if self.guard.escaped is not None:
            raise _Failed(
                f"the page tried to leave the registered origins for {_without_query(self.guard.escaped)}; "
                "the delegation stopped (register that origin if the vendor really uses it)"
            )
        if self.server_error is not None:
            raise self.unavailable(f"{self.server_error}: the site is failing")
        url = self.page.url
        if url.startswith("chrome-error://"):
            raise self.unavailable("a page failed to load: the site may be down")
        if url != "about:blank" and not self.guard.allows(url):
            self.guard.escaped = url
            self.check()

    def locate(self, selector: str, frame: str | None = None) -> Locator:
        """The elements `selector` finds (in the iframe at `frame`, if given): CSS or XPath, Playwright's `role=` and
        `text=` engines, or `label=`/`placeholder=` (an input by its label or placeholder text, as `get_by_label` and
        `get_by_placeholder` find them)."""
        return _locate(self.page.frame_locator(frame) if frame is not None else self.page, selector)

    async def run(self, steps: Sequence[Step], values: Mapping[str, str], where: str) -> None:
        for number, step in enumerate(steps, start=1):
            at = f"{where}step {number} ({_describe(step)})"
            logger.debug("browser agent %r: %s", self.agent.name, at)
            self.next_selector = _selector_of(steps[number]) if number < len(steps) else None
            if not self.signing_in and isinstance(step, _SUBMITTING):
                if self.rehearsal:
                    await self._rehearse_up_to(step, at)
                self.submitted = True
            try:
                await self._step(step, values, at)
            except PlaywrightTimeoutError:
                self.check()
                if isinstance(step, Goto):
                    raise self.unavailable(
                        f"{at} did not load within {self.config.timeouts.navigation_seconds:g} s: "
                        "the site may be down or slow"
                    ) from None
                self._vendor_failing(at)
                raise _Failed(
                    f"{at} found nothing within {self.config.timeouts.step_seconds:g} s: "
                    "the page may have changed; check the recipe against the site"
                ) from None
            except PlaywrightError as error:
                self.check()
                message = _first_line(error)
                network = _NET_ERROR.search(message)
                if network:
                    # Refused, timed out and unresolvable read the same: the words must not map the network.
                    logger.info("browser agent %r: %s could not load the page (%s)", self.agent.name, at, network[1])
                    raise self.unavailable(f"{at}: {UNREACHABLE}") from None
                if "closed" in message.lower() or "crash" in message.lower():
                    raise self.unavailable(f"the browser closed during {at}") from None
                self._vendor_failing(at)
                raise _Failed(f"{at} failed: {self.redact(message)}") from None
            except _Failed:
                self._vendor_failing(at)
                raise
            self.check()
            if not where:  # the recipe's own steps; signing in happens within one of them
                await self.progressed(f"step {number} of {len(steps)}: {STEP_WORDS.get(step.kind, step.kind)}")

    async def progressed(self, step: str) -> None:
        """A recipe step done: kept for the result and told to whoever follows the delegation. Only the step's number
        and kind: a selector or a value typed may be a secret, or what the person should not see."""
        self.steps.append(step)
        del self.steps[:-_MOST_STEPS]
        if self.human is not None:
            await self.human.progressed(step)

    async def _rehearse_up_to(self, step: Step, at: str) -> None:
        """End the dry run before `step`, once its element is found (raises _Rehearsed, or what a step raises)."""
        selector = getattr(step, "selector", None)
        if selector is not None:
            try:
                await self.locate(selector, getattr(step, "frame", None)).first.wait_for(state="visible")
            except PlaywrightTimeoutError:
                raise _Failed(
                    f"{at} found nothing within {self.config.timeouts.step_seconds:g} s: "
                    "the page may have changed; check the recipe against the site"
                ) from None
        raise _Rehearsed(at)

    def _vendor_failing(self, at: str) -> None:
        """A step failed after the vendor failed in the background: that is why, not the recipe or the person."""
        if self.background_error is not None and self.guard.escaped is None:
            raise self.unavailable(f"{at} failed after {self.background_error}: the site is failing")

    async def _step(self, step: Step, values: Mapping[str, str], at: str) -> None:
        page = self.page
        if isinstance(step, Goto):
            await self._goto(_render(step.url, values, for_url=True), at)
        elif isinstance(step, Fill):
            self.filled.append((step.frame, step.selector))
            await self.locate(step.selector, step.frame).first.fill(_render(step.value, values))
        elif isinstance(step, Click):
            await self.locate(step.selector, step.frame).first.click()
        elif isinstance(step, WaitFor):
            if step.selector is not None:
                await self.locate(step.selector, step.frame).first.wait_for(state="visible")
            elif step.url is not None:
                await page.wait_for_url(step.url)
        elif isinstance(step, ExtractText):
            # Visible means drawn with some text: a page that fills the element in later is waited for.
            element = self.locate(step.selector, step.frame).first
            await element.wait_for(state="visible")
            self.data[step.field] = (await element.inner_text()).strip()
        elif isinstance(step, Screenshot):
            await self.screenshot(step.description or at, full_page=step.full_page)
        elif isinstance(step, ExpectCode):
            await self._expect_code(step, at)
        elif isinstance(step, Press):
            if step.selector is not None:
                await self.locate(step.selector, step.frame).first.press(step.key)
            else:
                await page.keyboard.press(step.key)
        elif isinstance(step, Select):
            await self.locate(step.selector, step.frame).first.select_option(_render(step.value, values))
        elif isinstance(step, Hover):
            await self.locate(step.selector, step.frame).first.hover()
        elif isinstance(step, Upload):
            payload = {
                "name": _render(step.name, values),
                "mimeType": step.media_type,
                "buffer": _render(step.content, values).encode(),
            }
            await self.locate(step.selector, step.frame).first.set_input_files(payload)  # type: ignore[arg-type]
        elif isinstance(step, Download):
            await self._download(step, at)

    async def _download(self, step: Download, at: str) -> None:
        async with self.page.expect_download() as started:
            await self.locate(step.selector, step.frame).first.click()
        download = await started.value
        try:
            content = await asyncio.to_thread(_read_at_most, await download.path(), MAX_DOWNLOAD_BYTES)
        finally:
            await download.delete()
        if content is None:
            raise _Failed(f"{at}: the file is larger than the {MAX_DOWNLOAD_BYTES} bytes a delegation keeps")
        name = download.suggested_filename
        self.evidence.append(
            Evidence(
                kind="file",
                media_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
                content=content,
                description=self.redact(step.description or name),
            )
        )

    async def _goto(self, url: str, at: str) -> None:
        if not self.guard.allows(url):
            self.guard.escaped = url
            self.check()
        expected = self.next_selector  # signing in runs steps of its own
        await self._load(url, at)
        if self.config.login is None or self.signing_in or not await self._signed_out(expected):
            return
        if self.signed_in:
            raise _Failed(
                f"{at}: the site asks to sign in again right after signing in; "
                "check the credentials and the login recipe's signed_out_selector"
            )
        if await self.sign_in():
            await self._load(url, at)
            if not await self._signed_out(expected):
                return
            await self.sign_in(take_newer=False)  # the session it took did not hold
        await self._load(url, at)
        if await self._signed_out(expected):
            raise _Failed(f"{at}: the site still shows the sign-in form after signing in; check the credentials")

    async def _load(self, url: str, at: str) -> None:
        response = await self.page.goto(url, timeout=self.config.timeouts.navigation_seconds * 1000)
        self.check()
        if response is not None and 400 <= response.status < 500:
            raise _Failed(f"{at}: {_without_query(url)} answered {response.status}; check the recipe's address")

    async def _signed_out(self, expected: str | None) -> bool:
        """Whether the page shows the sign-in form, waiting for a page that draws itself late (a single-page app).

        It waits for whichever shows first: the sign-in form, the login recipe's `signed_in_selector`, or `expected`
        (what the recipe's next step looks for). With neither of the last two, it waits for the network to settle.
        """
        login = self.config.login
        if login is None:
            return False
        signed_out = self.locate(login.signed_out_selector).first
        others = [selector for selector in (login.signed_in_selector, expected) if selector is not None]
        if others:
            either = self.locate(login.signed_out_selector)
            for selector in others:
                either = either.or_(self.locate(selector))
            try:
                await either.first.wait_for(state="visible")
            except PlaywrightTimeoutError:
                return False  # neither shows: the next step says what it did not find
            return await signed_out.is_visible()
        with contextlib.suppress(PlaywrightTimeoutError):
            await self.page.wait_for_load_state("networkidle")
        return await signed_out.is_visible()

    async def sign_in(self, *, take_newer: bool = True) -> bool:
        """Run the login recipe, then keep the new session (encrypted); one delegation of the agent at a time. One
        that waited while another signed in takes the session that one kept instead (`take_newer`): True then."""
        async with self.agent._sign_in_lock:
            if take_newer and await self._took_newer_session():
                return True
            await self._sign_in()
            self.agent.sign_ins += 1
            return False

    async def _took_newer_session(self) -> bool:
        """Put the cookies of a session kept since this run began in its context; whether there was one."""
        if self.agent.sign_ins == self.sign_ins_seen:
            return False
        self.sign_ins_seen = self.agent.sign_ins
        state = await self.agent._load_session()
        cookies = state.get("cookies") if state is not None else None
        if not cookies or not isinstance(cookies, list):
            return False
        await self.context.add_cookies(cookies)
        return True

    async def _sign_in(self) -> None:
        assert self.config.login is not None
        logger.info("browser agent %r: signing in", self.agent.name)
        values = {
            f"{_CREDENTIAL_PREFIX}{name}": self.config.credentials.get(name) or ""
            for name in self.config.credentials.names()
        }
        self.signing_in = True
        self.guard.read_only = False
        try:
            await self.run(self.config.login.steps, values, "signing in, ")
        finally:
            self.signing_in = False
            self.guard.read_only = self.rehearsal
        if await self._signed_out(None):
            raise _Failed("signing in did not work: the sign-in form is still shown; check the username and password")
        self.signed_in = True
        await self.agent.save_session(self.context)

    async def _expect_code(self, step: ExpectCode, at: str) -> None:
        page = self.page
        code_field = self.locate(step.selector).first
        if step.unless is not None:
            await self.locate(step.selector).or_(self.locate(step.unless)).first.wait_for(state="visible")
            if not await code_field.is_visible():
                return
        else:
            await code_field.wait_for(state="visible")
        question = step.question or DEFAULT_CODE_QUESTION.format(agent=self.agent.name)
        answer = await self._ask(question, at)
        code = code_answer(answer) or "".join(answer.split())
        self.secrets.append(code)
        await code_field.fill(code)
        if step.submit is not None:
            await self.locate(step.submit).first.click()
        else:
            await code_field.press("Enter")
        try:
            # A refused code comes back as the same form: once the answer page's DOM is in, the field must go.
            await page.wait_for_load_state("domcontentloaded")
            await code_field.wait_for(state="hidden")
        except PlaywrightTimeoutError:
            raise _Failed(f"{at}: the site did not accept the code; delegate again to get a new one") from None

    async def _ask(self, question: str, at: str) -> str:
        seconds = self.config.timeouts.code_answer_seconds
        if self.human is None:
            raise _Failed(
                f"{at}: the site asks for a sign-in code, but no person can be asked; "
                "delegate from a chat so the bot can relay the question"
            )
        # Waiting for a person is not the vendor's slowness: that time does not count against the request's timeout.
        loop = asyncio.get_running_loop()
        planned = self.deadline.when()
        asked_at = loop.time()
        if planned is not None:
            self.deadline.reschedule(planned + seconds + 1)
        try:
            async with asyncio.timeout(seconds):
                answer = await self.human.ask(question, timeout_seconds=seconds)
        except (AgentTimeout, TimeoutError):
            raise _Failed(
                f"{at}: nobody answered the sign-in code question within {seconds:g} s (timed out); "
                "delegate again when someone can answer"
            ) from None
        except QuestionCancelled:
            raise _Failed(
                f"{at}: cancelled by the person asked for the sign-in code; the delegation stopped there"
            ) from None
        finally:
            if planned is not None:
                self.deadline.reschedule(planned + (loop.time() - asked_at))
        if not answer.strip():
            raise _Failed(f"{at}: the answer to the sign-in code question was empty")
        return answer


# The agent ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Outcome:
    status: DelegationStatus
    output: str = ""
    data: dict[str, Any] | None = None
    evidence: tuple[Evidence, ...] = ()
    error: str | None = None
    progress: tuple[str, ...] = ()


class BrowserAgent(Agent):
    """A vendor agent with only a web UI, driven by Chromium through `config`'s recipes.

    Delegations run at once, each in a browser context of its own (in the agent's one Chromium) seeded with the
    saved session; signing in is one at a time (one account, one session): a delegation that finds itself signed out
    while another signs in waits, then takes the session that one kept instead of signing in (and asking a person for
    a code) again. Without `chromium`, the agent starts its own on first use (from the config's `chromium_path` and
    `headless`) and closes it in `close()`; a shared `chromium` is the caller's to close, and must resolve the
    agent's hosts.
    """

    kind = "browser"

    def __init__(
        self,
        config: BrowserConfig,
        *,
        vault: Vault,
        sessions: StorageStateStore | None = None,
        chromium: Chromium | None = None,
        clock: Callable[[], datetime] = _now,
        egress: Egress | None = None,
    ) -> None:
        """`egress`: the addresses its own Chromium may reach (by default public ones only)."""
        self.config = config
        self.name = config.name
        self._vault = vault
        self._sessions: StorageStateStore = sessions if sessions is not None else MemoryStorageStateStore()
        self._clock = clock
        self._origins = frozenset(origin for text in config.origins if (origin := _origin_of(text)) is not None)
        self._providers = _providers_and_problems(config.identity_providers)[0]
        hosts = {origin.host for origin in self._origins}
        hosts |= {provider.host for provider in self._providers if not provider.wildcard}
        patterns = {provider.pattern for provider in self._providers if provider.wildcard}
        if chromium is not None and not (hosts <= chromium.hosts and patterns <= chromium.host_patterns):
            missing = ", ".join(sorted((hosts - chromium.hosts) | (patterns - chromium.host_patterns)))
            raise AgentConfigInvalid([f"the shared Chromium does not resolve {missing}: add it to its hosts"])
        self._owns_chromium = chromium is None
        self._chromium = chromium or Chromium(
            hosts=hosts,
            executable_path=chromium_executable(config.chromium_path),
            headless=config.headless,
            launch_seconds=config.timeouts.launch_seconds,
            egress=egress,
            host_patterns=patterns,
        )
        self._sign_in_lock = asyncio.Lock()
        self.sign_ins = 0
        """Sessions kept by signing in, so far: a delegation that saw fewer when it began may take the latest."""
        self._running = 0
        self._restart = False
        """The Chromium it owns is closed once no delegation runs (to start afresh, resolving its hosts again)."""

    def __repr__(self) -> str:
        return f"BrowserAgent(name={self.name!r}, origins={list(self.config.origins)!r})"

    async def capabilities(self) -> list[Capability]:
        """The configured recipes, each with the input fields its templates use."""
        return [
            Capability(
                name=name,
                description=recipe.description,
                input_schema={
                    "type": "object",
                    "properties": {field_name: {"type": "string"} for field_name in recipe.input_fields},
                    "required": recipe.input_fields,
                },
            )
            for name, recipe in self.config.capabilities.items()
        ]

    async def delegate(self, request: DelegationRequest, *, human: HumanChannel | None = None) -> DelegationResult:
        """Run the capability's recipe in the vendor's UI; see the module doc for what fails and what raises."""
        return await self._perform(request, human, rehearsal=False)

    async def rehearse(self, request: DelegationRequest, *, human: HumanChannel | None = None) -> DelegationResult:
        """A dry run of the capability's recipe: signing in if need be, it runs the steps up to the first that could
        change something at the vendor (a click, key press, pick, upload or download), checks that step's element is
        on the page, and stops there with a screenshot. Meanwhile only GET requests leave the page."""
        return await self._perform(request, human, rehearsal=True)

    async def _perform(
        self, request: DelegationRequest, human: HumanChannel | None, *, rehearsal: bool
    ) -> DelegationResult:
        recipe = self.config.capabilities.get(request.capability)
        if recipe is None:
            raise UnknownCapability(self.name, request.capability, list(self.config.capabilities))
        started = self._clock()
        values, problem = _input_values(recipe, request.input)
        if problem:
            outcome = _Outcome(status=DelegationStatus.FAILED, error=problem)
        else:
            try:
                async with asyncio.timeout(request.timeout_seconds) as deadline:
                    self._running += 1
                    try:
                        outcome = await self._delegate(
                            request.capability, recipe, values, human, deadline, rehearsal=rehearsal
                        )
                    except AgentUnavailable:
                        # Started afresh, resolving its hosts again (a vendor's address may move), once the
                        # delegations running in it are done.
                        self._restart = self._owns_chromium
                        raise
                    finally:
                        self._running -= 1
                        if self._restart and not self._running:
                            self._restart = False
                            await self._chromium.close()
            except TimeoutError:
                if deadline.expired():
                    raise AgentTimeout(self.name, request.timeout_seconds) from None
                raise
        return DelegationResult(
            status=outcome.status,
            output=outcome.output,
            data=outcome.data,
            evidence=outcome.evidence,
            started_at=started,
            finished_at=self._clock(),
            error=outcome.error,
            progress=outcome.progress,
        )

    async def _delegate(
        self,
        capability: str,
        recipe: Recipe,
        values: dict[str, str],
        human: HumanChannel | None,
        deadline: asyncio.Timeout,
        *,
        rehearsal: bool = False,
    ) -> _Outcome:
        browser = await self._chromium.browser(for_agent=self.name)
        sign_ins = self.sign_ins
        context, guard = await self._new_context(browser, await self._load_session())
        run: _Run | None = None
        try:
            page = await context.new_page()
            guard.page = page
            run = _Run(self, context, page, guard, human=human, deadline=deadline, rehearsal=rehearsal)
            run.sign_ins_seen = sign_ins
            try:
                await run.run(recipe.steps, values, "")
                if not isinstance(recipe.steps[-1], Screenshot):
                    await run.final_screenshot(f"the page after {capability}")
            except _Rehearsed as stopped:
                await run.final_screenshot(f"the page before {stopped.at}")
                await self.save_session(context)
                return _Outcome(
                    status=DelegationStatus.SUCCEEDED,
                    output=run.redact(
                        f"Dry run of {capability}: stopped before {stopped.at}, which would change something at "
                        f"{self.name}; its element is on the page. Nothing was submitted."
                    ),
                    data=dict(run.data),
                    evidence=self._evidence(run, guard),
                    progress=tuple(run.steps),
                )
            except _Failed as failed:
                reason = run.redact(failed.reason)
                logger.info("browser agent %r: %s failed: %s", self.name, capability, reason)
                await run.screenshot_on_failure(reason)
                return _Outcome(
                    status=DelegationStatus.FAILED,
                    evidence=self._evidence(run, guard),
                    error=reason,
                    progress=tuple(run.steps),
                )
            await self.save_session(context)
            output = _render(recipe.output, {**values, **run.data}) if recipe.output else _summary(capability, run.data)
            if rehearsal:
                output = f"Dry run of {capability}: every step ran, none of them changes anything.\n{output}"
            return _Outcome(
                status=DelegationStatus.SUCCEEDED,
                output=run.redact(output),
                data=dict(run.data),
                evidence=self._evidence(run, guard),
                progress=tuple(run.steps),
            )
        except PlaywrightError as error:
            # Anything the steps did not convert (the context or browser died between steps) means unavailable.
            if run is None:
                raise AgentNotReached(self.name, f"the browser failed: {_first_line(error)}") from None
            raise run.unavailable(f"the browser failed: {run.redact(_first_line(error))}") from None
        finally:
            await self._dispose(context)

    def _evidence(self, run: _Run, guard: _OriginGuard) -> tuple[Evidence, ...]:
        evidence = list(run.evidence)
        if guard.blocked:
            listing = "\n".join(dict.fromkeys(_without_query(url) for url in guard.blocked))
            evidence.append(
                Evidence(
                    kind="text",
                    media_type="text/plain",
                    content=run.redact(listing).encode(),
                    description="requests to unregistered origins, blocked",
                )
            )
        return tuple(evidence)

    async def health(self) -> AgentHealth:
        """Start the browser if needed and open the first registered origin: ok when it answers below 500."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        home = self.config.origins[0] + "/"
        timeouts = self.config.timeouts
        try:
            async with asyncio.timeout(timeouts.launch_seconds + timeouts.navigation_seconds + 5):
                browser = await self._chromium.browser(for_agent=self.name)
                context, _ = await self._new_context(browser, None)
                try:
                    page = await context.new_page()
                    response = await page.goto(home, timeout=timeouts.navigation_seconds * 1000)
                finally:
                    await self._dispose(context)
            status = response.status if response is not None else 0
            ok = 0 < status < 500
            detail = f"{home} answered {status}" + ("" if ok else ": the site is failing")
        except AgentUnavailable as unavailable:
            ok, detail = False, unavailable.reason
        except TimeoutError:
            ok, detail = False, f"{home} did not answer in time"
        except PlaywrightError as error:
            network = _NET_ERROR.search(str(error))
            logger.info("browser agent %r: %s could not be opened (%s)", self.name, home, _first_line(error))
            ok, detail = False, f"{home}: {UNREACHABLE}" if network else f"{home} could not be opened"
        except Exception as error:  # the interface promises health() never raises
            logger.exception("browser agent %r: health check failed", self.name)
            ok, detail = False, f"the health check failed: {type(error).__name__}"
        return AgentHealth(ok=ok, detail=detail, seconds=loop.time() - started)

    async def close(self) -> None:
        """Close the browser and stop Playwright, unless the Chromium is shared."""
        if self._owns_chromium:
            await self._chromium.close()

    async def save_session(self, context: BrowserContext) -> None:
        """Keep the context's cookies and local storage, encrypted, for the next delegation."""
        state = await context.storage_state()
        await self._sessions.save_state(self._vault.encrypt(json.dumps(state).encode()))

    async def _load_session(self) -> dict[str, Any] | None:
        token = await self._sessions.load_state()
        if not token:
            return None
        try:
            state = json.loads(self._vault.decrypt(token))
        except (VaultError, ValueError) as error:
            logger.warning(
                "browser agent %r: the saved session is unreadable (%s); signing in afresh", self.name, error
            )
            return None
        return state if isinstance(state, dict) else None

    async def _new_context(self, browser: Browser, state: dict[str, Any] | None) -> tuple[BrowserContext, _OriginGuard]:
        guard = _OriginGuard(self._origins, self._providers, self._chromium.egress)
        try:
            context = await browser.new_context(
                storage_state=state,  # type: ignore[arg-type]
                service_workers="block",  # requests from service workers would bypass the route
                accept_downloads=True,  # kept only by a download step, as evidence
            )
            context.set_default_timeout(self.config.timeouts.step_seconds * 1000)
            context.set_default_navigation_timeout(self.config.timeouts.navigation_seconds * 1000)
            context.on("request", guard.on_request)
            await context.route("**/*", guard.route)
            await context.route_web_socket(re.compile(".*"), guard.websocket)
        except PlaywrightError as error:
            raise AgentNotReached(self.name, f"the browser could not open a page ({_first_line(error)})") from None
        return context, guard

    async def _dispose(self, context: BrowserContext) -> None:
        with contextlib.suppress(PlaywrightError, TimeoutError):
            async with asyncio.timeout(10):
                await context.unroute_all(behavior="ignoreErrors")
                await context.close()


def _input_values(recipe: Recipe, given: Mapping[str, Any]) -> tuple[dict[str, str], str]:
    values: dict[str, str] = {}
    missing = [name for name in recipe.input_fields if name not in given or given[name] is None]
    if missing:
        listing = ", ".join(sorted(given)) or "nothing"
        return {}, f"the recipe needs input {', '.join(missing)}; the request gave {listing}"
    for name in recipe.input_fields:
        value = given[name]
        if isinstance(value, Mapping | list | tuple | set):
            return {}, f"input {name!r} must be text or a number, not a {type(value).__name__}"
        values[name] = str(value)
    return values, ""


def _summary(capability: str, data: Mapping[str, str]) -> str:
    if not data:
        return f"{capability}: done"
    return "\n".join(f"{name}: {value}" for name, value in data.items())


class BrowserAdapterFactory:
    """Builds browser agents for the adapter registry (`planner.services.registry.AdapterFactory`, kind `browser`), from
    configs that come from chat: their origins must be allowed by `egress`, and the Chromium that runs is
    `chromium_path` (the operator's `COS_CHROMIUM_PATH`; by default Debian's), never a config's.

    `sessions` gives each adapter, by name, the store its signed-in session is kept in (the registry's
    `session_store`); without it, sessions live in memory. `chromium`, if given, is shared by every agent built.
    """

    secret_fields: Collection[str] = ("credentials",)

    def __init__(
        self,
        *,
        vault: Vault,
        sessions: Callable[[str], StorageStateStore] | None = None,
        chromium: Chromium | None = None,
        clock: Callable[[], datetime] = _now,
        egress: Egress | None = None,
        chromium_path: str | None = None,
    ) -> None:
        self._vault = vault
        self._sessions = sessions
        self._chromium = chromium
        self._clock = clock
        self._egress = egress if egress is not None else Egress()
        self._chromium_path = chromium_path

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The config checked and normalised; raises `AgentConfigInvalid` naming each problem (never a secret)."""
        problems: list[str] = []
        if isinstance(config, Mapping) and config.get("chromium_path") is not None:
            problems.append(
                f"chromium_path: which browser runs is the operator's to set ({CHROMIUM_PATH_ENV}), not a config's"
            )
        try:
            parsed = BrowserConfig.from_dict(config, name="-")
        except AgentConfigInvalid as invalid:
            raise AgentConfigInvalid(problems + invalid.problems) from None
        for number, origin in enumerate(parsed.origins, 1):
            host_problem = self._egress.host_problem(urlsplit(origin).hostname or "")
            if host_problem is not None:
                problems.append(f"origins #{number}: {host_problem}")
        for number, provider in enumerate(_providers_and_problems(parsed.identity_providers)[0], 1):
            host_problem = self._egress.host_problem(provider.host)
            if host_problem is not None:
                problems.append(f"identity_providers #{number}: {host_problem}")
        if problems:
            raise AgentConfigInvalid(problems)
        return parsed.to_dict(with_secrets=True)

    def build(self, name: str, config: Mapping[str, Any]) -> BrowserAgent:
        """An agent that starts its browser on its first call; raises `AgentConfigInvalid`."""
        # A chromium_path stored before it became the operator's setting is not used.
        stored = {key: value for key, value in config.items() if key != "chromium_path"}
        return BrowserAgent(
            BrowserConfig.from_dict({**stored, "chromium_path": self._chromium_path}, name=name),
            vault=self._vault,
            sessions=self._sessions(name) if self._sessions is not None else None,
            chromium=self._chromium,
            clock=self._clock,
            egress=self._egress,
        )
