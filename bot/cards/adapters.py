"""The admin's card of a tenant's agent adapters: one block an adapter (its state, when it last answered or failed,
where it reaches, its tools or capabilities), the first few shown and the rest folded behind "Show more"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.cards.elements import Element, adaptive_card, container, folded, heading, largest_fitting, text_block

SHOWN = 4
"""Adapters shown before "Show more": each block is a few lines and its tools, so the card stays within a screen."""
MORE_ID = "adapters-more"


@dataclass(frozen=True, kw_only=True)
class AdapterShown:
    title: str
    """`kind:name · enabled · circuit closed`."""
    heard: str
    """When it last answered (or that nothing finished yet)."""
    error: str | None = None
    """Its last error, when it has one."""
    settings: str
    """Where it reaches and how it signs in, in one line."""
    capabilities: Sequence[str] = ()
    """One line a tool or capability, with its state and gates."""


def _block(adapter: AdapterShown, *, first: bool) -> Element:
    items: list[Element] = [
        text_block(adapter.title, weight="bolder"),
        text_block(adapter.heard, subtle=True, spacing="none"),
    ]
    if adapter.error:
        items.append(text_block(adapter.error, color="attention", spacing="none"))
    items.append({**text_block(adapter.settings, subtle=True, spacing="none"), "maxLines": 3})
    items += [text_block(line, spacing="none") for line in adapter.capabilities]
    return container(items, separator=not first, spacing="medium")


def adapters_card(adapters: Sequence[AdapterShown]) -> Element:
    """Every adapter of the tenant, in the order given."""
    blocks = [_block(adapter, first=index in (0, SHOWN)) for index, adapter in enumerate(adapters)]

    def build(count: int) -> Element:
        hidden = blocks[SHOWN:count]
        body = [heading(f"Agent adapters: {len(blocks)}"), *blocks[: min(count, SHOWN)]]
        body += folded(MORE_ID, hidden, more=f"Show {len(hidden)} more", less="Show fewer")
        if count < len(blocks):
            body.append(text_block(f"{len(blocks) - count} more not shown: `adapter test NAME` says more of each."))
        return adaptive_card(body)

    return largest_fitting(build, len(blocks))
