"""Our MCP client under the MCP conformance suite's client scenarios (npm `@modelcontextprotocol/conformance`).

The suite starts a scenario's server and runs `python -m tests.conformance.mcp_client <server-url>` with the scenario's
name in `MCP_CONFORMANCE_SCENARIO`. This drives the adapter as the bot does: `MCPAgent` connects (loopback allowed),
lists the tools, and delegates a call of each with input made from its schema; a question the server asks is answered
by a person who accepts what the server proposes. Run every scenario with `.ci/mcp-conformance`.

The auth scenarios run as an admin would register the server: a service agent's OAuth client (client credentials)
where the scenario gives one for that grant, otherwise the authorization-code grant, the bot acting as the person who
delegates (a client the scenario pre-registered when it gives one; else the bot's client metadata document where the
server supports those, else dynamic registration). The person signs in as in a browser: their sign-in page is opened
and the authorization server's redirect back to the bot is where the sign-in ends, its parameters handed back as the
bot's callback route hands them (tests/adapters/test_mcp_oauth.py drives that route itself).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx2

from adapters.egress import Egress
from adapters.mcp import MCPAgent, MCPConfig
from planner.ports import AgentError, DelegationRequest, HumanChannel, acting_for

_SAMPLE = {"number": 1, "integer": 1, "boolean": True, "string": "x"}


class AgreeingPerson(HumanChannel):
    """Answers every question with "ok": a form's defaults stand, a page is taken as visited."""

    async def ask(self, question: str, *, timeout_seconds: float) -> str:
        return "ok"


CLIENT_METADATA_URL = "https://conformance-test.local/client-metadata.json"
"""Where the bot's client metadata document would be published: the address the suite expects as a URL client id."""
REDIRECT_URI = "http://127.0.0.1:3978/api/oauth/callback"
CLIENT_CREDENTIALS = {"auth/client-credentials-basic"}
"""The scenarios of a service agent; every other auth scenario is a person's sign-in."""


class SigningInPerson:
    """Signs in as a browser would: opens the sign-in page, and ends where the authorization server sends them back."""

    user_id = "a-member"

    async def sign_in(self, agent: str, authorization_url: str, *, timeout_seconds: float) -> Mapping[str, str]:
        async with httpx2.AsyncClient(timeout=timeout_seconds) as browser:
            page = await browser.get(authorization_url)
        back = urlsplit(page.headers.get("location", ""))
        return dict(parse_qsl(back.query))


def config_for(scenario: str, url: str, context: Mapping[str, Any]) -> MCPConfig:
    """How an admin would register the scenario's server (see the module doc)."""
    oauth: dict[str, Any] = {}
    client = {"oauth_client_id": context.get("client_id"), "oauth_client_secret": context.get("client_secret")}
    if context.get("private_key_pem"):  # a service agent that signs its token requests with its key
        oauth = {
            "oauth_grant": "client_credentials",
            "oauth_client_id": context.get("client_id"),
            "oauth_private_key": context["private_key_pem"],
            "oauth_signing_algorithm": context.get("signing_algorithm", "RS256"),
        }
    elif scenario in CLIENT_CREDENTIALS:
        oauth = {"oauth_grant": "client_credentials", **client}
    elif scenario.startswith("auth/"):
        oauth = {"oauth_grant": "authorization_code"}
        if context.get("client_id") and context.get("client_secret"):
            oauth.update(client)
        else:
            oauth["oauth_client_metadata_url"] = CLIENT_METADATA_URL
    return MCPConfig(name="conformance", transport="http", url=url, connect_timeout_seconds=20, **oauth)


def sample_input(schema: dict[str, Any]) -> dict[str, Any]:
    """A value for each required field of a tool's input schema."""
    properties = schema.get("properties") or {}
    return {name: _SAMPLE.get(str(properties.get(name, {}).get("type")), "x") for name in schema.get("required") or []}


async def run(url: str) -> int:
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    config = config_for(os.environ.get("MCP_CONFORMANCE_SCENARIO", ""), url, context)
    egress = Egress.allowing("127.0.0.0/8", "::1/128")
    async with MCPAgent(config, egress=egress, redirect_uri=REDIRECT_URI) as agent:
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


async def run_as_a_person(url: str) -> int:
    with acting_for(SigningInPerson()):
        return await run(url)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    print(f"scenario {os.environ.get('MCP_CONFORMANCE_SCENARIO', '?')}", file=sys.stderr)
    sys.exit(asyncio.run(run_as_a_person(sys.argv[-1])))


if __name__ == "__main__":
    main()
