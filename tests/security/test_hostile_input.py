"""Hostile input, generated: whatever arrives, the bot answers with a 2xx or a 4xx, never a 5xx, never crashes a
turn, and a refused input writes nothing.

Four doors: the command grammar (through real turns), `POST /api/messages`, `POST /api/context/events` and the
policy loader. Examples are few per test (the whole file runs in well under a minute) but varied; hypothesis keeps
the failing ones in its database and shrinks them.
"""

from __future__ import annotations

import contextlib
import json
import string
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.grammar import VERBS, GrammarError, parse
from bot.http.context_events import PATH as EVENTS_PATH
from bot.operations import Context, Registry, Reply, default_registry
from bot.parsing import ParseError, parse_date, parse_fraction, parse_number, parse_ref
from bot.text import messages
from planner.domain.errors import PlannerError
from planner.services.context import ContextSources, sign
from planner.services.policy import PolicySets
from planner.store import Store
from planner.store.vault import Vault
from tests.bot.conftest import TENANT, Running, TeamsUser
from tests.conftest import FakeClock
from tests.fakes.connector import FakeConnector
from tests.security.conftest import BOOKKEEPING, changed_tables, snapshot, start_bot_with, stop_bot

MAX_BODY = 8192
KEY = Vault.generate_key()
SOURCE = "helpdesk"
BOUNDED = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ---- strategies ---------------------------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
_WORDS_TEXT = (
    "P1 P2 T1 T2 T999999 P0 T-1 #1 A1 A999 D1 D2 12 0 -3 99999999999999999999 1e309 nan inf 15% 2.5k "
    "1,200 to from due for owner kpi tolerance baseline in under milestone because me myself @nobody "
    "@Lead 2026-01-05 2026-02-30 2026-13-01 0000-01-01 9999-12-31 today tomorrow friday 31 march march 31 "
    "2026-W02 2026-W99 on off set lead quiet budget weekly reset replay all show list load add remove map "
    'test enable disable hubspot mcp browser draft_email { } [ ] {"rules":[]} {"a": ? cancel 123456 T¹ P٣'
)
WORDS = _WORDS_TEXT.split()
tokens = st.sampled_from(WORDS) | st.text(alphabet=string.printable + "éø€ \u200b\u202e<>&\x00\x85", max_size=12)
command_texts = st.builds(
    lambda verb, words: " ".join([verb, *words]),
    st.sampled_from(VERBS),
    st.lists(tokens, max_size=8),
)
texts = command_texts | st.text(max_size=120)


# ---- the command grammar ------------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(text=texts)
def test_the_grammar_reads_any_text_as_a_known_operation_or_says_what_is_wrong(text: str) -> None:
    known = {operation.name for operation in default_registry()}
    try:
        command = parse(text)
    except GrammarError as error:
        meant = error.operation
    else:
        meant = command.operation
        json.dumps(command.args)  # what a tool call would carry: plain JSON
    assert meant is None or meant in known


@settings(max_examples=300, deadline=None)
@given(text=st.sampled_from(WORDS) | st.text(max_size=30))
def test_the_value_parsers_accept_or_refuse_with_a_parse_error(text: str) -> None:
    from datetime import date

    for read in (
        lambda: parse_date(text, today=date(2026, 1, 5)),
        lambda: parse_number(text),
        lambda: parse_fraction(text),
        lambda: parse_ref(text, "T", "a task"),
    ):
        with contextlib.suppress(ParseError):
            read()


class RecordingRegistry(Registry):
    """The bot's registry, remembering each operation's reply (to know which turns were refusals)."""

    def __init__(self) -> None:
        super().__init__(default_registry())
        self.replies: list[tuple[str, Reply]] = []

    async def run(self, name: str, context: Context, args: Mapping[str, Any]) -> Reply:
        reply = await super().run(name, context, args)
        self.replies.append((name, reply))
        return reply


