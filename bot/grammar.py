"""The command grammar: what a person types, turned into an operation name and its JSON arguments.

The grammar only reads; the operation checks. A command that does not read gets a reply with its usage.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from bot.cards.markdown import inline_code
from bot.parsing import ParseError, parse_date

VERBS = (
    "help",
    "new plan",
    "set target",
    "edit master",
    "tactical",
    "derive tactical",
    "week",
    "plan",
    "plans",
    "add task",
    "assign",
    "start",
    "done",
    "finish",
    "complete",
    "block",
    "reopen",
    "snooze",
    "task",
    "tasks",
    "my tasks",
    "record",
    "budget",
    "allocate",
    "move",
    "spend",
    "save draft",
    "discard draft",
    "triggers",
    "outbox",
    "adapters",
    "adapter",
    "delegate",
    "delegations",
    "retry",
    "cancel",
    "approvals",
    "approve",
    "reject",
    "approvers",
    "why",
    "decisions",
    "decision",
    "policy",
    "how are we doing",
    "metrics",
    "retro",
    "playbooks",
    "save playbook",
    "use playbook",
    "whoami",
    "edit",
    "rename",
    "move",
    "delete",
    "undo",
    "archive",
    "unarchive",
)


class GrammarError(ValueError):
    """Text that is not a command, or a command missing a part; `operation` names the one meant, if known."""

    def __init__(self, message: str, operation: str | None = None) -> None:
        self.operation = operation
        super().__init__(message)


_HINTS = (
    (("plan", "goal", "strategy", "status", "progress"), "plan"),
    (("task", "todo", "to-do", "due", "deadline", "overdue", "week"), "my tasks"),
    (("kpi", "metric", "doing", "pace", "forecast", "target", "sql", "pipeline"), "how are we doing"),
    (("approve", "approval", "sign off", "signs off", "sign-off"), "approvals"),
    (("why", "reason", "decision"), "decisions"),
    (("agent", "delegat"), "delegations"),
    (("nudge", "remind", "follow"), "triggers"),
)
"""Words of free text, and the command closest to what it asks about."""


def closest_command(text: str) -> str | None:
    """The command closest to `text`: a near-spelling of its first words, else one its words are about."""
    words = text[:200].lower().split()  # a command's words come first; comparing more only takes longer
    spelled = [
        (difflib.SequenceMatcher(None, " ".join(words[: len(verb.split())])[: len(verb) + 8], verb).ratio(), verb)
        for verb in (*VERBS, "show plan")
    ]
    score, verb = max(spelled)
    if score >= 0.75:
        return verb
    lowered = text[:1000].lower()
    for keywords, command in _HINTS:
        if any(keyword in lowered for keyword in keywords):
            return command
    close = difflib.get_close_matches(words[0] if words else "", VERBS, n=1, cutoff=0.5)
    return close[0] if close else None


class UnknownCommand(GrammarError):
    """Text that is no command; `suggestion` is the command closest to it, or the one that does what it asks."""

    def __init__(self, text: str, suggestion: str | None = None) -> None:
        words = text.lower().split()
        self.word = words[0] if words else ""
        self.suggestion = suggestion or closest_command(text)
        super().__init__(self.word)


@dataclass(frozen=True)
class Command:
    operation: str
    args: dict[str, Any] = field(default_factory=dict)


def _first(clauses: Mapping[str, list[str]], *keywords: str) -> str | None:
    """The first text of the first of `keywords` that has one."""
    for keyword in keywords:
        if clauses.get(keyword):
            return clauses[keyword][0]
    return None


def _clauses(
    text: str, keywords: tuple[str, ...], reads: Mapping[str, Callable[[str], bool]] | None = None
) -> tuple[str, dict[str, list[str]]]:
    """Split `text` at the keywords (whole words): the head, and each keyword's texts in order.

    A keyword in `reads` starts a clause only where its text reads as that clause (`in` a plan id, `on` a date);
    elsewhere it is a word of the text before it, as in "Launch in Paris".
    """
    head, segments = _segments(text, keywords)
    found: dict[str, list[str]] = {}
    last: list[str] | None = None
    for keyword, value in segments:
        check = (reads or {}).get(keyword.lower())
        if check is not None and not check(value):
            if last is None:
                head = f"{head} {keyword} {value}".strip()
            else:
                last[-1] = f"{last[-1]} {keyword} {value}".strip()
            continue
        last = found.setdefault(keyword.lower(), [])
        last.append(value)
    return head, found


def _is_plan(text: str) -> bool:
    return _PLAN_REF.fullmatch(text) is not None


_A_PLAN: dict[str, Callable[[str], bool]] = {"in": _is_plan, "for": _is_plan, "under": _is_plan}


def _kpi(text: str) -> dict[str, Any]:
    """`SQLs 500`, `pipeline 2m USD`, `cost per lead 60 USD from 100 tolerance 15%`."""
    body, options = _clauses(text, ("from", "tolerance", "baseline"))
    tokens = body.split()
    number_at = next((i for i, t in enumerate(tokens) if re.fullmatch(r"[\d.,]+[km%]?", t.lower())), None)
    if not number_at:
        raise GrammarError(
            f"A KPI needs a name then a target, like `kpi SQLs 500`, not {inline_code('kpi ' + text)}.",
            "create_master_plan",
        )
    kpi: dict[str, Any] = {"name": " ".join(tokens[:number_at]), "target": tokens[number_at]}
    if tokens[number_at + 1 :]:
        kpi["unit"] = " ".join(tokens[number_at + 1 :])
    baseline = _first(options, "from", "baseline")
    if baseline:
        kpi["baseline"] = baseline
    if options.get("tolerance"):
        kpi["tolerance"] = options["tolerance"][0]
    return kpi


_FROM = re.compile("from", re.IGNORECASE)
_UNTIL = re.compile("to|until|-", re.IGNORECASE)


def _window(head: str, operation: str) -> tuple[str, str, str]:
    """`<title> from <start> to <end>`: split at the last ` from ` that a ` to ` follows, and the first ` to ` after it.

    Word by word, in one pass each way: a regular expression that backtracks over every ` from ` took seconds on a
    long message full of them, and the bot answers no one while it runs.
    """
    words = head.split()
    last_until = next((j for j in range(len(words) - 2, 2, -1) if _UNTIL.fullmatch(words[j])), None)
    start_at = None
    if last_until is not None:
        start_at = next((i for i in range(last_until - 2, 0, -1) if _FROM.fullmatch(words[i])), None)
    if start_at is None or last_until is None:
        raise GrammarError("I need a title and a window: `TITLE from DATE to DATE`.", operation)
    end_at = next(j for j in range(start_at + 2, last_until + 1) if _UNTIL.fullmatch(words[j]))
    return " ".join(words[:start_at]), " ".join(words[start_at + 1 : end_at]), " ".join(words[end_at + 1 :])


_TASK_MARKERS = ("due", "by", "owner", "for", "to", "in", "milestone")
_QUOTES = {'"': '"', "'": "'", "\u201c": '\u201d"', "\u2018": "\u2019'", "\u00ab": "\u00bb"}
"""Opening quotes and the marks that close them (a curly quote may be closed by a straight one)."""
_ANY_DAY = date(2024, 1, 1)
"""A day to read a date's form against (a leap year, so 29 February reads): only whether it reads matters here."""
_PLAN_REF = re.compile(r"#?p#?\d+", re.IGNORECASE)


