"""Every command `help` and the README show works exactly as written: each example is read by the grammar, and the
ones that need no agent or earlier request run against a fresh plan, as a leader who is also an admin."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bot.grammar import VERBS, parse
from bot.operations import Caller, Context, default_registry
from bot.text import messages
from planner.domain.model import MetricSpec, Window
from planner.services.plans import Plans
from planner.services.tenants import Tenants
from planner.store import Store
from tests.conftest import FakeClock

README = Path(__file__).parents[2] / "README.md"
TENANT = "contoso"
PLACEHOLDERS = {
    "DATE": "2026-03-20",
    "TEXT": "no paid social",
    "NAME": "hubspot",
    "CONFIG": '{"transport": "http", "url": "https://agent.example/mcp"}',
    "@PERSON": "@Designer",
    "WHO": "Designer",
    "RULES": '{"rules": []}',
}
"""What a reader puts for each word in CAPITALS (the help says a word in capitals is theirs to fill in)."""
NOT_RUN = {
    "delegate_task": "needs a vendor agent",
    "register_adapter": "needs a vendor agent",
    "test_adapter": "needs a vendor agent",
    "switch_adapter": "needs a registered adapter",
    "remove_adapter": "needs a registered adapter",
    "list_tools": "needs a registered MCP adapter",
    "switch_tool": "needs a registered MCP adapter",
    "classify_capability": "needs a registered adapter",
    "retry_delegation": "needs delegation D12",
    "cancel_delegation": "needs delegation D12",
    "confirm_draft": "needs draft 3",
    "discard_draft": "needs draft 3",
    "approve_request": "needs approval request A3",
    "reject_request": "needs approval request A3",
    "replay_outbox": "needs dead letters 12 and 13",
    "why decision 17": "needs 17 decisions in the log",
    "move_budget": "needs a finance approver and a second tactical plan P3",
    "list_adapters": "needs delegation set up (COS_SECRET_KEYS)",
    "show_delegations": "needs delegation set up (COS_SECRET_KEYS)",
}
"""Operations (or single examples) that cannot run on a fresh plan without more around them: those are only read."""
FIRST = {
    "remove_approver": "approvers add legal @PERSON",
    "use_playbook": "save playbook P2 as product launch",
    "edit_task": "tactical Spring launch from 2026-02-02 to 2026-03-13 in P1",
    "restore_task": "delete T12",
    "archive_plan": "archive P2",
    "allocate_budget": "budget P1 250k USD",
    "record_spend": "budget P1 250k USD",
}
"""What a reader would have done before an example that undoes or reuses something."""


def command_examples(text: str) -> list[str]:
    """The code spans and code block lines of `text` that start with a command."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.DOTALL)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    spans = re.findall(r"(?<!`)`([^`\n]+)`(?!`)", re.sub(r"```[a-z]*\n.*?```", "", text, flags=re.DOTALL))
    return [
        example
        for example in lines + spans
        if any(example.lower() == verb or example.lower().startswith(verb + " ") for verb in VERBS)
    ]


def filled(example: str) -> str:
    return " ".join(PLACEHOLDERS.get(word, word) for word in example.split(" "))


@pytest.mark.parametrize("text", [messages.HELP, messages.WELCOME_TEXT, messages.EMPTY_MESSAGE])
def test_help_shows_no_markup_teams_would_show_as_entities(text: str) -> None:
    assert not re.search(r"[<>]|&\w+;", text)


def test_the_help_of_one_command_shows_its_forms_without_angle_brackets() -> None:
    for operation in default_registry():
        for line in operation.usage:
            assert not re.search(r"[<>]", messages.usage_of([line])), line


async def a_plan_to_try_commands_on(store: Store) -> None:
    """P1 a master plan for the year, P2 a tactical plan under it, both with SQLs; T1 to T12 on P2."""
    plans = Plans(store, TENANT)
    sqls = [MetricSpec(name="SQLs", target=500, unit="SQL")]
    share = [MetricSpec(name="SQLs", target=200, unit="SQL")]
    year = Window(start=date(2026, 1, 1), end=date(2026, 12, 31))
    master = await plans.create_master_plan(
        title="500 SQLs", owner="aad-lead", window=year, metrics=sqls, actor="aad-lead"
    )
    quarter = Window(start=date(2026, 1, 5), end=date(2026, 3, 31))
    tactical = await plans.create_tactical_plan(
        master.id, title="Winter campaign", owner="aad-lead", window=quarter, metrics=share, actor="aad-lead"
    )
    for day in range(1, 13):
        await plans.add_task(tactical.id, title=f"Step {day}", due_on=date(2026, 2, day), actor="aad-lead")


HELP_EXAMPLES = command_examples(messages.HELP)
README_EXAMPLES = command_examples(README.read_text(encoding="utf-8"))


def test_help_and_the_readme_show_commands_a_person_can_type() -> None:
    assert len(HELP_EXAMPLES) >= 50
    assert len(README_EXAMPLES) >= 50


@pytest.mark.parametrize("example", sorted(set(HELP_EXAMPLES + README_EXAMPLES)))
async def test_every_example_of_help_and_the_readme_works_as_written(
    store: Store, clock: FakeClock, example: str
) -> None:
    command = parse(filled(example))
    if example in NOT_RUN or command.operation in NOT_RUN:
        pytest.skip(NOT_RUN.get(example) or NOT_RUN[command.operation])
    clock.now = datetime(2026, 2, 16, 9, tzinfo=UTC)
    await a_plan_to_try_commands_on(store)
    caller = Caller(
        tenant_id=TENANT, user_id="aad-lead", name="Lead", is_admin=True, mentions={"designer": "aad-designer"}
    )
    context = Context(Tenants(store), caller, clock=clock)
    if command.operation in FIRST:
        before = parse(filled(FIRST[command.operation]))
        assert (await default_registry().run(before.operation, context, before.args)).ok
    reply = await default_registry().run(command.operation, context, command.args)
    assert reply.ok, reply.text


def test_help_and_the_readme_name_nobody_the_reader_fills_in_the_person() -> None:
    people = re.compile(r"(?:\bowner|\bassign T\d+ to|\bremind)\s+(@?\w+)|(@\w+)")
    for example in HELP_EXAMPLES + README_EXAMPLES:
        for match in people.finditer(example):
            named = (match.group(1) or match.group(2)).lstrip("@")
            assert named.isupper() or named == "me", example
