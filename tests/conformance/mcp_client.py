"""Our MCP client under the MCP conformance suite's client scenarios (npm `@modelcontextprotocol/conformance`).

The suite starts a scenario's server and runs `python -m tests.conformance.mcp_client <server-url>` with the scenario's
name in `MCP_CONFORMANCE_SCENARIO`. This drives the adapter as the bot does: `MCPAgent` connects (loopback allowed),
lists the tools, and delegates a call of each with input made from its schema; a question the server asks is answered
by a person who accepts what the server proposes. Run every scenario with `.ci/mcp-conformance`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from typing import Any

from adapters.egress import Egress
from adapters.mcp import MCPAgent, MCPConfig
from planner.ports import AgentError, DelegationRequest, HumanChannel

_SAMPLE = {"number": 1, "integer": 1, "boolean": True, "string": "x"}


class AgreeingPerson(HumanChannel):
    """Answers every question with "ok": a form's defaults stand, a page is taken as visited."""

    async def ask(self, question: str, *, timeout_seconds: float) -> str:
        return "ok"


def sample_input(schema: dict[str, Any]) -> dict[str, Any]:
    """A value for each required field of a tool's input schema."""
    properties = schema.get("properties") or {}
    return {name: _SAMPLE.get(str(properties.get(name, {}).get("type")), "x") for name in schema.get("required") or []}


async def run(url: str) -> int:
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    oauth = {}
    if context.get("client_id") and context.get("client_secret"):  # a service agent's OAuth client
        oauth = {"oauth_client_id": context["client_id"], "oauth_client_secret": context["client_secret"]}
    config = MCPConfig(name="conformance", transport="http", url=url, connect_timeout_seconds=20, **oauth)
    async with MCPAgent(config, egress=Egress.allowing("127.0.0.0/8", "::1/128")) as agent:
        try:
            capabilities = await agent.capabilities()
            for capability in capabilities:
                request = DelegationRequest(
                    capability=capability.name, input=sample_input(capability.input_schema), timeout_seconds=20
                )
                result = await agent.delegate(request, human=AgreeingPerson())
                print(f"{capability.name}: {result.status.value} {result.output[:200]!r}")
        except AgentError as error:
            print(f"failed: {error}", file=sys.stderr)
            return 1
    return 0


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    print(f"scenario {os.environ.get('MCP_CONFORMANCE_SCENARIO', '?')}", file=sys.stderr)
    sys.exit(asyncio.run(run(sys.argv[-1])))


if __name__ == "__main__":
    main()