def _reads_as_date(text: str) -> bool:
    try:
        parse_date(text, today=_ANY_DAY)
    except ParseError:
        return False
    return True


def _quoted(rest: str) -> tuple[str | None, str]:
    """A title in quotes at the start of `rest` ("…", '…', “…”), and what follows it; (None, rest) without one."""
    closers = _QUOTES.get(rest[:1])
    if closers is None:
        return None, rest
    for end, char in enumerate(rest[1:], start=1):
        if char in closers and (end + 1 == len(rest) or rest[end + 1].isspace()):
            return rest[1:end].strip(), rest[end + 1 :].strip()
    return None, rest


def _segments(text: str, markers: tuple[str, ...]) -> tuple[str, list[tuple[str, str]]]:
    """`text` split at the markers (whole words): the head, then each marker with its text, in order."""
    pattern = re.compile(r"\s+(" + "|".join(re.escape(k) for k in markers) + r")(?=\s)", re.IGNORECASE)
    parts = pattern.split(" " + text.strip() + " ")
    pairs = [(marker, value.strip()) for marker, value in zip(parts[1::2], parts[2::2], strict=True)]
    return parts[0].strip(), pairs


def _task_clause(marker: str, value: str, args: dict[str, Any]) -> bool:
    """Take one clause of `add task` into `args` if it reads as one there; False when it is part of the title."""
    marker = marker.lower()
    if marker in ("due", "by") and "due" not in args and _reads_as_date(value):
        args["due"] = value
    elif marker in ("owner", "for") and "owner" not in args and value:
        args["owner"] = value
    elif marker in ("to", "in") and "plan" not in args and _PLAN_REF.fullmatch(value):
        args["plan"] = value
    elif marker == "milestone" and not value and "milestone" not in args:
        args["milestone"] = True
    else:
        return False
    return True


def _add_task(rest: str) -> Command:
    """`add task <title> [to P2] due <date> [owner <who>] [milestone]`, the clauses in any order after the title.

    A title may hold any words, the markers too: the clauses are the longest run at the end that reads as clauses
    (a date after `due` or `by`, a plan id after `to`/`in`), and a title in quotes is taken whole. A `for <who>`
    right after the title may be part of it ("Plan for Q1 webinar for WHO"): that sentence reads two ways, and the
    command says both (`choose_reading` picks the one that fits the people the bot knows, or asks).
    """
    quoted, rest = _quoted(rest)
    head, segments = _segments(rest, _TASK_MARKERS)
    args: dict[str, Any] = {}
    if quoted is not None:
        unread = [f"{marker} {value}".strip() for marker, value in segments if not _task_clause(marker, value, args)]
        if head or unread:
            raise GrammarError(
                f"After the title in quotes I read `due DATE`, `owner WHO`, `to P2` or `milestone`, not "
                f"{inline_code(head or unread[0])}.",
                "add_task",
            )
        title, maybe_owner = quoted, None
    else:
        dated = (
            i for i, (marker, value) in enumerate(segments) if marker.lower() in ("due", "by") and _reads_as_date(value)
        )
        due_at = max(dated, default=-1)
        cut, maybe_owner, longer = 0, None, ""
        for index in reversed(range(len(segments))):
            marker, value = segments[index]
            if marker.lower() == "for" and index < due_at and "owner" not in args and value:
                cut, maybe_owner = index, value
                longer = " ".join([head, *(f"{m} {v}".strip() for m, v in segments[: index + 1])]).strip()
                break
            if not _task_clause(marker, value, args):
                cut = index + 1
                break
        title = " ".join([head, *(f"{marker} {value}".strip() for marker, value in segments[:cut])]).strip()
        if maybe_owner is not None and not title:  # "for WHO" alone: nothing else could be the title
            title, maybe_owner = longer, None
    if not title:
        raise GrammarError("The task needs a title.", "add_task")
    if "due" not in args:
        raise GrammarError(
            f"When is it due? I read {inline_code(title)} as the whole title: end with `due DATE` (a title in quotes "
            "may say anything).",
            "add_task",
        )
    if maybe_owner is None:
        return Command("add_task", {"title": title, **args})
    return Command(
        "choose_reading",
        {
            "operation": "add_task",
            "person": maybe_owner,
            "as_person": {"title": title, **args, "owner": maybe_owner},
            "as_text": {"title": longer, **args},
        },
    )


