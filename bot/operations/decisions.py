"""The decision log in Teams: `why T12` explains the latest decisions about something; `decisions` lists them."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from bot.cards import message_card
from bot.operations.base import BadArguments, Context, Operation, Reply
from bot.parsing import MAX_ID
from bot.text import messages
from bot.text.decisions import (
    EXPLAINED_CHANGES,
    describe_subject,
    explain,
    explain_change,
    people_in,
    rationale_text,
)
from bot.text.people import person_name
from planner.domain.decisions import Decision
from planner.domain.governance import ActionKind

WHY_SHOWN = 3
LISTED = 10
SEARCHED = 200
"""How many recent entries a question in words (`why was the email paused?`) is matched against."""

_KINDS = {"t": "task", "p": "plan", "d": "delegation", "a": "approval"}
_REFERENCE = re.compile(
    r"(?:(?P<word>task|plan|delegation|approval)\s*:?\s*)?(?P<letter>[tpda])?\s*#?(?P<id>\d+)", re.IGNORECASE
)
_STOPWORDS = frozenset(
    {"why", "was", "were", "did", "does", "the", "this", "that", "what", "who", "which", "when", "with", "from"}
    | {"have", "has", "been", "for", "and", "you", "your", "our", "its", "not", "didn't", "wasn't", "isn't", "are"}
)
# A question's words, to the words the log uses for the same thing.
_SYNONYMS = {
    "paused": "stop",
    "pause": "stop",
    "blocked": "stop",
    "stopped": "stop",
    "held": "flag",
    "flagged": "flag",
    "allowed": "go",
    "approve": "approved",
    "reject": "rejected",
    "mail": "email",
    "emails": "email",
}


def subject_of(value: object) -> str:
    """`T12` → `task:12`, `D5` → `delegation:5`, `P3` → `plan:3`, `A4` → `approval:4` (a bare number is a task)."""
    raw = " ".join(str(value).split()).strip(" ?.!").lower()
    match = _REFERENCE.fullmatch(raw)
    if not match:
        raise BadArguments(messages.WHY_WHAT)
    word, letter = match.group("word"), match.group("letter")
    kind = word or (_KINDS[letter] if letter else "task")
    return f"{kind}:{int(match.group('id'))}"


def _number(value: object) -> int:
    raw = str(value).strip().lstrip("#")
    # ASCII digits ("¹".isdigit() is true), of a number the database's ids can hold
    if not re.fullmatch(r"[0-9]{1,18}", raw) or int(raw) > MAX_ID:
        raise BadArguments(messages.WHY_WHAT)
    return int(raw)


def _words(text: str) -> set[str]:
    words = {w for w in re.findall(r"[a-z_']+", text.lower()) if len(w) > 2 and w not in _STOPWORDS}
    return {_SYNONYMS.get(w, w) for w in words}


def _matching(entries: Sequence[Decision], question: str) -> list[Decision]:
    """The entries that share the most words with the question (newest first); none if nothing matches."""
    wanted = _words(question)
    if not wanted:
        return []
    scored = []
    for entry in entries:
        haystack = " ".join(
            (entry.action, entry.subject, entry.verdict, rationale_text(entry), *entry.rules, str(entry.data))
        ).lower()
        score = sum(1 for word in wanted if word in haystack)
        if score:
            scored.append((score, entry))
    best = max((score for score, _ in scored), default=0)
    return [entry for score, entry in scored if score == best]


async def _explained(context: Context, entries: Sequence[Decision]) -> str:
    names = await context.display_names(person for entry in entries for person in people_in(entry))
    return "\n\n".join(messages.decision_explained(entry.seq, explain(entry, names=names)) for entry in entries)


async def _changes(context: Context, subject: str) -> list[str]:
    """The latest fixes people made to the task or plan `subject` names (edits, moves, deletion, archiving)."""
    kind, _, ident = subject.partition(":")
    if kind not in ("task", "plan") or int(ident) > MAX_ID:
        return []
    events = await context.plans.events(subject_type=kind, subject_id=int(ident), limit=SEARCHED)
    fixes = [event for event in events if event.kind in EXPLAINED_CHANGES][:WHY_SHOWN]
    owners = [str(v) for e in fixes for v in ((e.before or {}).get("owner"), (e.after or {}).get("owner")) if v]
    names = await context.display_names([*(e.actor for e in fixes), *owners])
    return [messages.change_explained(explain_change(event, names=names)) for event in fixes]


async def _budget_history(context: Context, subject: str) -> list[str]:
    """A plan's latest budget changes and spend, from its events (lowering an allocation passes no gate, so only its
    event tells of it)."""
    kind, _, number = subject.partition(":")
    if kind != "plan" or not number.isdigit():
        return []
    events = await context.plans.events(subject_type="plan", subject_id=int(number), limit=100)
    changes = [e for e in events if e.kind.startswith(("budget.", "spend."))][:WHY_SHOWN]
    if not changes:
        return []
    names = await context.display_names(e.actor for e in changes)
    return [messages.budget_history([messages.budget_event(e, names.get(e.actor, e.actor)) for e in changes])]


async def explain_decision(context: Context, args: Mapping[str, Any]) -> Reply:
    log = context.services.decisions
    if args.get("decision") not in (None, ""):
        return Reply(text=await _explained(context, [await log.get(_number(args["decision"]))]))
    about = context.optional_text_arg(args, "about")
    if about is not None:
        subject = subject_of(about)
        entries = await log.about(subject, limit=WHY_SHOWN)
        changes = await _changes(context, subject)
        history = await _budget_history(context, subject)
        if not entries and not changes and not history:
            return Reply(text=messages.no_decisions_about(describe_subject(subject)))
        decided = await _explained(context, entries) if entries else ""
        return Reply(text="\n\n".join(part for part in ("\n\n".join(changes), decided, *history) if part))
    question = context.optional_text_arg(args, "question")
    if question is None:
        raise BadArguments(messages.WHY_WHAT)
    found = _matching(await log.entries(limit=SEARCHED, newest_first=True), question)
    if not found:
        return Reply(text=messages.NO_DECISION_MATCHES, ok=False)
    return Reply(text=await _explained(context, found[:WHY_SHOWN]))


async def show_decisions(context: Context, args: Mapping[str, Any]) -> Reply:
    log = context.services.decisions
    about = context.optional_text_arg(args, "about")
    if about is not None:
        subject = subject_of(about)
        entries = await log.about(subject, limit=LISTED)
        title = f"Decisions about {describe_subject(subject)}"
    else:
        entries = await log.entries(limit=LISTED, newest_first=True)
        title = "Latest decisions"
    if not entries:
        return Reply(text=messages.no_decisions_about(describe_subject(subject)) if about else messages.NO_DECISIONS)
    names = await context.display_names(person for entry in entries for person in people_in(entry))
    lines = [
        messages.decision_line(
            seq=entry.seq,
            when=f"{entry.at:%Y-%m-%d %H:%M} UTC",
            actor=person_name(entry.actor, names),
            verdict=entry.verdict,
            subject=describe_subject(entry.subject),
            rationale=rationale_text(entry, names=names),
        )
        for entry in entries
    ]
    return Reply(text=messages.DECISIONS_HINT, cards=(message_card(title, lines),))


OPERATIONS = (
    Operation(
        name="explain_decision",
        summary=(
            "Why something happened: the latest decisions about a task, delegation, plan or approval request, or one "
            "decision by number, in plain words (who or which agent, the rules that matched, the reason, the "
            "approval). Read-only."
        ),
        usage=("why T12", "why D5", "why P3", "why A3", "why decision 17"),
        parameters={
            "type": "object",
            "properties": {
                "about": {"type": "string", "description": "a task (T12), delegation (D5), plan (P3) or approval (A3)"},
                "decision": {"type": "integer", "description": "a decision's number in the log"},
                "question": {"type": "string", "description": "the question in words, when nothing is named"},
            },
        },
        run=explain_decision,
        kind=ActionKind.READ,
    ),
    Operation(
        name="show_decisions",
        summary="The latest entries of the decision log, optionally only those about one task, delegation or plan.",
        usage=("decisions [T12]",),
        parameters={
            "type": "object",
            "properties": {"about": {"type": "string", "description": "T12, D5, P3 or A3"}},
        },
        run=show_decisions,
        kind=ActionKind.READ,
    ),
)