@dataclass(repr=False)
class Seeded:
    """A bot whose tenant has plans, a task and a KPI, and its registry (a short repr: hypothesis prints it)."""

    lead: TeamsUser
    registry: RecordingRegistry

    def __repr__(self) -> str:
        return "Seeded(P1, P2, T1, SQLs)"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


@pytest.fixture
async def seeded(store: Store, connector: FakeConnector, clock: FakeClock) -> AsyncIterator[Seeded]:
    """A bot whose tenant has a master plan P1, a tactical plan P2 with a task T1, and a KPI: ids to aim at."""
    registry = RecordingRegistry()
    running = await start_bot_with(store, connector, clock, {}, registry=registry)
    lead = TeamsUser(running)
    await lead.ask("new plan Launch from 2026-01-01 to 2026-03-31 kpi SQLs 500 tolerance 10%")
    await lead.ask("tactical January from 2026-01-01 to 2026-01-31 kpi SQLs 150")
    await lead.ask("add task Draft the launch email to P2 due 2026-01-09 for me")
    yield Seeded(lead, registry)
    await stop_bot(running)


@BOUNDED
@given(text=texts)
async def test_any_text_gets_an_answer_and_a_refused_command_changes_nothing(seeded: Seeded, text: str) -> None:
    lead, registry = seeded.lead, seeded.registry
    connector = lead.running.connector
    before, sent_before, runs_before = (
        await snapshot(lead.running.store, without=BOOKKEEPING),
        len(connector.sent),
        len(registry.replies),
    )
    response = await lead.say(text)
    assert response.status in (200, 201)
    replies = [s.body.get("text") or "" for s in connector.sent[sent_before:]]
    assert replies or connector.cards(), f"no answer to {text!r}"
    assert messages.FAILED not in replies, f"the turn for {text!r} failed"
    ran = registry.replies[runs_before:]
    if not ran or not all(reply.ok for _, reply in ran):
        after = await snapshot(lead.running.store, without=BOOKKEEPING)
        assert changed_tables(before, after) == [], f"{text!r} was refused ({ran}) but wrote"


# ---- POST /api/messages -------------------------------------------------------------------------------------------


@pytest.fixture
async def bot(store: Store, connector: FakeConnector, clock: FakeClock) -> AsyncIterator[Running]:
    running = await start_bot_with(store, connector, clock, {"COS_MAX_BODY_BYTES": str(MAX_BODY)})
    yield running
    await stop_bot(running)


async def _post_raw(running: Running, body: bytes, content_type: str | None) -> int:
    headers = {"Content-Type": content_type} if content_type is not None else {}
    async with running.session.post(running.url, data=body, headers=headers) as response:
        await response.read()
        return response.status


async def _assert_refusal_wrote_nothing(running: Running, status: int, before: dict[str, Any], sent: int) -> None:
    assert status < 500
    if status >= 400:
        assert changed_tables(before, await snapshot(running.store)) == []
        assert len(running.connector.sent) == sent


@BOUNDED
@given(body=json_values)
async def test_any_json_posted_as_an_activity_gets_a_2xx_or_a_4xx(bot: Running, body: Any) -> None:
    before, sent = await snapshot(bot.store), len(bot.connector.sent)
    status = await _post_raw(bot, json.dumps(body).encode(), "application/json")
    await _assert_refusal_wrote_nothing(bot, status, before, sent)


_ACTIVITY_FIELDS_TEXT = (
    "type id channelId serviceUrl from recipient conversation channelData localTimezone text value "
    "entities replyToId timestamp localTimestamp membersAdded membersRemoved name attachments textFormat "
    "locale"
)
ACTIVITY_FIELDS = _ACTIVITY_FIELDS_TEXT.split()
NESTED_FIELDS = {
    "from": ["id", "aadObjectId", "name", "role"],
    "conversation": ["id", "conversationType", "tenantId", "isGroup"],
    "channelData": ["tenant"],
    "recipient": ["id", "name"],
}