def _rest_after(text: str, verb: str) -> str:
    return text[len(verb) :].strip()


def _task_and_rest(rest: str, operation: str, usage: str) -> tuple[str, str]:
    match = re.match(r"^(#?t?#?\d+)\b\s*(.*)$", rest, re.IGNORECASE | re.DOTALL)
    if not match:
        raise GrammarError(f"Which task? Give its id: `{usage}`.", operation)
    return match.group(1), match.group(2).strip()


def _snooze_hours(text: str) -> float:
    match = re.fullmatch(r"(?:for\s+)?(\d+(?:\.\d+)?)\s*(h|hours?|d|days?|w|weeks?)", text.strip(), re.IGNORECASE)
    if not match:
        raise GrammarError("Snooze for a time such as `2 days` or `4 hours`.", "snooze_task")
    amount, unit = float(match.group(1)), match.group(2).lower()[0]
    return amount * {"h": 1, "d": 24, "w": 24 * 7}[unit]


def _strategy_command(text: str, lowered: str) -> Command | None:
    """`set target <KPI> <value> [in P1]` and `edit master [P1] [north star …] [from …] [to …] [constraint …]…`:
    a change of a master plan's goals (`edit_master_plan`); None for any other text."""
    for verb in ("set target", "edit master", "edit master plan"):
        if lowered == verb or lowered.startswith(verb + " "):
            break
    else:
        return None
    rest = _rest_after(text, verb)
    if verb == "set target":
        head, clauses = _clauses(rest, ("in", "for"), _A_PLAN)
        name, _, value = head.rpartition(" ")
        if not name.strip() or not value:
            raise GrammarError("Which KPI, to what? `set target SQLs 600`.", "edit_master_plan")
        targets = {"targets": [{"name": name.strip(), "target": value}]}
        plan = _first(clauses, "in", "for")
        return Command("edit_master_plan", targets | ({"plan": plan} if plan else {}))
    head, clauses = _clauses(
        rest, ("north star", "title", "from", "to", "constraint"), {"from": _reads_as_date, "to": _reads_as_date}
    )
    args: dict[str, Any] = {"plan": head} if head else {}
    for field_name, found in (("title", _first(clauses, "north star", "title")), ("start", _first(clauses, "from"))):
        if found:
            args[field_name] = found
    if clauses.get("to"):
        args["end"] = clauses["to"][0]
    if clauses.get("constraint"):
        args["constraints"] = clauses["constraint"]
    return Command("edit_master_plan", args)


_TASK_FIELDS = {"title": "title", "name": "title", "due date": "due", "due": "due", "owner": "owner"}
_TASK_FIELDS |= {"plan": "plan", "milestone": "milestone"}
_EDIT_TASK_USAGE = "`edit T12 title TEXT`, `edit T12 due DATE`, `edit T12 owner WHO`, `edit T12 milestone yes`"
_EDIT_PLAN_USAGE = "`edit P2 title TEXT`, `edit P2 owner WHO` or `edit P2 from DATE to DATE`"


def _edit(rest: str) -> Command:
    """`edit T12 title|due|owner|plan|milestone VALUE` (one field, so a title may hold any words) or
    `edit P2 title TEXT`, `edit P2 owner WHO`, `edit P2 from DATE to DATE` (or only `from`, only `to`)."""
    match = re.match(r"^(#?([tp])#?\d+)\b\s*(.*)$", rest, re.IGNORECASE | re.DOTALL)
    if not match:
        raise GrammarError(f"Edit which task or plan? {_EDIT_TASK_USAGE}, or {_EDIT_PLAN_USAGE}.", "edit_task")
    ref, letter, body = match.group(1), match.group(2).lower(), match.group(3).strip()
    if letter == "p":
        return _edit_plan(ref, body)
    fields = "|".join(sorted(_TASK_FIELDS, key=len, reverse=True))
    found = re.match(rf"^({fields})\b\s*(.*)$", body, re.IGNORECASE | re.DOTALL)
    if not found or not found.group(2).strip():
        raise GrammarError(f"Change what of {inline_code(ref)}, to what? {_EDIT_TASK_USAGE}.", "edit_task")
    name, value = _TASK_FIELDS[found.group(1).lower()], found.group(2).strip()
    if name == "title":
        quoted, after = _quoted(value)
        if quoted is not None and after:
            raise GrammarError(f"After the title in quotes I expect nothing, not {inline_code(after)}.", "edit_task")
        value = quoted if quoted is not None else value
    if name == "plan" and not _is_plan(value):
        raise GrammarError(f"Move it to which plan? `move {ref} to P3`.", "edit_task")
    return Command("edit_task", {"task": ref, name: value})


