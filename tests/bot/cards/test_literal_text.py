"""People's and agents' words on cards are text: every card built with hostile text in each slot shows the words and
no link, emphasis, heading, list item or tag made from them, read by a CommonMark renderer (markdown-it, the reader
the Adaptive Cards web renderer uses)."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from bot.cards import approval_card, draft_card, member_week, message_card, plan_overview, task_card, welcome_card
from bot.cards.delegation import delegation_card, links_in
from bot.cards.digest import measurement_card, retrospective_card
from bot.cards.elements import bullet_list, fact_set, text_block
from bot.cards.markdown import WORD_JOINER, Markdown, literal, markdown
from bot.text.recommendations import rule_recommendations
from planner.domain.approvals import ApprovalRequest, ApprovalStatus
from planner.domain.delegations import Delegation, DelegationStatus
from planner.domain.governance import Action, ActionKind, GateCategory
from planner.domain.measurement import measure
from planner.domain.model import Tier, Window
from planner.services.playbooks import Retrospective
from tests.bot.cards.test_cards import (
    THIS_WEEK,
    TODAY,
    Card,
    draft_items,
    make_plan,
    make_rollup,
    make_task,
    of_type,
    open_task,
    schema_errors,
)
from tests.planner.test_measurement import AS_OF, FACTS

LINK = "[✅ Approve](https://evil.example)"
HOSTILE = (
    f"{LINK} **bold** _it_ ~~gone~~ <at>x</at> &amp; ![img](https://evil.example/i.png)\n# Heading\n- item\n1. one"
)
"""What a requester, a plan owner or an agent might write to dress their words up as the bot's own."""
HOSTILE_WORDS = (LINK, "**bold**", "_it_", "~~gone~~", "<at>x</at>", "&amp;", "# Heading", "- item", "1. one")

RENDERER = MarkdownIt("commonmark").enable(["strikethrough", "table"])
MARKUP_FROM_DATA = re.compile(r"<(a|img|h[1-6]|em|s|del|blockquote|pre|table|ol)\b")


def rendered(text: str) -> str:
    return RENDERER.render(text)


def visible(markup: str) -> str:
    """What a reader sees of rendered HTML: the text, entities read, word joiners gone, whitespace folded."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", markup)).replace(WORD_JOINER, "")
    return " ".join(text.split())


def shown(card: Card) -> list[str]:
    """Every text a card shows as Markdown: TextBlocks, and facts' titles and values."""
    texts = [block["text"] for block in of_type(card, "TextBlock")]
    for facts in of_type(card, "FactSet"):
        texts += [part for fact in facts["facts"] for part in (fact["title"], fact["value"])]
    return texts


def assert_shown_as_text(card: Card, *, expected: int = 1) -> None:
    """No text of `card` renders a link, emphasis, heading, tag or list item made from data, and the hostile words
    show, as written, at least `expected` times."""
    assert schema_errors(card) == []
    seen = []
    for text in shown(card):
        markup = rendered(text)
        assert not MARKUP_FROM_DATA.search(markup), (text, markup)
        assert "bold" not in "".join(re.findall(r"<strong>(.*?)</strong>", markup)), markup
        ours = text.split("\r") if text.startswith("- ") else []  # bullet_list: one item per line, no more
        assert markup.count("<li>") == len(ours), (text, markup)
        seen.append(visible(markup))
    everything = "\n".join(seen)
    for words in HOSTILE_WORDS:
        assert everything.count(words) >= expected, (words, everything)


def hostile_request(status: ApprovalStatus = ApprovalStatus.PENDING) -> ApprovalRequest:
    asked = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    return ApprovalRequest(
        id=7,
        tenant_id="contoso",
        action=Action(
            tenant_id="contoso",
            kind=ActionKind.DELEGATION,
            actor="agent:hubspot",
            agent=HOSTILE,
            name=HOSTILE,
            subject=HOSTILE,
            accounts=(HOSTILE,),
            attributes={HOSTILE: HOSTILE, "audience": [HOSTILE, {"segment": HOSTILE}]},
            categories=(GateCategory.AUDIENCE,),
        ),
        requester="aad-requester",
        reason=HOSTILE,
        policy_reasons=(HOSTILE,),
        rules=("gdpr-review",),
        resume={"delegation": 3},
        roles=(HOSTILE,),
        approvers=("aad-approver",),
        status=status,
        note=HOSTILE,
        decided_by="aad-approver" if status is not ApprovalStatus.PENDING else None,
        decided_at=asked + timedelta(hours=1) if status is not ApprovalStatus.PENDING else None,
        created_at=asked,
        expires_at=asked + timedelta(hours=48),
    )