@st.composite
def mutated_activities(draw: st.DrawFn, template: dict[str, Any]) -> dict[str, Any]:
    """A real Teams activity with some fields removed and some given values of any JSON type."""
    activity = json.loads(json.dumps(template))
    for name in draw(st.lists(st.sampled_from(ACTIVITY_FIELDS), max_size=3, unique=True)):
        if draw(st.booleans()):
            activity.pop(name, None)
        else:
            activity[name] = draw(json_values)
    for parent, children in NESTED_FIELDS.items():
        if isinstance(activity.get(parent), dict) and draw(st.booleans()):
            child = draw(st.sampled_from(children))
            activity[parent][child] = draw(json_values)
    return activity


@BOUNDED
@given(data=st.data())
async def test_a_mangled_activity_gets_a_2xx_or_a_4xx_and_never_breaks_the_turn(
    bot: Running, data: st.DataObject
) -> None:
    user = TeamsUser(bot)
    template = user.activity(text=data.draw(st.sampled_from(["help", "plans", "my tasks", "done T1"])))
    activity = data.draw(mutated_activities(template))
    before, sent = await snapshot(bot.store), len(bot.connector.sent)
    status = await _post_raw(bot, json.dumps(activity).encode(), "application/json")
    await _assert_refusal_wrote_nothing(bot, status, before, sent)
    if status < 400:
        texts_sent = [s.body.get("text") for s in bot.connector.sent[sent:]]
        assert messages.FAILED not in texts_sent, f"the turn failed for {activity!r}"


@BOUNDED
@given(
    content_type=st.sampled_from(
        [None, "", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "application/xml"]
    )
    | st.text(alphabet=string.ascii_letters + "/;=-+ ", max_size=30),
    body=st.binary(max_size=300),
)
async def test_a_body_that_is_not_json_is_refused_with_a_4xx(
    bot: Running, content_type: str | None, body: bytes
) -> None:
    assume(content_type is None or "application/json" not in content_type)
    before = await snapshot(bot.store)
    status = await _post_raw(bot, body, content_type)
    assert 400 <= status < 500
    assert changed_tables(before, await snapshot(bot.store)) == []


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(extra=st.integers(min_value=1, max_value=3 * MAX_BODY), chunked=st.booleans())
async def test_a_body_over_the_limit_is_refused_with_413_however_it_is_sent(
    bot: Running, extra: int, chunked: bool
) -> None:
    activity = TeamsUser(bot).activity(text="")
    activity["text"] = "x" * (MAX_BODY - len(json.dumps(activity)) + extra)
    body = json.dumps(activity).encode()
    before = await snapshot(bot.store)

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    headers = {"Content-Type": "application/json"}
    async with bot.session.post(bot.url, data=stream() if chunked else body, headers=headers) as response:
        assert response.status == 413
    assert changed_tables(before, await snapshot(bot.store)) == []
    assert bot.connector.sent == []


# ---- POST /api/context/events -------------------------------------------------------------------------------------


@pytest.fixture
async def events_endpoint(
    store: Store, connector: FakeConnector, clock: FakeClock
) -> AsyncIterator[tuple[Running, str]]:
    secret = await ContextSources(store, TENANT, Vault([KEY])).add(SOURCE, actor="aad-admin")
    running = await start_bot_with(store, connector, clock, {"COS_SECRET_KEYS": KEY, "COS_MAX_BODY_BYTES": "4096"})
    yield running, secret
    await stop_bot(running)


async def _post_events(running: Running, body: bytes, headers: dict[str, str]) -> int:
    async with running.session.post(running.server.make_url(EVENTS_PATH), data=body, headers=headers) as response:
        await response.read()
        return response.status


header_values = st.text(alphabet=string.ascii_letters + string.digits + string.punctuation + " ", max_size=80)


