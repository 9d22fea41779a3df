"""A delegation's card: how it went, and the agent's answer shown as the agent's words, never as the bot's; and the
steering card of the delegations people may want to act on, with Retry and Cancel buttons.

The answer is shown literally (bot/cards/markdown.py): a `[click](https://…)` in it shows as those characters, with
no link behind them, and so do emphasis, images and HTML. The web addresses in it are then listed apart, each whole
and under a label saying they come from the agent, so the owner sees where each one leads before opening it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from bot.cards.actions import execute
from bot.cards.elements import (
    Element,
    action_set,
    adaptive_card,
    bullet_list,
    container,
    fact_set,
    heading,
    largest_fitting,
    text_block,
)
from bot.controls import without_controls
from planner.domain.delegations import CANCELLABLE, RETRYABLE, Delegation, DelegationStatus

ANSWER_CHARS = 1500
"""How much of an agent's answer a card shows (the whole answer is kept with the delegation)."""
ERROR_CHARS = 500
MOST_LINKS = 5
MOST_STEPS = 5
"""How many of the last progress steps an agent reported a card shows."""
_STEP_CHARS = 200
MOST_FACTS = 8
"""How many of the top-level fields of an agent's structured answer a card shows."""
_FACT_CHARS = 120
MOST_SCREENSHOTS = 4
"""How many screenshots a card has a "View evidence" button for (Teams shows six buttons under a card at most)."""
_BUTTON_CHARS = 60


