"""The steering card of open delegations: valid Adaptive Card 1.5, a screen tall however many there are, and the
buttons each delegation's status allows, wired to the operations a typed `retry D12` or `cancel D12` runs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.cards.delegation import MORE_ID, SHOWN, delegations_card
from bot.cards.elements import CARD_BUDGET_BYTES, serialized_size
from bot.operations import default_registry
from planner.domain.delegations import OPEN, Delegation, DelegationStatus
from tests.bot.cards.test_cards import all_text, element_by_id, elements, schema_errors

Card = dict[str, Any]
AT = datetime(2026, 3, 2, 10, 4, tzinfo=UTC)
LONG = "Rewrite the nurture sequence for the enterprise segment after the pricing change " * 6
TALLEST = 1200
"""Pixels: about what a Teams window shows without scrolling."""


def open_delegation(n: int, status: DelegationStatus, *, error: str | None = None) -> Delegation:
    return Delegation(
        id=n,
        tenant_id="contoso",
        task_id=n,
        adapter="crm",
        adapter_kind="mcp",
        capability="create_segment_for_the_enterprise_accounts_in_renewal",
        input={},
        timeout_seconds=60,
        actor="aad-writer",
        status=status,
        error=error,
        queued_at=AT,
        started_at=AT if status is DelegationStatus.RUNNING else None,
    )


def card_of(delegations: list[Delegation]) -> Card:
    return delegations_card(
        delegations,
        titles={d.task_id: LONG for d in delegations},
        names={"aad-writer": "Content Writer"},
        when=lambda at: f"{at:%d %b %H:%M} UTC",
        everyone=True,
    )


def folded_height(card: Card) -> int:
    """A generous estimate of the card's height in Teams before "Show more": 20 px a text line (at most `maxLines`,
    about 60 characters a line at Teams' width), 36 px a row of buttons, 12 px between elements."""

    def height(element: dict[str, Any]) -> int:
        if element.get("isVisible") is False:
            return 0
        kind = element.get("type")
        if kind == "TextBlock":
            lines = -(-len(element["text"]) // 60)
            scale = 1.5 if element.get("size") == "large" else 1
            return int(12 + 20 * scale * min(lines, element.get("maxLines", lines)))
        if kind == "ActionSet":
            return 12 + 36
        if kind == "Container":
            return 12 + sum(height(item) for item in element.get("items", []))
        return 12 + 20

    return sum(height(element) for element in card["body"]) + (48 if card.get("actions") else 0)


CASES = {
    "one of each": [open_delegation(n, status) for n, status in enumerate(OPEN, start=1)],
    "forty of unknown outcome": [
        open_delegation(n, DelegationStatus.UNKNOWN, error=f"no answer after 60 s {LONG}") for n in range(1, 41)
    ],
    "one running": [open_delegation(1, DelegationStatus.RUNNING)],
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_open_delegations_card_is_valid_and_a_screen_tall_however_many_there_are(case: str) -> None:
    card = card_of(CASES[case])
    assert schema_errors(card) == []
    assert folded_height(card) <= TALLEST
    assert serialized_size(card) <= CARD_BUDGET_BYTES


def test_each_delegation_gets_the_buttons_its_status_allows_and_they_run_retry_and_cancel() -> None:
    card = card_of(CASES["one of each"])
    buttons: dict[str, list[str]] = {}
    for container in (e for e in elements(card) if e.get("type") == "Container" and "id" not in e):
        title = next(e["text"] for e in container["items"] if e.get("type") == "TextBlock")
        actions = [a for e in container["items"] if e.get("type") == "ActionSet" for a in e["actions"]]
        buttons[title.split(" ")[0]] = [a["title"] for a in actions]
        registry = default_registry()
        for action in actions:
            assert registry.get(action["verb"]).name in ("retry_delegation", "cancel_delegation")
            assert action["data"]["delegation"] == title.split(" ")[0]
    by_status = {f"D{n}": status for n, status in enumerate(OPEN, start=1)}
    assert {by_status[ref]: titles for ref, titles in buttons.items()} == {
        DelegationStatus.QUEUED: ["Cancel"],
        DelegationStatus.DEFERRED: ["Cancel"],
        DelegationStatus.RUNNING: [],
        DelegationStatus.HELD: ["Cancel"],
        DelegationStatus.UNKNOWN: ["Retry", "Cancel"],
    }
    text = all_text(card)
    assert "waiting for a person's approval" in text
    assert "deferred: its agent is down" in text
    assert "outcome unknown: check with the vendor, then retry or cancel" in text
    assert "asked by Content Writer" in text


def test_beyond_the_first_few_the_rest_fold_behind_show_more() -> None:
    card = card_of(CASES["forty of unknown outcome"])
    hidden = element_by_id(card, MORE_ID)
    assert hidden["isVisible"] is False
    shown = SHOWN + len(hidden["items"])
    [toggle] = card["actions"]
    assert (toggle["type"], toggle["title"], toggle["targetElements"]) == (
        "Action.ToggleVisibility",
        f"Show {len(hidden['items'])} more",
        [MORE_ID],
    )
    # What Teams could not carry in one message is counted, and the typed commands named.
    assert f"{40 - shown} more not shown: `retry D12` and `cancel D12`" in all_text(card).replace("\\", "")


def test_an_agent_s_error_shows_as_its_characters_never_as_a_link() -> None:
    hostile = "failed: [log in here](https://evil.example/x) \x1b[2J"
    card = card_of([open_delegation(1, DelegationStatus.UNKNOWN, error=hostile)])
    text = all_text(card)
    assert "\x1b" not in text
    assert "[log in here]" in text
    assert "](https://evil.example/x)" not in text  # a word joiner keeps it from being read as a link
