"""What comes back from an MCP tool, as the owner sees it: a big answer is kept whole as an artifact with an excerpt
to read, over streamable HTTP and over stdio alike (the vendor agent's `export_report`)."""

from __future__ import annotations

import pytest

from adapters.mcp import EXCERPT_CHARS, RESULT_CAP_BYTES
from planner.domain.delegations import DelegationStatus
from planner.ports import DelegationRequest
from tests.adapters.test_mcp_elicitation import vendor


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_a_big_answer_is_kept_whole_as_an_artifact_and_the_output_is_an_excerpt(transport: str) -> None:
    request = DelegationRequest(capability="export_report", input={"campaign": "abm-q1", "kib": 2048})
    async with vendor(transport) as agent:
        result = await agent.delegate(request)
    assert result.status is DelegationStatus.SUCCEEDED
    [artifact] = result.evidence
    assert (artifact.kind, artifact.media_type) == ("artifact", "text/plain; charset=utf-8")
    assert len(artifact.content) == 2048 * 1024
    assert artifact.content.startswith(b"abm-q1,sends,opens,clicks\n")
    assert result.output.startswith("abm-q1,sends,opens,clicks\n")
    assert len(result.output) < EXCERPT_CHARS + 100
    assert result.output.endswith("(an excerpt: the whole answer, 2.0 MiB, is kept as a file)")


async def test_an_answer_under_the_cap_is_shown_whole_with_its_raw_result() -> None:
    request = DelegationRequest(capability="export_report", input={"campaign": "abm-q1", "kib": 100})
    async with vendor("http") as agent:
        result = await agent.delegate(request)
    assert len(result.output) == 100 * 1024 < RESULT_CAP_BYTES
    assert [item.kind for item in result.evidence] == ["json"]
