"""The card that asks a person to sign in to a vendor agent that acts as them (an MCP server behind OAuth), and the
same card once the sign-in ended, updated in place without its button."""

from __future__ import annotations

from typing import Any

from bot.cards.elements import adaptive_card, heading, text_block

START_PATH = "/api/oauth/start/{sign_in}"
"""The bot's route the Sign in button opens (signed, expiring): it sends the browser on to the vendor's sign-in page,
whose address (it holds the request's state) is kept sealed and never put in the card (bot/http/oauth_callback.py)."""


def sign_in_card(agent: str, url: str, minutes: int) -> dict[str, Any]:
    """Which agent asks, for how long the link works, and a Sign in button opening `url`: the bot's signed link that
    sends the person on to the vendor's sign-in page."""
    body = [
        heading(f"Sign in to {agent}"),
        text_block(f"{agent} works as you. Sign in once and I'll carry on with what you asked."),
        text_block(f"The link works once, for {minutes} minutes.", subtle=True, spacing="small"),
    ]
    return adaptive_card(body, [{"type": "Action.OpenUrl", "title": "Sign in", "url": url}])


SIGNED_IN, REFUSED, EXPIRED = "signed in", "refused", "expired"
"""How a sign-in ended: the person signed in; the vendor or the person refused it; the link was not used in time."""


def sign_in_ended_card(agent: str, outcome: str) -> dict[str, Any]:
    """The sign-in card once the sign-in ended: what became of it, and no button (its link works no more)."""
    if outcome == SIGNED_IN:
        title, said = f"Signed in to {agent}", f"Done: {agent} works as you now. I'm carrying on with what you asked."
    elif outcome == REFUSED:
        title = f"Not signed in to {agent}"
        said = f"The sign-in was refused or cancelled, so {agent} can't work as you. Ask again to get a new link."
    else:
        title = f"Sign-in to {agent} expired"
        said = "The link was not used in time and works no more. Ask again to get a new one."
    return adaptive_card([heading(title), text_block(said)])
