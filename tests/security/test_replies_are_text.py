"""People's, agents' and connected systems' words in the bot's text replies and notifications are text: a task title,
a name, a reason, a note, a plan or KPI name, a policy rule's description or an agent's capability holding Markdown
shows as written, never as a link, bold or a list item, in the message text Teams renders as Markdown; and a reply
that repeats what someone typed repeats it cut short.

Each flow drives the bot through its HTTP surface (and the outbox's sender for notifications) and reads every text
it sends with a CommonMark renderer (markdown-it, as tests/bot/cards/test_literal_text.py does).
"""

from __future__ import annotations

import html
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pytest
from markdown_it import MarkdownIt

from bot.cards.markdown import WORD_JOINER, literal_prose
from bot.delegating import Delegator
from bot.sender import Sender
from bot.settings import Settings
from bot.teams.botbuilder import create_channel
from planner.domain.model import MetricSpec, Window
from planner.domain.triggers import TriggerRules
from planner.services.approvals import Approvers
from planner.services.directory import Directory
from planner.services.plans import Plans
from planner.services.policy import PolicySets
from planner.services.trigger_rules import TenantTriggerRules
from planner.services.triggers import TriggerEngine
from planner.store import Store
from planner.store.vault import Vault
from tests.bot.conftest import TENANT, Running, TeamsUser, start_bot
from tests.conftest import FakeClock
from tests.fakes.agents import FakeAgentFactory
from tests.fakes.connector import FakeConnector
from tests.security.conftest import stop_bot

LINK = "[✅ Approve](https://evil.example)"
HOSTILE = f"{LINK} **now** _it_ <b>x</b> <at>y</at>"
"""What a person, an agent or an admin might type to dress their words up as the bot's own (a typed message loses
its `<at>` tags to the mention handling; a display name or a stored value keeps them)."""
WORDS = (LINK, "**now**", "_it_", "<b>x</b>")
"""What must stay visible, as written."""

RENDERER = MarkdownIt("commonmark").enable(["strikethrough", "table"])
MARKUP_FROM_DATA = re.compile(r"<(a|at|b|img|h[1-6]|em|s|del|blockquote|pre|table|ol)\b")
"""Markup the bot's own texts never use: whatever of it shows came from data."""
BOT_LIST_ITEM = re.compile(r"[PTD]\d+ ")
"""The bot's own list items name a plan, task or delegation first (`- P2 Launch: 3 tasks`)."""

JAN = Window(start=date(2026, 1, 5), end=date(2026, 3, 31))
TACTICAL = Window(start=date(2026, 1, 5), end=date(2026, 1, 30))


