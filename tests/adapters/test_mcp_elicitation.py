"""A server's question mid-call (elicitation) relayed to the person who delegated, and progress kept as steps: the
project's vendor agent over stdio, over streamable HTTP of the 2026 era and of the 2025 era (standalone requests)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from adapters.mcp import MCPAgent
from adapters.mcp_elicitation import read_reply
from planner.domain.delegations import DelegationStatus
from planner.ports import AgentTimeout, DelegationRequest, HumanChannel
from tests.adapters.operator import LOOPBACK
from tests.adapters.test_mcp import WAIT, http_vendor, stdio_vendor, vendor_agent


class Person(HumanChannel):
    """A person answering in their 1:1 chat: each question is recorded, each answer given in turn."""

    def __init__(self, *answers: str | None) -> None:
        self.answers = list(answers)
        self.questions: list[str] = []

    async def ask(self, question: str, *, timeout_seconds: float) -> str:
        self.questions.append(question)
        answer = self.answers.pop(0)
        if answer is None:  # nobody answers, or the person says cancel
            raise AgentTimeout("vendor", timeout_seconds)
        return answer


def send_campaign() -> DelegationRequest:
    return DelegationRequest(capability="send_campaign", input={"campaign": "spring-launch"}, timeout_seconds=WAIT)


@contextlib.asynccontextmanager
async def vendor(transport: str) -> AsyncIterator[MCPAgent]:
    """The vendor agent over `transport`: `stdio`, `http` (2026 era) or `legacy` (2025 era, with a session)."""
    if transport == "stdio":
        agent = MCPAgent(stdio_vendor(), egress=LOOPBACK)
        try:
            yield agent
        finally:
            await agent.close()
        return
    async with vendor_agent(legacy=transport == "legacy") as process:
        agent = MCPAgent(http_vendor(process), egress=LOOPBACK)
        try:
            yield agent
        finally:
            await agent.close()


@pytest.mark.parametrize("transport", ["stdio", "http", "legacy"])
async def test_the_server_s_question_is_asked_of_the_person_and_their_answer_sent_back(transport: str) -> None:
    person = Person("audience size: 1 200\nconfirm: yes\ntone: Casual")
    async with vendor(transport) as agent:
        result = await agent.delegate(send_campaign(), human=person)
    assert result.status is DelegationStatus.SUCCEEDED, result.error
    assert result.output == "spring-launch sent to 1200 recipients in a casual tone"
    [question] = person.questions
    assert question.startswith("Send spring-launch now? Confirm, and say how many recipients you expect.")
    assert "(yes or no, required)" in question
    assert "(one of formal, casual)" in question


@pytest.mark.parametrize("transport", ["stdio", "legacy"])
async def test_a_reply_that_cannot_be_read_is_asked_again_naming_the_field(transport: str) -> None:
    person = Person("confirm: yes\naudience size: lots", "confirm: yes\naudience size: 300")
    async with vendor(transport) as agent:
        result = await agent.delegate(send_campaign(), human=person)
    assert result.output == "spring-launch sent to 300 recipients in a formal tone"
    assert person.questions[1].startswith("I could not read that: Audience Size must be a whole number.")


async def test_a_person_who_declines_or_does_not_answer_is_told_to_the_server_as_such() -> None:
    async with vendor("stdio") as agent:
        declined = await agent.delegate(send_campaign(), human=Person("decline"))
        unanswered = await agent.delegate(send_campaign(), human=Person(None))
    assert declined.output == "spring-launch not sent: the person answered decline"
    assert unanswered.output == "spring-launch not sent: the person answered cancel"


async def test_with_no_one_to_ask_the_question_is_declined_not_hung() -> None:
    async with vendor("legacy") as agent:
        result = await agent.delegate(send_campaign())
    assert result.output == "spring-launch not sent: the person answered decline"


async def test_the_time_the_person_takes_does_not_count_against_the_call_s_timeout() -> None:
    class SlowPerson(Person):
        async def ask(self, question: str, *, timeout_seconds: float) -> str:
            await asyncio.sleep(1.5)  # the person reading and typing; longer than the call may take
            return await super().ask(question, timeout_seconds=timeout_seconds)

    person = SlowPerson("confirm: yes\naudience size: 10")
    async with vendor("stdio") as agent:
        await agent.capabilities()  # the session is open: the call's timeout is the call's own
        request = DelegationRequest(capability="send_campaign", input={"campaign": "abm-q1"}, timeout_seconds=1.0)
        result = await agent.delegate(request, human=person)
    assert result.output == "abm-q1 sent to 10 recipients in a formal tone"


@pytest.mark.parametrize("transport", ["stdio", "legacy"])
async def test_progress_the_server_reports_is_kept_as_steps(transport: str) -> None:
    request = DelegationRequest(capability="export_report", input={"campaign": "abm-q1", "steps": 3})
    async with vendor(transport) as agent:
        result = await agent.delegate(request)
    assert result.status is DelegationStatus.SUCCEEDED
    assert result.progress == (
        "1/3: exported part 1 of abm-q1",
        "2/3: exported part 2 of abm-q1",
        "3/3: exported part 3 of abm-q1",
    )


def test_a_reply_is_read_as_the_form_s_typed_values() -> None:
    fields = [
        ("count", {"type": "integer", "minimum": 1}, True),
        ("ok", {"type": "boolean"}, False),
        ("channels", {"type": "array", "items": {"enum": ["email", "ads"]}}, False),
    ]
    assert read_reply('{"count": 3, "ok": true, "channels": "email, ads"}', fields) == (
        {"count": 3, "ok": True, "channels": ["email", "ads"]},
        None,
    )
    assert read_reply("ok: no", fields) == (None, "count is required")
    assert read_reply("count: 0", fields) == (None, "count must be between 1 and …")
    assert read_reply("count: 2\nchannels: fax", fields) == (
        None,
        "channels must be one or more of email, ads, separated by commas",
    )
    assert read_reply("448 912", [("code", {"type": "string"}, True)]) == ({"code": "448 912"}, None)


def test_fields_given_on_one_line_are_read_as_well() -> None:
    fields = [
        ("confirm", {"type": "boolean", "title": "Confirm"}, True),
        ("audience_size", {"type": "integer", "title": "Audience Size"}, True),
    ]
    assert read_reply("confirm: yes, audience size: 4 800", fields) == ({"confirm": True, "audience_size": 4800}, None)
    assert read_reply("Audience_size=12; Confirm: no", fields) == ({"confirm": False, "audience_size": 12}, None)


def test_fields_the_person_leaves_out_take_the_server_s_defaults() -> None:
    fields = [
        ("name", {"type": "string", "default": "a new user"}, False),
        ("age", {"type": "integer", "default": 30}, False),
        ("status", {"type": "string", "enum": ["active", "inactive"], "default": "active"}, False),
    ]
    assert read_reply("ok", fields) == ({"name": "a new user", "age": 30, "status": "active"}, None)
    assert read_reply("age: 41", fields) == ({"name": "a new user", "age": 41, "status": "active"}, None)