@BOUNDED
@given(
    body=st.binary(max_size=400) | json_values.map(lambda v: json.dumps(v).encode()),
    source=st.sampled_from([SOURCE, "HELPDESK", "other", ""]) | header_values,
    tenant=st.sampled_from([TENANT, "tenant-other", ""]) | header_values,
    signature=st.sampled_from(["", "sha256=", "sha256=00", "md5=abc"]) | header_values,
)
async def test_an_unsigned_event_post_is_refused_whatever_it_holds(
    events_endpoint: tuple[Running, str], body: bytes, source: str, tenant: str, signature: str
) -> None:
    running, _secret = events_endpoint
    before = await snapshot(running.store)
    headers = {"Content-Type": "application/json", "X-COS-Source": source, "X-COS-Tenant": tenant}
    headers["X-COS-Signature"] = signature
    status = await _post_events(running, body, headers)
    assert status in (401, 413)
    assert changed_tables(before, await snapshot(running.store)) == []


@st.composite
def event_posts(draw: st.DrawFn, now_iso: str) -> Any:
    """One event or a list of them, each a real-looking event with fields removed or given any JSON value."""
    fields = ["id", "type", "account", "at", "attributes", "ttl_hours", "observed_at"]

    def one(n: int) -> Any:
        event: dict[str, Any] = {
            "id": f"evt-{n}-{draw(st.integers(0, 3))}",
            "type": draw(st.sampled_from(["ticket_opened", "renewal_open", "Ticket Opened", ""])),
            "account": draw(st.sampled_from(["acct-1", "acct-2", "", "x" * 300])),
            "at": now_iso,
            "attributes": {"severity": "high"},
        }
        for name in draw(st.lists(st.sampled_from(fields), max_size=2, unique=True)):
            if draw(st.booleans()):
                event.pop(name, None)
            else:
                event[name] = draw(json_values)
        if draw(st.booleans()):
            event["ttl_hours"] = draw(st.sampled_from([1, 0, -1, 1e9, 10**30, "48", None]))
        return event

    if draw(st.booleans()):
        return one(0)
    return [one(n) for n in range(draw(st.integers(0, 4)))]


@BOUNDED
@given(data=st.data())
async def test_a_signed_event_post_is_stored_whole_or_refused_whole(
    events_endpoint: tuple[Running, str], clock: FakeClock, data: st.DataObject
) -> None:
    running, secret = events_endpoint
    payload = data.draw(event_posts((clock.now - timedelta(minutes=1)).isoformat()))
    body = json.dumps(payload).encode()
    before = await snapshot(running.store)
    headers = {"Content-Type": "application/json", "X-COS-Source": SOURCE, "X-COS-Tenant": TENANT}
    headers["X-COS-Signature"] = sign(secret, body)
    status = await _post_events(running, body, headers)
    assert status in (202, 400, 409, 413), status
    if status != 202:
        assert changed_tables(before, await snapshot(running.store)) == []


# ---- the policy loader --------------------------------------------------------------------------------------------

RULE_TEMPLATE: dict[str, Any] = {
    "id": "hubspot-discounts",
    "description": "Discounts above 15% need a person.",
    "effect": "allow",
    "agents": ["hubspot"],
    "kinds": ["delegation"],
    "actions": ["offer_discount"],
    "limits": {"discount": {"le": 15}},
}
RULE_FIELDS = [*RULE_TEMPLATE, "when", "verdict"]
WHEN_VALUES = st.sampled_from(
    [
        {"fact": "ticket_opened", "within": "48h"},
        {"attributes": {"direction": "outbound"}},
        {"facts": [{"type": "renewal_open", "absent": True}]},
        {"attributes": {"input.discount": {"gt": 10, "in": [1, 2]}}},
    ]
)