def hostile_measurement() -> Card:
    facts = replace(
        FACTS,
        master=replace(FACTS.master, title=HOSTILE),
        series=tuple(replace(s, metric=replace(s.metric, name=f"{HOSTILE} {n}")) for n, s in enumerate(FACTS.series)),
    )
    report = measure(facts, AS_OF)
    advice = tuple(replace(r, action=HOSTILE, rationale=HOSTILE) for r in rule_recommendations(report))
    return measurement_card(replace(report, recommendations=advice), chart_url=None)


def hostile_retrospective() -> Card:
    plan = make_plan(2, Tier.TACTICAL, title=HOSTILE, window=Window(start=date(2026, 1, 5), end=date(2026, 1, 30)))
    retro = Retrospective(
        plan=plan,
        results=({"name": HOSTILE, "unit": HOSTILE, "result": 10.0, "target": 20.0, "attainment": 0.5},),
        slipped=({"task": 3, "title": HOSTILE, "due": "2026-01-09", "done": None, "blocked": HOSTILE},),
        agents={HOSTILE: {"succeeded": 1, "failed": 0}},
        policies={HOSTILE: 2},
    )
    return retrospective_card(retro)


def hostile_delegation(output: str = HOSTILE) -> Delegation:
    return Delegation(
        id=12,
        tenant_id="t",
        task_id=3,
        adapter="vendor",
        adapter_kind="mcp",
        capability="draft_email",
        input={},
        timeout_seconds=60,
        actor="aad-lea",
        status=DelegationStatus.SUCCEEDED,
        output=output,
        progress=(HOSTILE,),
        error=HOSTILE,
        queued_at=datetime(2026, 1, 5, 9, tzinfo=UTC),
        seconds=1.5,
        attempts=1,
    )


HOSTILE_CARDS: dict[str, Any] = {
    "plan overview": lambda: plan_overview(
        make_rollup(tacticals=2, done=2, overdue=7, sqls_reading=40, title_suffix=HOSTILE),
        names={"aad-lea": HOSTILE, "aad-sam": HOSTILE, "aad-ana": HOSTILE},
        today=TODAY,
    ),
    "member week": lambda: member_week(
        person_name=HOSTILE,
        iso_week=THIS_WEEK,
        tasks=[make_task(n, due_on=TODAY, title=HOSTILE) for n in (1, 2)],
        today=TODAY,
        plan_titles={2: HOSTILE},
    ),
    "task": lambda: task_card(
        open_task(title=HOSTILE, blocked_reason=HOSTILE), plan_title=HOSTILE, owner_name=HOSTILE, today=TODAY
    ),
    "welcome": lambda: welcome_card(name=HOSTILE, is_channel=False, today=date(2026, 2, 2)),
    "draft": lambda: draft_card(
        draft_id=7,
        title=HOSTILE,
        items=[{**item, "title": HOSTILE, "owner": HOSTILE, HOSTILE: HOSTILE} for item in draft_items(2)],
        state="pending",
        note=HOSTILE,
    ),
    "message": lambda: message_card(HOSTILE, [HOSTILE, "Agent's answer (as it gave it): " + HOSTILE]),
    "delegation": lambda: delegation_card(hostile_delegation()),
    "approval, pending": lambda: approval_card(hostile_request(), requester_name=HOSTILE, note=HOSTILE),
    "approval, decided": lambda: approval_card(
        hostile_request(ApprovalStatus.APPROVED), requester_name=HOSTILE, decider_name=HOSTILE
    ),
    "measurement": hostile_measurement,
    "retrospective": hostile_retrospective,
}


@pytest.mark.parametrize("name", list(HOSTILE_CARDS))
def test_every_card_shows_hostile_words_as_text_and_never_as_a_link_or_formatting(name: str) -> None:
    assert_shown_as_text(HOSTILE_CARDS[name]())


