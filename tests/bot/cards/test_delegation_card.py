"""The cards of work handed to an agent, as the person who delegated reads them in Teams: the delegation's card (live,
then its result), an agent's question, and the admin's adapters card. Each is valid Adaptive Card 1.5 and fits a
Teams screen before "Show more"; they say names and words where an id or an enum would do."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bot.cards.adapters import MORE_ID, SHOWN, AdapterShown, adapters_card
from bot.cards.delegation import ANSWER_ID, ANSWER_LINES, ArtifactShown, delegation_card
from bot.cards.elements import CARD_BUDGET_BYTES, serialized_size
from bot.cards.question import question_card
from bot.operations.delegation import settings_line
from bot.text import messages
from planner.domain.adapters import RegisteredAdapter
from planner.domain.delegations import Delegation, DelegationStatus
from tests.bot.cards.card_height import card_height
from tests.bot.cards.test_cards import all_text, element_by_id, schema_errors, texts, top_actions

AT = datetime(2026, 3, 2, 10, 4, tzinfo=UTC)
TALLEST = 1200
CSV = "".join(f"spring-launch,week {week},{week * 100} sends\n" for week in range(1, 41))


def delegation(**changes: Any) -> Delegation:
    base = Delegation(
        id=7,
        tenant_id="contoso",
        task_id=12,
        adapter="marketing",
        adapter_kind="mcp",
        capability="export_report",
        input={},
        timeout_seconds=60,
        actor="aad-lead",
        status=DelegationStatus.SUCCEEDED,
        queued_at=AT,
        seconds=12.14,
        attempts=1,
        progress=("1/2: exported part 1", "2/2: exported part 2"),
        output=CSV,
        data={"result": CSV},
    )
    return replace(base, **changes)


def test_a_delegation_card_is_titled_by_its_task_and_says_its_status_in_words() -> None:
    card = delegation_card(delegation(), title="Export the spring launch report", lead="It is back.")
    assert schema_errors(card) == []
    assert texts(card)[:4] == [
        "Export the spring launch report",
        "Delegated to marketing: export_report (D7)",
        "It is back.",
        "Done in 12.1 s",
    ]
    assert "Delegation D7" not in all_text(card)
    assert "succeeded" not in all_text(card)  # the status's word, not its enum value
    assert "attempt(s)" not in all_text(card)
    retried = delegation_card(delegation(attempts=3, status=DelegationStatus.FAILED, seconds=4.0, output=None))
    assert texts(retried)[0] == "Task T12"  # a task that is gone: its number
    assert "Failed in 4.0 s, after 3 attempts" in texts(retried)
    running = delegation_card(delegation(status=DelegationStatus.RUNNING, seconds=None, output=None, data=None))
    assert "Running" in texts(running)


def test_an_answer_of_many_lines_is_shown_a_line_each_its_first_lines_then_show_the_whole_answer() -> None:
    card = delegation_card(delegation(), title="Export the spring launch report")
    lines = CSV.splitlines()
    assert texts(card).count(lines[0]) == 1  # once: the answer's data (`result`) is not said again
    assert "Data from marketing:" not in all_text(card)
    first = texts(card).index(lines[0])
    assert texts(card)[first : first + len(lines)] == lines  # a line a block: none run into one paragraph
    rest = element_by_id(card, ANSWER_ID)
    assert rest["isVisible"] is False
    assert [item["text"] for item in rest["items"]] == lines[ANSWER_LINES:]
    assert element_by_id(card, f"{ANSWER_ID}-more")["actions"][0]["title"] == "Show the whole answer"
    assert card_height(card) <= TALLEST
    # An answer of thousands of one-character lines: joined past a point, so the card still goes out.
    dots = delegation_card(delegation(output="x\n" * 5000, data=None))
    assert serialized_size(dots) <= CARD_BUDGET_BYTES
    assert schema_errors(dots) == []


def test_an_answer_longer_than_the_card_links_to_the_whole_answer_kept_as_a_file() -> None:
    long = "".join(f"row {n}: spring-launch sends\n" for n in range(400))
    whole = ArtifactShown(description="", size=len(long), url="https://cos.example/a/1")
    card = delegation_card(delegation(output=long, data=None), [whole])
    assert element_by_id(card, f"{ANSWER_ID}-more")["actions"][0]["title"] == "Show more of the answer"
    assert (
        "The whole answer (11 KiB) is a file: open it with the button below (a link of mine, valid 7 days)."
        in texts(card)
    )
    assert [a["title"] for a in top_actions(card)] == ["Open the whole answer (11 KiB)"]
    # Longer than the delegation keeps as its output too: the file holds it whole, so nothing more is said.
    assert "The answer was longer" not in all_text(delegation_card(delegation(output=long, output_cut=True), [whole]))
    # With no file to open (too big to keep), the card says the answer was cut.
    cut = delegation_card(delegation(output=long, output_cut=True))
    assert "The answer was longer: I keep its first 200,000 characters." in texts(cut)


def test_data_other_than_the_answer_is_shown_and_a_single_screenshot_is_said_so() -> None:
    shot = ArtifactShown(description="the created brief", size=2048, url="https://cos.example/e/1", kind="screenshot")
    card = delegation_card(
        delegation(adapter="briefs", output="Brief BR-1001 created", data={"brief_id": "BR-1001"}), [shot]
    )
    assert "Data from briefs:" in texts(card)
    assert "brief_id: BR-1001" in all_text(card)
    assert (
        "A screenshot briefs took, the fields it filled masked: open it with its button below (a link of mine, valid "
        "7 days)." in texts(card)
    )
    assert [a["title"] for a in top_actions(card)] == ["View evidence: the created brief"]


def test_the_result_s_lead_says_what_to_do_next_in_words_the_card_shows_literally() -> None:
    assert (
        messages.delegation_result_lead("succeeded", "crm", 3)
        == "It is back: check it, and mark the task done when it is."
    )
    unknown = messages.delegation_result_lead("unknown", "crm", 3)
    assert unknown.endswith('then say "retry D3" or "cancel D3".')
    assert "`" not in unknown  # a card shows it literally: no Markdown meant in it


def test_a_question_card_shows_a_line_each_a_field_as_a_bullet_and_how_long_there_is() -> None:
    asked = (
        "Send spring-launch now?\n- Confirm (yes or no, required)\n- Audience Size (a whole number, required)\n"
        'Reply with "name: value" for each field.'
    )
    card = question_card("marketing", asked, 5)
    assert schema_errors(card) == []
    assert texts(card) == [
        "A question from marketing",
        "Send spring-launch now?",
        "• Confirm (yes or no, required)",
        "• Audience Size (a whole number, required)",
        'Reply with "name: value" for each field.',
        'Reply here within 5 minutes, or say "cancel". I pass your answer on once and don\'t keep it.',
    ]
    flooded = question_card("marketing", "a line of the agent's\n" * 1000, 5)
    assert len(texts(flooded)) <= 27
    assert card_height(flooded) <= TALLEST


def adapter(n: int, **changes: Any) -> AdapterShown:
    base = AdapterShown(
        title=f"mcp:agent{n} · enabled · circuit closed (calls go through)",
        heard="last success 2 Mar 10:04",
        error="last error 2 Mar 09:00: the agent did not answer within 60 s",
        settings="transport: http · url: https://agent.example/mcp · bearer_token: set",
        capabilities=[f"↳ tool_{t} (on, no gate of its own)" for t in range(6)],
    )
    return replace(base, **changes)


def test_the_adapters_card_shows_each_adapter_apart_the_first_few_and_the_rest_behind_show_more() -> None:
    card = adapters_card([adapter(n) for n in range(1, 9)])
    assert schema_errors(card) == []
    assert texts(card)[0] == "Agent adapters: 8"
    assert card_height(card) <= TALLEST
    hidden = element_by_id(card, MORE_ID)
    assert hidden["isVisible"] is False
    assert len(hidden["items"]) == 8 - SHOWN
    assert element_by_id(card, f"{MORE_ID}-more")["actions"][0]["title"] == f"Show {8 - SHOWN} more"
    errors = [block for block in card["body"][1]["items"] if block.get("color") == "attention"]
    assert [block["text"] for block in errors] == ["last error 2 Mar 09:00: the agent did not answer within 60 s"]


def test_an_adapters_settings_read_as_one_line_its_parts_named_and_never_spelled_out_as_json() -> None:
    browser = RegisteredAdapter(
        id=1,
        tenant_id="contoso",
        kind="browser",
        name="briefs",
        config={
            "origins": ["https://flows.example.com"],
            "headless": True,
            "chromium_path": None,
            "login": {"steps": [{"kind": "goto", "url": "https://flows.example.com/signin"}]},
            "capabilities": {"create_workflow": {"steps": []}},
        },
        secret_fields=("credentials",),
        created_by="aad-lead",
        created_at=AT,
        updated_at=AT,
    )
    assert settings_line(browser) == (
        "headless: true · origins: https://flows.example.com · credentials: set · also capabilities, login"
    )