def visible(markup: str) -> str:
    """What a reader sees of rendered HTML: the text, entities read, word joiners gone, whitespace folded."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", markup)).replace(WORD_JOINER, "")
    return " ".join(text.split())


def card_texts(card: dict[str, Any]) -> list[str]:
    """Every text a card shows as Markdown: TextBlocks, and facts' titles and values."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "TextBlock":
                found.append(node["text"])
            if node.get("type") == "FactSet":
                found.extend(part for fact in node["facts"] for part in (fact["title"], fact["value"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return found


def assert_text(texts: Sequence[str], cards: Sequence[dict[str, Any]] = ()) -> None:
    """No text renders a link, tag, emphasis or list item made from the hostile words, and the words show as written
    (in the texts, or on the cards sent with them)."""
    seen = []
    for text, on_card in [*((t, False) for t in texts), *((t, True) for card in cards for t in card_texts(card))]:
        markup = RENDERER.render(text)
        assert not MARKUP_FROM_DATA.search(markup), (text, markup)
        assert "<strong>now</strong>" not in markup, markup  # the bot's own bold may hold a title, shown as text
        items = [visible(item) for item in re.findall(r"<li>(.*?)</li>", markup, re.S)]
        if on_card:  # a card's list (bullet_list) is one item a line, no more
            assert len(items) == (len(text.split("\r")) if text.startswith("- ") else 0), (text, items)
        else:
            assert all(BOT_LIST_ITEM.match(item) for item in items), (text, items)
        seen.append(visible(markup))
    everything = "\n".join(seen)
    for words in WORDS:
        assert words in everything, (words, everything)


@dataclass
class Scene:
    """A tenant whose plans, KPI, task, people and agent all carry the hostile words."""

    running: Running
    lead: TeamsUser
    writer: TeamsUser
    clock: FakeClock
    agents: FakeAgentFactory
    sender: Sender
    said: list[str] = field(default_factory=list)
    cards: list[dict[str, Any]] = field(default_factory=list)

    @property
    def store(self) -> Store:
        return self.running.store

    async def ask(self, user: TeamsUser, text: str, replies: int = 1) -> None:
        """`user` says `text`; the texts and cards of the replies are kept to check."""
        before = len(self.running.connector.sent)
        self.said += await user.ask(text, replies)
        self._keep_cards(before)

    async def click(self, user: TeamsUser, value: dict[str, Any]) -> None:
        """`user` presses a card's button carrying `value`."""
        before = len(self.running.connector.sent)
        self.said += await user.ask_value(value)
        self._keep_cards(before)

    async def deliver(self) -> None:
        """The outbox's sender delivers what is due; the notifications' texts and cards are kept to check."""
        before = len(self.running.connector.sent)
        await self.running.bot.drain()
        await self.sender.deliver()
        self.said += [s.body.get("text") or "" for s in self.running.connector.sent[before:]]
        self._keep_cards(before)

    def _keep_cards(self, before: int) -> None:
        for sent in self.running.connector.sent[before:]:
            self.cards += [a["content"] for a in sent.body.get("attachments") or [] if "content" in a]

    async def rule(self, effect: str, actions: list[str]) -> None:
        """A policy rule, described in the hostile words, over the operations `actions`."""
        rule = {"id": "r1", "description": HOSTILE, "effect": effect, "kinds": ["plan_change"], "actions": actions}
        await PolicySets(self.store, TENANT).load({"rules": [rule]}, actor="aad-admin")


@pytest.fixture
async def scene(store: Store, connector: FakeConnector, clock: FakeClock) -> AsyncIterator[Scene]:
    clock.now = datetime(2026, 1, 7, 9, tzinfo=UTC)
    sender = Sender(store, create_channel(Settings.from_env({})), worker="w", jitter=random.Random(1))
    agents = FakeAgentFactory(clock)
    agents.agent("vendor").known = [HOSTILE]
    agents.agent("vendor").output = HOSTILE
    delegator = Delegator(store, Vault([Vault.generate_key()]), kinds=lambda *_: {"fake": agents})
    running = await start_bot(store, connector, clock, delegator=delegator)
    await delegator.registry(TENANT).register("fake", "vendor", {"url": "https://vendor.example/mcp"}, actor="x")
    tenant = Plans(store, TENANT)
    kpi = MetricSpec(name=HOSTILE, target=500, unit="SQL")
    master = await tenant.create_master_plan(title=HOSTILE, owner="aad-lead", window=JAN, metrics=[kpi], actor="x")
    await tenant.create_tactical_plan(master.id, title=HOSTILE, owner="aad-lead", window=TACTICAL, actor="x")
    await tenant.add_task(2, title=HOSTILE, due_on=date(2026, 1, 9), owner="aad-writer", milestone=True, actor="x")
    lead = TeamsUser(running, name=HOSTILE)
    writer = TeamsUser(running, user_id="aad-writer", name=HOSTILE, conversation_id="a:writer")
    await Directory(store, TENANT).remember_person("aad-writer", HOSTILE)
    await writer.ask("help")  # both have written once: their chats are known
    await lead.ask("help")
    await TenantTriggerRules(store).switch(TENANT, "weekly", on=False, actor="test")
    yield Scene(running, lead, writer, clock, agents, sender)
    await stop_bot(running)
    await delegator.close()


Flow = Callable[[Scene], Awaitable[None]]


async def new_plan(scene: Scene) -> None:
    await scene.ask(scene.lead, f"new plan {HOSTILE} from 2026-01-05 to 2026-03-31 kpi SQLs 500")


async def tactical_plan(scene: Scene) -> None:
    await scene.ask(scene.lead, f"tactical {HOSTILE} from 2026-01-12 to 2026-01-30 in P1")


async def add_task(scene: Scene) -> None:
    await scene.ask(scene.lead, f"add task {HOSTILE} to P2 due 2026-01-16 for {HOSTILE}")
    await scene.ask(scene.lead, f"add task {HOSTILE} to P2 due 2026-01-16")


async def assign(scene: Scene) -> None:
    await scene.ask(scene.lead, f"assign T1 to {HOSTILE} the second")  # someone the bot does not know
    await scene.ask(scene.lead, f"assign T1 to {HOSTILE}")  # the writer, by their name


async def block_with_a_reason(scene: Scene) -> None:
    await scene.ask(scene.lead, f"block T1 {HOSTILE}")


async def block_from_the_card(scene: Scene) -> None:
    await scene.click(scene.writer, {"verb": "set_task_status", "task": 1, "status": "blocked", "reason": HOSTILE})


async def done(scene: Scene) -> None:
    await scene.ask(scene.lead, "done T1")


async def snooze(scene: Scene) -> None:
    await scene.ask(scene.lead, "snooze T1")


async def record_a_kpi(scene: Scene) -> None:
    await scene.ask(scene.lead, f"record {HOSTILE} 40")


async def how_are_we_doing(scene: Scene) -> None:
    await scene.ask(scene.lead, "how are we doing")


async def plans_and_week(scene: Scene) -> None:
    await scene.ask(scene.lead, "plans")
    await scene.ask(scene.lead, "week P2 2026-W02")


async def delegation(scene: Scene) -> None:
    await scene.click(scene.lead, {"verb": "delegate_task", "task": "T1", "adapter": "vendor", "capability": HOSTILE})
    await scene.deliver()  # the result, to the task's owner
    await scene.ask(scene.lead, "delegations")


async def operation_stopped(scene: Scene) -> None:
    await scene.rule("forbid", ["set_task_status"])
    await scene.ask(scene.lead, "done T1")


async def approval_request_and_decision(scene: Scene) -> None:
    await Approvers(scene.store, TENANT).assign("leader", "aad-lead", actor="aad-admin")
    await scene.rule("require", ["add_task"])
    await scene.ask(scene.writer, f"add task {HOSTILE} to P2 due 2026-01-16")  # held
    await scene.deliver()  # the approval card, to the lead
    await scene.ask(scene.lead, f"approve A1 {HOSTILE}")
    await scene.deliver()  # how it went, to the writer
    await scene.ask(scene.lead, "approvals")


async def why(scene: Scene) -> None:
    await scene.rule("forbid", ["set_task_status"])
    await scene.ask(scene.lead, f"block T1 {HOSTILE}")
    await scene.ask(scene.lead, "why T1")
    await scene.ask(scene.lead, "why decision 1")


async def nudges_approaching_and_slipped(scene: Scene) -> None:
    await TriggerEngine(scene.store).evaluate(scene.clock.now)  # due in two days
    await scene.deliver()
    scene.clock.now = datetime(2026, 1, 12, 9, tzinfo=UTC)
    await TriggerEngine(scene.store).evaluate(scene.clock.now)  # slipped
    await scene.deliver()
    scene.clock.advance(days=2)
    await TriggerEngine(scene.store).evaluate(scene.clock.now)  # escalated to the lead
    await scene.deliver()


async def milestone_and_health(scene: Scene) -> None:
    await scene.ask(scene.writer, "done T1")
    await TriggerEngine(scene.store).evaluate(scene.clock.now)
    await scene.deliver()


async def weekly_digest(scene: Scene) -> None:
    friday = datetime(2026, 1, 9, 15, tzinfo=UTC)
    scene.clock.now = friday
    await TriggerEngine(scene.store, rules=TriggerRules(enabled=frozenset({"weekly_cycle"}))).evaluate(friday)
    await scene.deliver()


FLOWS: dict[str, Flow] = {
    "new plan": new_plan,
    "tactical plan": tactical_plan,
    "add task": add_task,
    "assign": assign,
    "block with a reason": block_with_a_reason,
    "block from the card": block_from_the_card,
    "done": done,
    "snooze": snooze,
    "record a KPI": record_a_kpi,
    "how are we doing": how_are_we_doing,
    "plans and week": plans_and_week,
    "delegation": delegation,
    "operation stopped": operation_stopped,
    "approval request and decision": approval_request_and_decision,
    "why": why,
    "nudges: approaching and slipped": nudges_approaching_and_slipped,
    "nudges: milestone and health": milestone_and_health,
    "weekly digest": weekly_digest,
}


EMOJI_IN_CHART = pytest.mark.filterwarnings("ignore:Glyph .* missing from")  # "current font" before 3.9
"""The chart draws the KPI's name; its font has no ✅, which matplotlib warns of (the chart is not what is tested)."""


@pytest.mark.parametrize(
    "flow", [pytest.param(name, marks=EMOJI_IN_CHART) if "doing" in name else name for name in FLOWS]
)
async def test_hostile_words_show_as_text_in_every_reply_and_notification(scene: Scene, flow: str) -> None:
    await FLOWS[flow](scene)
    assert scene.said
    assert_text(scene.said, scene.cards)


async def test_a_reply_repeats_a_long_name_someone_typed_cut_short(scene: Scene) -> None:
    long_name = HOSTILE + " and more" * 12  # shorter than a name may be (200), longer than a reply repeats (60)
    [said] = await scene.lead.ask(f"assign T1 to {long_name}")
    assert said.startswith("T1 is now ")
    assert " and more" * 6 not in visible(RENDERER.render(said))
    assert "…" in said
    owner = (await Plans(scene.store, TENANT).get_task(1)).owner
    assert str(owner).endswith(" and more")  # kept whole: only the reply cuts it


def test_a_planner_error_quoting_someone_s_words_shows_them_as_text_and_keeps_its_commands_and_list() -> None:
    said = literal_prose(
        f"2 problem(s).\n- No metric {HOSTILE!r} on plan 1: type `approvals` or ``record `x` 5``.\n- {HOSTILE}"
    )
    markup = RENDERER.render(said)
    assert "<code>approvals</code>" in markup
    assert "<code>record `x` 5</code>" in markup
    assert markup.count("<li>") == 2
    assert not MARKUP_FROM_DATA.search(markup)
    assert "<strong>now</strong>" not in markup
    assert all(words in visible(markup) for words in WORDS)


def test_a_request_nobody_may_approve_says_why_as_text() -> None:
    from bot.text import messages

    assert_text([messages.operation_unapprovable(HOSTILE, f"nobody holds the role `leader`: {HOSTILE}")])