def _edit_plan(ref: str, body: str) -> Command:
    found = re.match(r"^(title|name|owner)\b\s*(.*)$", body, re.IGNORECASE | re.DOTALL)
    if found and found.group(2).strip():
        name = "owner" if found.group(1).lower() == "owner" else "title"
        quoted, after = _quoted(found.group(2).strip())
        value = quoted if quoted is not None and not after else found.group(2).strip()
        return Command("edit_plan", {"plan": ref, name: value})
    window = re.fullmatch(r"(?:from\s+(?P<start>.+?))?\s*(?:(?:to|until)\s+(?P<end>.+))?", body, re.IGNORECASE)
    if body and window is not None and (window.group("start") or window.group("end")):
        args = {"plan": ref}
        args |= {"start": window.group("start")} if window.group("start") else {}
        args |= {"end": window.group("end")} if window.group("end") else {}
        return Command("edit_plan", args)
    raise GrammarError(f"Change what of {inline_code(ref)}, to what? {_EDIT_PLAN_USAGE}.", "edit_plan")


_STATUS_WORDS = {
    "done": "done",
    "finished": "done",
    "complete": "done",
    "completed": "done",
    "started": "doing",
    "doing": "doing",
    "in progress": "doing",
    "blocked": "blocked",
    "todo": "todo",
    "to do": "todo",
    "open": "todo",
    "reopened": "todo",
}
_TASK = r"(#?t#?\d+)"
_STATUS = "(" + "|".join(sorted(_STATUS_WORDS, key=len, reverse=True)) + ")"
_EVERYDAY: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), operation)
    for pattern, operation in (
        (
            r"(?:please )?(?:show|give|open|see)(?: me)?(?: the| our| my)?(?: master)? plan(?: (?P<plan>#?p#?\d+))?",
            "plan",
        ),
        (r"(?:show|list|see)(?: me)?(?: all)?(?: the| our)? plans", "plans"),
        (r"(?:what's|whats|what is|anything) (?:due|on my plate|left)(?: for me)?(?: this week| today| now)?", "mine"),
        (r"(?:what's|whats|what is|anything) (?:due|on my plate)(?: for me)? next week", "mine next"),
        (r"(?:show|list|see)(?: me)? my (?:tasks|week) (?:for )?next week", "mine next"),
        (r"(?:show|list|see)(?: me)? my (?:tasks|week)", "mine"),
        (r"(?:mark|set|move|put) " + _TASK + r" (?:as |to )?" + _STATUS, "status"),
        (_TASK + r" (?:is )?(?:now )?" + _STATUS, "status"),
        (
            r"how(?: are|'re| is) (?:we|it|things|the plan) (?:doing|going)(?: (?:on|with|for|in) the)?"
            r"(?: (?:on|with|for|in))?(?: plan)?(?: (?P<plan>#?p#?\d+))?",
            "doing",
        ),
    )
)
_REMIND = re.compile(
    r"remind (?P<who>@?\S+(?: \S+)?) (?:about|of|to) (?P<what>.+?)(?: (?P<by>on|by|before) (?P<when>[\w -]+))?",
    re.IGNORECASE,
)


def _everyday(text: str) -> Command | None:
    """What people write without thinking of commands ("show me the plan", "mark T3 done"), read as the command."""
    sentence = text.strip(" ?!.")
    for pattern, meaning in _EVERYDAY:
        match = pattern.fullmatch(sentence)
        if match is None:
            continue
        plan = match.groupdict().get("plan")
        if meaning == "plan":
            return Command("show_plan", {"plan": plan} if plan else {})
        if meaning == "plans":
            return Command("list_plans")
        if meaning == "mine":
            return Command("my_tasks")
        if meaning == "mine next":
            return Command("my_tasks", {"week": "next"})
        if meaning == "doing":
            return Command("how_are_we_doing", {"plan": plan} if plan else {})
        task, status = match.group(1), match.group(2).lower()
        return Command("set_task_status", {"task": task, "status": _STATUS_WORDS[status]})
    if remind := _REMIND.fullmatch(sentence):
        # Nudges follow tasks: the reminder asked for is a task of theirs, due that day (they hear of it before).
        when = remind.group("when")
        due = when if when and _reads_as_date(when) else "DATE"
        what = (
            remind.group("what") if due != "DATE" or not when else f"{remind.group('what')} {remind.group('by')} {when}"
        )
        raise UnknownCommand(text, f'add task "{what}" due {due} owner {remind.group("who")}')
    return None


_MONEY = r"(?P<amount>[\d][\d.,_]*[km]?)(?:\s*(?P<currency>[a-z]{3})\b)?"
_PLAN_WORD = r"#?p#?\d+"


def _money_args(match: re.Match[str]) -> dict[str, Any]:
    args: dict[str, Any] = {"amount": match.group("amount")}
    if match.group("currency"):
        args["currency"] = match.group("currency").upper()
    return args


