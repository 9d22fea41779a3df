"""What comes back from an MCP tool, as the owner sees it: a big answer is kept whole as an artifact with an excerpt
to read, over streamable HTTP and over stdio alike (the vendor agent's `export_report`)."""

from __future__ import annotations

import pytest

from adapters.mcp import EXCERPT_CHARS, RESULT_CAP_BYTES, MCPConfig
from planner.domain.delegations import DelegationStatus
from planner.ports import AgentConfigInvalid, DelegationRequest
from tests.adapters.test_mcp_elicitation import vendor
from tests.adapters.vendor_agent import tiny_png


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


def test_timeouts_per_adapter_and_per_capability_are_checked_and_kept() -> None:
    config = MCPConfig.from_dict(
        {
            "transport": "http",
            "url": "https://agent.vendor.example/mcp",
            "timeout_seconds": 120,
            "capabilities_timeouts": {"slow_report": 900},
        },
        name="vendor",
    )
    assert config.to_dict()["timeout_seconds"] == 120
    assert config.to_dict()["capabilities_timeouts"] == {"slow_report": 900}
    with pytest.raises(AgentConfigInvalid) as invalid:
        MCPConfig.from_dict(
            {
                "transport": "http",
                "url": "https://agent.vendor.example/mcp",
                "timeout_seconds": 0,
                "capabilities_timeouts": {"slow_report": "long"},
            },
            name="vendor",
        )
    assert invalid.value.problems == [
        "timeout_seconds must be a number of seconds above 0, 3600 at most",
        "capabilities_timeouts must map capability names to seconds above 0, 3600 at most, e.g. {'slow_report': 600}",
    ]


async def test_images_that_are_what_they_say_are_kept_and_resource_links_listed_as_text() -> None:
    request = DelegationRequest(capability="campaign_visual", input={"campaign": "abm-q1"})
    async with vendor("stdio") as agent:
        result = await agent.delegate(request)
    assert result.output == (
        "Banner of abm-q1\n\nResources campaign_visual pointed to:\n- banner.psd: https://cdn.vendor.example/abm-q1.psd"
    )
    [image] = [item for item in result.evidence if item.kind == "image"]  # the SVG passed off as a PNG is not
    assert image.media_type == "image/png"
    assert image.content == tiny_png()


def test_a_service_agent_s_oauth_client_is_checked_and_its_secret_never_shown() -> None:
    config = MCPConfig.from_dict(
        {
            "transport": "http",
            "url": "https://agent.vendor.example/mcp",
            "oauth_client_id": "cos-service",
            "oauth_client_secret": "s3cret-value",
            "oauth_scope": "reports:read",
        },
        name="vendor",
    )
    assert "s3cret-value" not in repr(config)
    assert "oauth_client_secret" not in config.to_dict()
    assert config.to_dict(with_secrets=True)["oauth_client_secret"] == "s3cret-value"
    with pytest.raises(AgentConfigInvalid) as invalid:
        MCPConfig.from_dict(
            {
                "transport": "http",
                "url": "http://agent.vendor.example/mcp",
                "oauth_client_id": "cos-service",
                "oauth_client_secret": "s3cret-value",
                "bearer_token": "tok",
            },
            name="vendor",
        )
    assert "give either an OAuth client or a bearer token, not both" in invalid.value.problems
    assert "OAuth credentials are only sent over https (or plain http to a loopback address)" in invalid.value.problems
    with pytest.raises(AgentConfigInvalid, match="go together"):
        MCPConfig.from_dict({"transport": "http", "url": "https://a.example/mcp", "oauth_client_id": "x"}, name="v")