@st.composite
def policy_documents(draw: st.DrawFn) -> Any:
    """A rule set close to a real one, with fields removed or replaced; or any JSON; or any text."""
    kind = draw(st.sampled_from(["rules", "json", "text", "yaml"]))
    if kind == "json":
        return draw(json_values)
    if kind == "text":
        return draw(st.text(max_size=200))
    rules = []
    for _ in range(draw(st.integers(0, 3))):
        rule = dict(RULE_TEMPLATE)
        for name in draw(st.lists(st.sampled_from(RULE_FIELDS), max_size=3, unique=True)):
            choice = draw(st.integers(0, 2))
            if choice == 0:
                rule.pop(name, None)
            elif choice == 1:
                rule[name] = draw(json_values)
            else:
                rule[name] = draw(WHEN_VALUES) if name in ("when", "limits") else draw(st.sampled_from(WORDS))
        rules.append(rule)
    document = {"rules": rules}
    if kind == "yaml":
        text = json.dumps(document)
        suffix = draw(
            st.sampled_from(
                ["", "\n? [a, b]\n: 1", "\nrules: 2026-01-05", "\n- x", " &a *a", "\n!!python/object:os.system {}"]
            )
        )
        return text + suffix
    return document


@BOUNDED
@given(document=policy_documents())
async def test_the_policy_loader_stores_a_valid_rule_set_or_refuses_it_whole(store: Store, document: Any) -> None:
    policies = PolicySets(store, TENANT)
    before = await snapshot(store)
    version = await policies.version()
    try:
        loaded = await policies.load(document, actor="aad-admin")
    except PlannerError as refused:  # PolicyInvalid, or any other refusal of ours: with a message, nothing stored
        problem = str(refused)
    else:
        assert loaded.version == version + 1
        assert (await policies.active()) is not None
        return
    assert problem
    assert changed_tables(before, await snapshot(store)) == []
    assert await policies.version() == version


# ---- operation arguments (card actions and tool calls carry any JSON) ----------------------------------------------

OPERATIONS = sorted(operation.name for operation in default_registry())


@st.composite
def operation_calls(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """An operation, with its own parameters given any JSON values (or ids that exist), as a card could send."""
    name = draw(st.sampled_from(OPERATIONS))
    properties = list(default_registry().get(name).parameters.get("properties", {}))
    args: dict[str, Any] = {}
    for parameter in draw(st.lists(st.sampled_from(properties), unique=True)) if properties else []:
        args[parameter] = draw(json_values | st.sampled_from([1, 2, "P1", "T1", "1", 10**30, -1, "", "all"]))
    if draw(st.booleans()):
        args["from_card"] = True
    return name, args


@BOUNDED
@given(call=operation_calls())
async def test_a_card_action_with_any_arguments_gets_an_answer_and_never_breaks_the_turn(
    seeded: Seeded, call: tuple[str, dict[str, Any]]
) -> None:
    lead, registry = seeded.lead, seeded.registry
    name, args = call
    connector = lead.running.connector
    before, sent_before, runs_before = (
        await snapshot(lead.running.store, without=BOOKKEEPING),
        len(connector.sent),
        len(registry.replies),
    )
    response = await lead.post(lead.activity(text=None, value={**args, "verb": name}))
    assert response.status in (200, 201)
    said = [s.body.get("text") for s in connector.sent[sent_before:]]
    assert messages.FAILED not in said, f"the card action {name} {args!r} failed"
    ran = registry.replies[runs_before:]
    assert ran, f"the card action {name} did not run"
    if not all(reply.ok for _, reply in ran):
        after = await snapshot(lead.running.store, without=BOOKKEEPING)
        assert changed_tables(before, after) == [], f"{name} {args!r} was refused but wrote"


async def test_an_activity_nested_too_deep_is_a_400_saying_so_and_changes_nothing(bot: Running) -> None:
    before, sent = await snapshot(bot.store), len(bot.connector.sent)
    for body in (b"[" * 1_500 + b"]" * 1_500, json.dumps({"type": "message", "value": _nested(40)}).encode()):
        assert await _post_raw(bot, body, "application/json") == 400
    await _assert_refusal_wrote_nothing(bot, 400, before, sent)


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"inner": value}
    return value