def _budget_command(text: str, starts: Callable[..., str | None]) -> Command | None:
    """`budget P1 250k USD`, `allocate 60k USD to P2`, `move 10k USD from P2 to P3`, `spend 12k USD on P2`,
    `spend P2 12,500 USD on 2026-10-15`."""
    if verb := starts("budget", "set budget"):
        rest = _rest_after(text, verb)
        match = re.fullmatch(rf"(?:(?P<plan>{_PLAN_WORD})\s+)?{_MONEY}", rest, re.IGNORECASE)
        if not match:
            raise GrammarError("Which plan's budget, how much? `budget P1 250k USD`.", "set_budget")
        args = _money_args(match)
        if match.group("plan"):
            args["plan"] = match.group("plan")
        return Command("set_budget", args)
    if verb := starts("allocate"):
        rest = _rest_after(text, verb)
        match = re.fullmatch(rf"{_MONEY}\s+(?:to|for)\s+(?P<plan>{_PLAN_WORD})", rest, re.IGNORECASE)
        if not match:
            raise GrammarError("Allocate how much to which plan? `allocate 60k USD to P2`.", "allocate_budget")
        return Command("allocate_budget", {**_money_args(match), "plan": match.group("plan")})
    if verb := starts("move"):
        rest = _rest_after(text, verb)
        pattern = rf"{_MONEY}\s+from\s+(?P<source>{_PLAN_WORD})\s+to\s+(?P<target>{_PLAN_WORD})"
        match = re.fullmatch(pattern, rest, re.IGNORECASE)
        if not match and not rest[:1].isdigit():
            return None  # moving something other than money
        if not match:
            raise GrammarError("Move how much from which plan to which? `move 10k USD from P2 to P3`.", "move_budget")
        return Command(
            "move_budget", {**_money_args(match), "from": match.group("source"), "to": match.group("target")}
        )
    if verb := starts("spend", "spent"):
        rest = _rest_after(text, verb)
        pattern = (
            rf"(?:(?P<first>{_PLAN_WORD})\s+)?{_MONEY}(?:\s+(?:on|for|in)\s+(?P<plan>{_PLAN_WORD}))?"
            r"(?:\s+on\s+(?P<on>.+))?"
        )
        match = re.fullmatch(pattern, rest, re.IGNORECASE)
        if not match or (match.group("first") and match.group("plan")):
            raise GrammarError("Spent how much on which plan? `spend 12k USD on P2`.", "record_spend")
        args = _money_args(match)
        plan = match.group("first") or match.group("plan")
        if plan:
            args["plan"] = plan
        if match.group("on"):
            args["on"] = match.group("on")
        return Command("record_spend", args)
    return None


_LIST_STATUSES = ("todo", "doing", "done", "blocked", "delegated")


def _task_list_args(rest: str) -> dict[str, Any]:
    """`tasks P2 [owner WHO] [overdue] [status blocked]`, the clauses in any order (`blocked` alone too)."""
    args: dict[str, Any] = {}
    words = rest.split()
    index = 0
    while index < len(words):
        word, lowered = words[index], words[index].lower()
        index += 1
        if _is_plan(word) and "plan" not in args:
            args["plan"] = word
        elif lowered == "overdue":
            args["overdue"] = True
        elif lowered in _LIST_STATUSES:
            args["status"] = lowered
        elif lowered == "status" and index < len(words) and words[index].lower() in _LIST_STATUSES:
            args["status"] = words[index].lower()
            index += 1
        elif lowered in ("owner", "of", "for", "by") and index < len(words):
            owner = []
            while index < len(words) and words[index].lower() not in ("overdue", "status", *_LIST_STATUSES):
                if _is_plan(words[index]) and "plan" not in args:
                    break
                owner.append(words[index])
                index += 1
            args["owner"] = " ".join(owner)
        else:
            raise GrammarError(
                f"In a task list I read a plan, `owner WHO`, `overdue` or `status blocked`, not {word!r}: "
                "`tasks P2 owner me overdue`.",
                "tasks",
            )
    return args