def test_a_fake_approve_link_from_a_requester_is_no_link_beside_the_real_buttons() -> None:
    card = approval_card(hostile_request(), requester_name=LINK)
    assert all("<a " not in rendered(text) for text in shown(card))
    assert [action["title"] for action in of_type(card, "Action.Execute")] == ["Approve", "Reject"]


def test_the_bots_own_bold_survives_and_what_goes_into_it_does_not() -> None:
    row = text_block(markdown("**{}** · {}", "T12", "**bold** [x](https://evil.example)"))
    assert rendered(row["text"]).count("<strong>") == 1
    assert "<a " not in rendered(row["text"])
    assert visible(rendered(row["text"])) == "T12 · **bold** [x](https://evil.example)"


def test_a_list_has_one_item_per_line_whatever_a_line_holds() -> None:
    block = bullet_list(["first\r- smuggled item", "# second", Markdown("**third**")])
    markup = rendered(block["text"])
    assert markup.count("<li>") == 3
    assert "<h1>" not in markup
    assert "<strong>third</strong>" in markup


def test_fact_titles_and_values_are_text() -> None:
    [fact] = fact_set([(LINK, "**bold**")])["facts"]
    assert visible(rendered(fact["title"])) == LINK
    assert "<a " not in rendered(fact["title"])
    assert "<strong>" not in rendered(fact["value"])


MARKDOWN_TEXT = st.text(alphabet="ab1 \t\n\r*_~`[]()<>!&#;:=-+|.\\{}h/", max_size=60)


@settings(max_examples=500, deadline=None)
@given(text=MARKDOWN_TEXT)
def test_literal_text_renders_as_plain_paragraphs_showing_every_character(text: str) -> None:
    markup = rendered(literal(text))
    assert set(re.findall(r"</?[a-z0-9]+", markup)) <= {"<p", "</p", "<br"}, markup
    assert visible(markup) == " ".join(text.split())


@pytest.mark.parametrize(
    "text",
    [
        "draft_email",
        "Content Writer",
        "3.4 days",
        "2.0 tasks a week",
        "62% done · 31/50 tasks",
        "2026-01-05",
        "1,200",
        "Fri 13 Feb 2026, 09:00 UTC",
        "SQLs (P2)",
        "#12 · T3",
        "-3 leads",
        "12 % of 1.5k",
    ],
)
def test_plain_words_and_numbers_are_left_exactly_as_they_are(text: str) -> None:
    assert literal(text) == text


def test_an_agent_s_links_are_listed_apart_whole_and_labelled_as_the_agent_s() -> None:
    output = (
        "Done. [click here](https://evil.example/login?next=%2F) to confirm, or see https://docs.vendor.example/a_b."
        " ![pixel](http://tracker.example/p.png) <a href='https://html.example'>x</a> javascript:alert(1)"
    )
    card = delegation_card(hostile_delegation(output))
    assert_shown_as_text(card, expected=0)
    texts = [visible(rendered(text)) for text in shown(card)]
    answer = next(text for text in texts if text.startswith("Done."))
    assert answer == " ".join(output.split())  # every character of the answer, and no link made from it
    labelled = "Links in the answer from vendor (from the agent"
    label = next(i for i, text in enumerate(texts) if text.startswith(labelled))
    assert texts[label + 1].split(" ") == [
        "https://evil.example/login?next=%2F",
        "https://docs.vendor.example/a_b",
        "http://tracker.example/p.png",
        "https://html.example",
    ]


def test_an_answer_without_web_addresses_lists_no_links() -> None:
    card = delegation_card(hostile_delegation("All 3 drafts are ready."))
    assert not any("Links in" in text for text in shown(card))
    assert links_in("see ftp://files.example and http:// and https://") == []


def test_control_characters_and_escape_sequences_from_an_agent_never_reach_a_card() -> None:
    output = "Report\x1b[2J\x1b[H ready\x1b]8;;https://evil.example\x07here\x1b]8;;\x07\r\nnext\x00\x85\x9b31m line"
    card = delegation_card(hostile_delegation(output))
    texts = shown(card)
    assert not any(ch in text for text in texts for ch in "\x1b\x00\x85\x9b\r\x07")
    # The answer's lines, each a line of its own in the card.
    assert any(text.startswith("Report ready") and text.endswith("here") for text in texts)
    assert "next line" in texts
    assert literal("tab\tand\nline") == "tab\tand\nline"
