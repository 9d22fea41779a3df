"""The card that asks a person to sign in to a vendor agent that acts as them (an MCP server behind OAuth)."""

from __future__ import annotations

from typing import Any

from bot.cards.elements import adaptive_card, heading, text_block


def sign_in_card(agent: str, url: str, minutes: int) -> dict[str, Any]:
    """Which agent asks, for how long the link works, and a Sign in button opening the vendor's sign-in page."""
    body = [
        heading(f"Sign in to {agent}"),
        text_block(f"{agent} works as you. Sign in once and I'll carry on with what you asked."),
        text_block(f"The link works once, for {minutes} minutes.", subtle=True, spacing="small"),
    ]
    return adaptive_card(body, [{"type": "Action.OpenUrl", "title": "Sign in", "url": url}])
