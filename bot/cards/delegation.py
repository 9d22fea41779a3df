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
    folded,
    heading,
    largest_fitting,
    text_block,
)
from bot.controls import without_controls
from planner.domain.delegations import (
    CANCELLABLE,
    MAX_OUTPUT_CHARS,
    RETRYABLE,
    SHOWN_ANSWER_CHARS,
    Delegation,
    DelegationStatus,
)

ANSWER_CHARS = SHOWN_ANSWER_CHARS
"""How much of an agent's answer a card shows (a longer answer is kept whole as a file the card links to)."""
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


ANSWER_LINES = 12
"""Lines of an agent's answer a card shows before "Show the whole answer" (the rest, up to ANSWER_CHARS, unfolds)."""
ANSWER_ID = "answer-rest"
_ANSWER_MOST_LINES = 60
"""Lines of an answer shown apart at most (the rest joined into the last), so that a card of many short lines stays
within CARD_BUDGET_BYTES."""


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _status_line(delegation: Delegation) -> Element:
    words = STATUS_WORDS.get(delegation.status, delegation.status.value)
    line = words[0].upper() + words[1:]
    if delegation.seconds is not None:
        line += f" in {delegation.seconds:.1f} s"
        if delegation.attempts > 1:
            line += f", after {_plural(delegation.attempts, 'attempt')}"
    color = {DelegationStatus.SUCCEEDED: "good", DelegationStatus.FAILED: "attention"}.get(delegation.status)
    return text_block(line, weight="bolder", color=color, spacing="small")


def _answer(output: str) -> list[Element]:
    """The agent's answer line by line (a TextBlock joins lines), its first lines shown, the rest folded."""
    cut = output[:ANSWER_CHARS] + ("…" if len(output) > ANSWER_CHARS else "")
    lines = [line for line in without_controls(cut).splitlines() if line.strip()] or [""]
    if len(lines) > _ANSWER_MOST_LINES:
        lines[_ANSWER_MOST_LINES - 1 :] = [" ".join(lines[_ANSWER_MOST_LINES - 1 :])]
    shown = [{**text_block(line), "spacing": "none"} for line in lines]
    more = "Show the whole answer" if len(output) <= ANSWER_CHARS else "Show more of the answer"
    return shown[:ANSWER_LINES] + folded(ANSWER_ID, shown[ANSWER_LINES:], more=more, less="Show less of it")


def delegation_card(
    delegation: Delegation,
    artifacts: Sequence[ArtifactShown] = (),
    *,
    title: str | None = None,
    lead: str | None = None,
) -> dict[str, Any]:
    """The card of a delegation, as it runs and where it ended: its task, agent and status, the steps the agent
    reported, its answer (as data, line by line) and its links, the files kept with it, the problem.

    `title`: the task's title (else its number); `lead`: what the card is for, said under its title (a card sent
    without text, which is updated in place)."""
    adapter = delegation.adapter
    body = [
        heading(title[:_TITLE_CHARS] if title else f"Task T{delegation.task_id}"),
        text_block(f"Delegated to {adapter}: {delegation.capability} (D{delegation.id})", subtle=True, spacing="none"),
    ]
    if lead:
        body.append(text_block(lead, spacing="small"))
    body.append(_status_line(delegation))
    if delegation.progress:
        steps = [without_controls(step)[:_STEP_CHARS] for step in delegation.progress[-MOST_STEPS:]]
        body += [
            text_block(f"What {adapter} reported as it went:", subtle=True, spacing="small"),
            bullet_list(steps, subtle=True),
        ]
    output = delegation.output.strip() if delegation.output else ""
    if output:
        shown = [text_block(f"The answer from {adapter}, as it gave it:", weight="bolder"), *_answer(output)]
        links = links_in(delegation.output or "")
        if links:
            shown += [
                text_block(
                    f"Links in the answer from {adapter} (from the agent, not from me: open one only if you expect "
                    "it):",
                    subtle=True,
                    spacing="medium",
                ),
                bullet_list(links, subtle=True),
            ]
        if delegation.output_cut and not any(item.kind == "artifact" for item in artifacts):
            shown.append(
                text_block(
                    f"The answer was longer: I keep its first {MAX_OUTPUT_CHARS:,} characters.",
                    subtle=True,
                    spacing="medium",
                )
            )
        body.append(container(shown, style="emphasis", spacing="medium"))
    actions: list[dict[str, Any]] = []
    if delegation.data:
        # A tool that answers text has it wrapped as data too (`{"result": …}`): that is the answer, not said twice.
        facts = [
            (without_controls(str(key))[:_FACT_CHARS], without_controls(_compact(value))[:_FACT_CHARS])
            for key, value in list(delegation.data.items())[:MOST_FACTS]
            if _compact(value).strip() != output
        ]
        if facts:
            body += [text_block(f"Data from {adapter}:", subtle=True, spacing="small"), fact_set(facts)]
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
        one = len(screenshots) == 1
        if any(shot.url for shot in screenshots):
            where = f"open {'it' if one else 'each'} with its button below (a link of mine, valid 7 days)"
        else:
            where = "kept with the delegation"
        left = len(screenshots) - MOST_SCREENSHOTS
        more = f" The first {MOST_SCREENSHOTS} have buttons; the other {left} are kept with it." if left > 0 else ""
        taken = "A screenshot" if one else f"{len(screenshots)} screenshots"
        body.append(
            text_block(
                f"{taken} {adapter} took, the fields it filled masked: {where}.{more}",
                subtle=True,
                spacing="small",
            )
        )
        for shot in screenshots[:MOST_SCREENSHOTS]:
            if shot.url:
                title_ = without_controls(f"View evidence: {shot.description or 'screenshot'}")
                title_ = title_ if len(title_) <= _BUTTON_CHARS else title_[: _BUTTON_CHARS - 1] + "…"
                actions.append({"type": "Action.OpenUrl", "title": title_, "url": shot.url})
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
    DelegationStatus.SUCCEEDED: "done",
    DelegationStatus.FAILED: "failed",
    DelegationStatus.CANCELLED: "cancelled",
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
