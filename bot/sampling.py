"""The bot's model lent to an MCP server that asks (sampling), when the operator turned it on (COS_MCP_SAMPLING=on
with ANTHROPIC_API_KEY): one Messages API call, text in and text out, with no tools, so what the model writes for an
agent goes back to the agent and can act on nothing. Each tenant's requests pass its policy gate first
(`planner/governance/sampling.py`)."""

from __future__ import annotations

from typing import Any

import anthropic

from bot.llm import LLMUnavailable, create_message
from planner.ports import Sampled, Sampler, SamplingDeclined, SamplingRequest

RULES = """You are writing for a software agent (a vendor's tool) that asked to borrow a language model while doing a \
task for a marketing team. Do what its messages ask, in plain text. You have no tools and cannot act: you only write \
the text the agent gets back."""
"""Before the agent's own system prompt, which follows as it gave it."""


class ClaudeSampler(Sampler):
    """Claude, through the project's client, answering an agent's sampling request."""

    def __init__(self, client: anthropic.AsyncAnthropic, *, model: str) -> None:
        self.client = client
        self.model = model

    async def sample(self, request: SamplingRequest) -> Sampled:
        """Raises SamplingDeclined when the model cannot be used."""
        system: list[dict[str, Any]] = [{"type": "text", "text": RULES}]
        if request.system:
            system.append({"type": "text", "text": request.system})
        try:
            response = await create_message(
                self.client,
                model=self.model,
                max_tokens=request.max_tokens,
                system=system,
                messages=[{"role": role, "content": text} for role, text in request.messages],
            )
        except LLMUnavailable as error:
            raise SamplingDeclined(f"the bot's model could not be used just now ({error})") from None
        text = "".join(block.text for block in response.content if block.type == "text")
        return Sampled(text=text, model=response.model, truncated=response.stop_reason == "max_tokens")