def parse(text: str) -> Command:
    """The command in `text`. Raises UnknownCommand, or GrammarError naming the operation meant."""
    text = " ".join(text.strip().split())
    lowered = text.lower()
    if not text:
        raise GrammarError("empty", "help")

    def starts(*verbs: str) -> str | None:
        for verb in verbs:
            if lowered == verb or lowered.startswith(verb + " "):
                return verb
        return None

    if verb := starts("help", "?"):
        return Command("help", {"topic": _rest_after(text, verb)})
    if lowered.rstrip("?") in ("whoami", "who am i"):
        return Command("whoami")
    if (strategy := _strategy_command(text, lowered)) is not None:
        return strategy
    if (everyday := _everyday(text)) is not None:
        return everyday
    if verb := starts("new plan", "new master plan", "create plan"):
        head, clauses = _clauses(_rest_after(text, verb), ("kpi", "constraint", "owner"))
        title, start, end = _window(head, "create_master_plan")
        args: dict[str, Any] = {"title": title, "start": start, "end": end}
        args["kpis"] = [_kpi(k) for k in clauses.get("kpi", [])]
        if clauses.get("constraint"):
            args["constraints"] = clauses["constraint"]
        if clauses.get("owner"):
            args["owner"] = clauses["owner"][0]
        return Command("create_master_plan", args)
    if verb := starts("derive tactical", "draft tactical"):
        args = {}
        for word in _rest_after(text, verb).split():
            if re.fullmatch(r"#?p?#?\d+", word, re.IGNORECASE):
                args["master"] = word
            else:
                args["cadence"] = word.lower()
        return Command("draft_tactical_plans", args)
    if verb := starts("tactical", "new tactical", "add tactical"):
        head, clauses = _clauses(_rest_after(text, verb), ("kpi", "owner", "in", "under"), _A_PLAN)
        title, start, end = _window(head, "add_tactical_plan")
        args = {"title": title, "start": start, "end": end, "kpis": [_kpi(k) for k in clauses.get("kpi", [])]}
        master = _first(clauses, "in", "under")
        if master:
            args["master"] = master
        if clauses.get("owner"):
            args["owner"] = clauses["owner"][0]
        return Command("add_tactical_plan", args)
    if verb := starts("week", "weekly plan", "this week"):
        args = {}
        for word in _rest_after(text, verb).split():
            if re.fullmatch(r"\d{4}-w\d{1,2}", word, re.IGNORECASE):
                args["week"] = word.upper()
            else:
                args["plan"] = word
        return Command("derive_weekly_plan", args)
    if verb := starts("plans", "list plans"):
        rest = _rest_after(text, verb).lower()
        if rest in ("all", "archived", "with archived", "and archived"):
            return Command("list_plans", {"all": True})
        if rest:
            raise GrammarError("Every plan in use: `plans`; archived ones too: `plans all`.", "list_plans")
        return Command("list_plans")
    if verb := starts("rename"):
        renamed = re.fullmatch(r"(#?([tp])#?\d+)\s+(?:to\s+|as\s+)?(.+)", _rest_after(text, verb), re.IGNORECASE)
        if not renamed:
            raise GrammarError("Rename which task or plan? `rename T12 TEXT` or `rename P2 TEXT`.", "edit_task")
        return _edit(f"{renamed.group(1)} title {renamed.group(3)}")
    if verb := starts("edit", "change"):
        return _edit(_rest_after(text, verb))
    if (verb := starts("move")) and not re.match(r"[\d$€£]", _rest_after(text, verb)):  # money moves: a budget shift
        moved = re.fullmatch(r"(#?t?#?\d+)\s+(?:to|into|under)\s+(\S+)", _rest_after(text, verb), re.IGNORECASE)
        if not moved or not _is_plan(moved.group(2)):
            raise GrammarError("Move which task to which plan? `move T12 to P3`.", "edit_task")
        return Command("edit_task", {"task": moved.group(1), "plan": moved.group(2)})
    if verb := starts("delete", "remove"):
        rest = _rest_after(text, verb)
        if _is_plan(rest):
            raise GrammarError(f"A plan is archived, not deleted: `archive {rest}` keeps its history.", "archive_plan")
        task, leftover = _task_and_rest(rest, "delete_task", "delete T12")
        if leftover:
            raise GrammarError("Delete one task at a time: `delete T12`.", "delete_task")
        return Command("delete_task", {"task": task})
    if verb := starts("undo"):
        rest = _rest_after(text, verb)
        if not rest:
            return Command("restore_task")
        if _is_plan(rest):
            return Command("restore_task", {"plan": rest.upper()})
        task, leftover = _task_and_rest(rest, "restore_task", "undo T12")
        if leftover:
            raise GrammarError("Undo what? `undo` (your last change), `undo T12` or `undo P2`.", "restore_task")
        return Command("restore_task", {"task": task})
    if verb := starts("archive", "unarchive"):
        rest = _rest_after(text, verb)
        if not _is_plan(rest):
            raise GrammarError(f"Which plan? `{verb} P2`.", "archive_plan")
        return Command("archive_plan", {"plan": rest, "archived": verb == "archive"})
    if verb := starts("how are we doing", "how are we doing?", "how is it going", "metrics", "digest"):
        rest = _rest_after(text, verb).strip(" ?")
        return Command("how_are_we_doing", {"plan": rest} if rest else {})
    if verb := starts("retro", "retrospective"):
        rest = _rest_after(text, verb).strip()
        return Command("show_retrospective", {"plan": rest} if rest else {})
    if starts("playbooks", "list playbooks"):
        return Command("list_playbooks")
    if verb := starts("save playbook"):
        match = re.match(r"^(\S+)\s+as\s+(.+)$", _rest_after(text, verb), re.IGNORECASE)
        if not match:
            raise GrammarError("Save which plan as what? `save playbook P2 as product launch`.", "save_playbook")
        return Command("save_playbook", {"plan": match.group(1), "name": match.group(2)})
    if verb := starts("use playbook"):
        head, clauses = _clauses(
            _rest_after(text, verb), ("for", "from", "in", "owner"), {"from": _reads_as_date, "in": _is_plan}
        )
        if not head or not clauses.get("for") or not clauses.get("from"):
            raise GrammarError(
                "Which playbook, for what, from when? `use playbook launch for May launch from 2026-05-04`.",
                "use_playbook",
            )
        args = {"name": head, "title": clauses["for"][0], "start": clauses["from"][0]}
        if clauses.get("in"):
            args["master"] = clauses["in"][0]
        if clauses.get("owner"):
            args["owner"] = clauses["owner"][0]
        return Command("use_playbook", args)
    if verb := starts("plan", "show plan", "status", "where are we"):
        rest = _rest_after(text, verb).strip(" ?")
        return Command("show_plan", {"plan": rest} if rest else {})
    if verb := starts("add task", "new task", "task add"):
        return _add_task(_rest_after(text, verb))
    if verb := starts("assign"):
        match = re.match(r"^(\S+)\s+to\s+(.+)$", _rest_after(text, verb), re.IGNORECASE)
        if not match:
            raise GrammarError("Assign which task to whom? `assign T12 to WHO`.", "assign_task")
        return Command("assign_task", {"task": match.group(1), "owner": match.group(2)})
    statuses: tuple[tuple[tuple[str, ...], str], ...] = (
        (("start",), "doing"),
        (("done", "finish", "complete"), "done"),
        (("reopen",), "todo"),
    )
    for verbs, status in statuses:
        if verb := starts(*verbs):
            task, _ = _task_and_rest(_rest_after(text, verb), "set_task_status", f"{verbs[0]} T12")
            return Command("set_task_status", {"task": task, "status": status})
    if verb := starts("block"):
        task, reason = _task_and_rest(_rest_after(text, verb), "set_task_status", "block T12 REASON")
        args = {"task": task, "status": "blocked"}
        if reason:
            args["reason"] = reason.removeprefix("because ").strip()
        return Command("set_task_status", args)
    if verb := starts("snooze"):
        task, rest = _task_and_rest(_rest_after(text, verb), "snooze_task", "snooze T12 2 days")
        return Command("snooze_task", {"task": task, "hours": _snooze_hours(rest)} if rest else {"task": task})
    if verb := starts("tasks", "task list", "list tasks"):
        return Command("tasks", _task_list_args(_rest_after(text, verb)))
    if verb := starts("my tasks", "my week", "mine"):
        rest = _rest_after(text, verb).strip(" ?").lower()
        if rest in ("next week", "for next week", "next"):
            return Command("my_tasks", {"week": "next"})
        return Command("my_tasks")
    if verb := starts("task", "show task", "show"):
        if verb == "show" and _is_plan(_rest_after(text, verb)):
            return Command("show_plan", {"plan": _rest_after(text, verb)})
        if verb == "show" and not re.match(r"#?t?#?\d+\b", _rest_after(text, verb), re.IGNORECASE):
            raise UnknownCommand(text)  # "show me everything" is no question about a task
        task, _ = _task_and_rest(_rest_after(text, verb), "show_task", "task T12")
        return Command("show_task", {"task": task})
    if verb := starts("record", "log"):
        head, clauses = _clauses(_rest_after(text, verb), ("on", "in", "for"), {"on": _reads_as_date, **_A_PLAN})
        match = re.match(r"^(.+?)\s*(?:=|:|\s)\s*(-?[\d.,]+[km%]?)$", head, re.IGNORECASE)
        if not match:
            raise GrammarError("Record which metric at what value? `record SQLs 140`.", "record_metric")
        args = {"metric": match.group(1).strip(), "value": match.group(2)}
        if clauses.get("on"):
            args["on"] = clauses["on"][0]
        plan = _first(clauses, "in", "for")
        if plan:
            args["plan"] = plan
        return Command("record_metric", args)
    if (budget := _budget_command(text, starts)) is not None:
        return budget
    drafts: tuple[tuple[tuple[str, ...], str], ...] = (
        (("save draft", "confirm draft"), "confirm_draft"),
        (("discard draft",), "discard_draft"),
    )
    for verbs, operation in drafts:
        if verb := starts(*verbs):
            rest = _rest_after(text, verb)
            if not rest:
                raise GrammarError("Which draft? `save draft 3`.", operation)
            return Command(operation, {"draft": rest.split()[0]})
    if verb := starts("triggers", "trigger", "follow-up", "followup"):
        words = _rest_after(text, verb).split()
        if not words or words[0].lower() in ("show", "list"):
            return Command("show_triggers")
        action = words[0].lower()
        if action == "reset":
            return Command("reset_triggers")
        if action in ("on", "off", "enable", "disable"):
            if len(words) != 2:
                raise GrammarError("Which trigger? `triggers off weekly`.", "switch_trigger")
            return Command("switch_trigger", {"trigger": words[1], "on": action in ("on", "enable")})
        if action == "set" and len(words) >= 3:
            return Command("set_trigger_setting", {"setting": words[1], "value": " ".join(words[2:])})
        raise GrammarError("Set what to what? `triggers set lead 2`.", "set_trigger_setting")
    if verb := starts("outbox", "dead letters"):
        words = _rest_after(text, verb).split()
        if words and words[0].lower() in ("replay", "retry", "resend"):
            if len(words) < 2:
                raise GrammarError("Which dead letters? `outbox replay 12 13`.", "replay_outbox")
            return Command("replay_outbox", {"ids": "all" if words[1].lower() == "all" else " ".join(words[1:])})
        return Command("show_outbox")
    if starts("adapters", "list adapters"):
        return Command("list_adapters")
    if verb := starts("adapter"):
        match = re.match(r"^(add|register)\s+(\S+)\s+(\S+)\s*(.*)$", _rest_after(text, verb), re.IGNORECASE | re.DOTALL)
        if match:
            return Command(
                "register_adapter", {"kind": match.group(2), "name": match.group(3), "config": match.group(4) or "{}"}
            )
        words = _rest_after(text, verb).split()
        actions = {"test": ("test_adapter", {}), "enable": ("switch_adapter", {"enabled": True})}
        actions |= {"disable": ("switch_adapter", {"enabled": False}), "remove": ("remove_adapter", {})}
        actions |= {"reset": ("reset_adapter", {})}
        if len(words) == 2 and words[0].lower() in actions:
            operation, extra = actions[words[0].lower()]
            return Command(operation, {"name": words[1], **extra})
        if len(words) == 2 and words[0].lower() == "tools":
            return Command("list_tools", {"name": words[1]})
        if len(words) >= 4 and words[0].lower() == "classify":
            return Command("classify_capability", {"name": words[1], "capability": words[2], "gates": words[3:]})
        if len(words) == 3 and words[0].lower() in ("enable", "disable"):
            return Command("switch_tool", {"name": words[1], "tool": words[2], "enabled": words[0].lower() == "enable"})
        raise GrammarError("Which adapter, doing what? `adapter test hubspot`.", "register_adapter")
    if verb := starts("retry", "cancel"):
        words = _rest_after(text, verb).split()
        if len(words) != 1:
            operation = f"{verb}_delegation"
            raise GrammarError(f"Which delegation? `{verb} D12` (`delegations` lists them).", operation)
        return Command(f"{verb}_delegation", {"delegation": words[0]})
    if verb := starts("delegations"):
        rest = _rest_after(text, verb)
        return Command("show_delegations", {"task": rest} if rest else {})
    if verb := starts("delegate"):
        match = re.match(r"^(\S+)\s+to\s+(\S+)\s+(\S+)\s*(.*)$", _rest_after(text, verb), re.IGNORECASE | re.DOTALL)
        if not match:
            raise GrammarError("Delegate which task to whom? `delegate T12 to hubspot draft_email`.", "delegate_task")
        args = {"task": match.group(1), "adapter": match.group(2), "capability": match.group(3)}
        if match.group(4):
            args["input"] = match.group(4)
        return Command("delegate_task", args)
    if starts("approvals", "my approvals", "pending approvals"):
        return Command("show_approvals")
    if verb := starts("approvers"):
        words = _rest_after(text, verb).split()
        if not words or words[0].lower() in ("show", "list"):
            return Command("show_approvers")
        action = words[0].lower()
        if action in ("add", "assign", "remove", "unassign") and len(words) >= 3:
            operation = "add_approver" if action in ("add", "assign") else "remove_approver"
            return Command(operation, {"role": words[1], "user": " ".join(words[2:])})
        if action == "map" and len(words) == 3:
            return Command("map_approval_gate", {"category": words[1], "role": words[2]})
        raise GrammarError(
            "Change approvers how? `approvers add legal @person`, `approvers remove legal @person` "
            "or `approvers map budget finance`.",
            "add_approver",
        )
    if verb := starts("approve", "reject"):
        operation = "approve_request" if verb == "approve" else "reject_request"
        match = re.match(r"^(#?a?#?\d+)\b\s*(.*)$", _rest_after(text, verb), re.IGNORECASE | re.DOTALL)
        if not match:
            raise GrammarError(f"Which request? Give its id: `{verb} A3`.", operation)
        note = re.sub(r"^(because|note:?)\s+", "", match.group(2), flags=re.IGNORECASE).strip()
        # `typed` tells the operation a person wrote this in Teams (see bot/operations/approvals.py).
        return Command(operation, {"approval": match.group(1), "note": note, "typed": True})
    if verb := starts("why", "explain"):
        rest = _rest_after(text, verb).strip(" ?.!")
        if number := re.search(r"\bdecision\s+#?(\d+)\b", rest, re.IGNORECASE):
            return Command("explain_decision", {"decision": int(number.group(1))})
        named = r"\b(?:task|plan|delegation|approval)\s+#?[tpda]?\d+\b|(?<![\w#])#?[tpda]#?\d+\b|^#?\d+$"
        if reference := re.search(named, rest, re.IGNORECASE):
            return Command("explain_decision", {"about": reference.group(0)})
        if not rest:
            raise GrammarError("Why what? `why T12`, `why D5`, `why P3` or `why decision 17`.", "explain_decision")
        return Command("explain_decision", {"question": rest})
    if verb := starts("decisions", "decision log"):
        rest = _rest_after(text, verb)
        return Command("show_decisions", {"about": rest} if rest else {})
    if verb := starts("decision"):
        number = re.fullmatch(r"#?(\d+)", _rest_after(text, verb))
        if not number:
            raise GrammarError("Which decision? Give its number: `decision 17`.", "explain_decision")
        return Command("explain_decision", {"decision": int(number.group(1))})
    if verb := starts("policy", "policies"):
        rest = _rest_after(text, verb)
        if not rest or rest.lower() in ("show", "list"):
            return Command("show_policy")
        if loading := re.match(r"^load\s+(.+)$", rest, re.IGNORECASE | re.DOTALL):
            return Command("load_policy", {"document": loading.group(1)})
        raise GrammarError('Show or load the rules? `policy`, or `policy load {"rules": [...]}`.', "load_policy")
    raise UnknownCommand(text)