def _compact(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


_LINK_CHARS = 200

_URL = re.compile(r"(?i)\bhttps?://[^\s<>\"'`\])}]+")
_TRAILING = ".,;:!?*_~"
"""Punctuation that ends a sentence more often than an address."""


def links_in(text: str, *, most: int = MOST_LINKS) -> list[str]:
    """The distinct http(s) addresses in `text` (a Markdown link's target too), in order of first appearance."""
    found: dict[str, None] = {}
    for match in _URL.finditer(without_controls(text)):
        url = match.group(0).rstrip(_TRAILING)
        try:
            host = urlsplit(url).hostname
        except ValueError:
            continue
        if host:
            found.setdefault(url[:_LINK_CHARS], None)
        if len(found) >= most:
            break
    return list(found)


@dataclass(frozen=True, kw_only=True)
class ArtifactShown:
    """A file kept with the delegation (the agent's whole answer, too big to show), and our signed link to it."""

    description: str
    size: int
    url: str | None
    """A signed link of ours, or a `data:` URI for a small image; None when the bot has no public address to link to."""
    kind: str = "artifact"
    """`artifact` (a file to open), `image` (shown in the card) or `screenshot` (a browser agent's, opened from a
    "View evidence" button)."""


def delegation_card(delegation: Delegation, artifacts: Sequence[ArtifactShown] = ()) -> dict[str, Any]:
    """The card of a delegation's outcome: status, timing, the agent's answer (as data) and its links, the files kept
    with it, the problem."""
    adapter = delegation.adapter
    body = [heading(f"Delegation D{delegation.id}"), text_block(f"Status: {delegation.status.value}")]
    if delegation.seconds is not None:
        body.append(text_block(f"Took {delegation.seconds:.1f} s over {delegation.attempts} attempt(s)", subtle=True))
    if delegation.progress:
        steps = [without_controls(step)[:_STEP_CHARS] for step in delegation.progress[-MOST_STEPS:]]
        body += [
            text_block(f"Progress {adapter} reported:", subtle=True, spacing="small"),
            bullet_list(steps, subtle=True),
        ]
    if delegation.output:
        answer = delegation.output[:ANSWER_CHARS]
        shown = [
            text_block(f"{adapter}'s answer, as it gave it:", weight="bolder"),
            text_block(answer + ("…" if len(delegation.output) > ANSWER_CHARS else "")),
        ]
        links = links_in(delegation.output)
        if links:
            shown += [
                text_block(
                    f"Links in {adapter}'s answer (from the agent, not from me: open one only if you expect it):",
                    subtle=True,
                    spacing="medium",
                ),
                bullet_list(links, subtle=True),
            ]
        body.append(container(shown, style="emphasis", spacing="medium"))
    actions: list[dict[str, Any]] = []
    if delegation.data:
        facts = [
            (without_controls(str(key))[:_FACT_CHARS], without_controls(_compact(value))[:_FACT_CHARS])
            for key, value in list(delegation.data.items())[:MOST_FACTS]
        ]
        body += [text_block(f"Data {adapter} returned:", subtle=True, spacing="small"), fact_set(facts)]
    for image in artifacts:
        if image.kind == "image" and image.url and image.url.startswith(("data:image/", "https://")):
            body.append({"type": "Image", "url": image.url, "altText": f"{image.description} (from {adapter})"})
    for artifact in artifacts:
        if artifact.kind != "artifact":
            continue
        size = (
            f"{artifact.size / 1024 / 1024:.1f} MiB" if artifact.size >= 1024 * 1024 else f"{artifact.size // 1024} KiB"
        )
        where = "open it with the button below (a link of mine, valid 7 days)" if artifact.url else "kept with it"
        body.append(text_block(f"The whole answer ({size}) is a file: {where}.", subtle=True, spacing="small"))
        if artifact.url:
            actions.append({"type": "Action.OpenUrl", "title": f"Open the whole answer ({size})", "url": artifact.url})
    screenshots = [shot for shot in artifacts if shot.kind == "screenshot"]
    if screenshots:
        where = (
            "open each with its button below (links of mine, valid 7 days)"
            if any(shot.url for shot in screenshots)
            else "kept with it"
        )
        left = len(screenshots) - MOST_SCREENSHOTS
        more = f" The first {MOST_SCREENSHOTS} have buttons; the other {left} are kept with it." if left > 0 else ""
        body.append(
            text_block(
                f"{len(screenshots)} screenshot(s) {adapter} took, fields it filled masked: {where}.{more}",
                subtle=True,
                spacing="small",
            )
        )
        for shot in screenshots[:MOST_SCREENSHOTS]:
            if shot.url:
                title = without_controls(f"View evidence: {shot.description or 'screenshot'}")
                title = title if len(title) <= _BUTTON_CHARS else title[: _BUTTON_CHARS - 1] + "…"
                actions.append({"type": "Action.OpenUrl", "title": title, "url": shot.url})
    if delegation.error:
        body.append(text_block(f"Problem: {delegation.error[:ERROR_CHARS]}", color="attention"))
    return adaptive_card(body, actions)


VERB_RETRY = "retry_delegation"
VERB_CANCEL = "cancel_delegation"
VIEW = "open_delegations"
"""Said by the card's buttons, so that what they run answers with the card refreshed."""
SHOWN = 5
"""Delegations shown before "Show more": each row is about 110 px tall, so the card stays within ~1,200 px folded."""
MORE_ID = "delegations-more"
_TITLE_CHARS = 80
_NOTE_CHARS = 160

STATUS_WORDS: Mapping[DelegationStatus, str] = {
    DelegationStatus.QUEUED: "about to run",
    DelegationStatus.RUNNING: "running",
    DelegationStatus.HELD: "waiting for a person's approval",
    DelegationStatus.DEFERRED: "deferred: its agent is down, it runs once the agent is back",
    DelegationStatus.UNKNOWN: "outcome unknown: check with the vendor, then retry or cancel",
}


def _steering(delegation: Delegation) -> list[Element]:
    buttons: list[Element] = []
    ref: dict[str, object] = {"delegation": f"D{delegation.id}", "view": VIEW}
    if delegation.status in RETRYABLE:
        buttons.append(execute("Retry", VERB_RETRY, ref, style="positive"))
    if delegation.status in CANCELLABLE:
        buttons.append(execute("Cancel", VERB_CANCEL, ref, style="destructive"))
    return [action_set(buttons)] if buttons else []


def _row(delegation: Delegation, *, title: str, asker: str, when: Callable[[datetime], str], first: bool) -> Element:
    since = delegation.started_at or delegation.queued_at
    status = STATUS_WORDS.get(delegation.status, delegation.status.value)
    note = f"{status} · since {when(since)} · asked by {asker}"
    if delegation.error and delegation.status is not DelegationStatus.RUNNING:
        note += f" · {delegation.error[:_NOTE_CHARS]}"
    items: list[Element] = [
        {
            **text_block(
                f"D{delegation.id} · {title[:_TITLE_CHARS]} → {delegation.adapter} {delegation.capability}",
                weight="bolder",
            ),
            "maxLines": 2,
        },
        {**text_block(without_controls(note), subtle=True, spacing="none"), "maxLines": 2},
        *_steering(delegation),
    ]
    return container(items, separator=not first, spacing="medium")


def delegations_card(
    delegations: Sequence[Delegation],
    *,
    titles: Mapping[int, str],
    names: Mapping[str, str],
    when: Callable[[datetime], str],
    everyone: bool,
    note: str | None = None,
) -> Element:
    """The delegations people may want to steer (running, waiting for a person, deferred, of unknown outcome), newest
    first, each with its Retry and Cancel buttons where they apply; the first few show, the rest fold behind "Show
    more". `titles`: task titles by id; `names`: people's names by user id; `when`: a time in the reader's words;
    `everyone`: the tenant's (an admin's view) rather than the reader's own; `note`: what a button just did."""
    whose = "Open delegations" if everyone else "Your open delegations"
    rows = [
        _row(
            d,
            title=titles.get(d.task_id, f"T{d.task_id}"),
            asker=names.get(d.actor, d.actor),
            when=when,
            first=index in (0, SHOWN),
        )
        for index, d in enumerate(delegations)
    ]

    def build(count: int) -> Element:
        body: list[Element] = [heading(f"{whose}: {len(rows)}")]
        if note:
            body.append(text_block(note, color="good"))
        body += rows[: min(count, SHOWN)]
        actions: list[Element] = []
        hidden = rows[SHOWN:count]
        if hidden:
            body.append({**container(hidden), "id": MORE_ID, "isVisible": False})
            actions.append(
                {"type": "Action.ToggleVisibility", "title": f"Show {len(hidden)} more", "targetElements": [MORE_ID]}
            )
        if count < len(rows):
            left = f"{len(rows) - count} more not shown: `retry D12` and `cancel D12` work on any of them."
            body.append(text_block(left, subtle=True, spacing="medium"))
        return adaptive_card(body, actions)

    return largest_fitting(build, len(rows))
