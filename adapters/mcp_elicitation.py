"""MCP elicitation: a server asking the delegating person something in the middle of a tool call.

The server's request (a form of a few plain fields, or a page of its own to open) is turned into one question for the
person, asked through the delegation's `HumanChannel`, and the reply into the spec's answer: `accept` with the fields'
values, `decline` when the person says so, `cancel` when nobody answers, the person cancels, or the reply still cannot
be read after a few tries. What the server sends is data: its words are cut to length and stripped of control
characters, and a page's address is shown as text for the person to open knowingly, never as a link.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from mcp import types as mcp_types

from planner.ports import AgentTimeout, HumanChannel

ASKS = 3
"""How many times a reply that cannot be read is asked for again, in all."""
_MESSAGE_CHARS = 600
_FIELD_CHARS = 200
_MOST_FIELDS = 20
_DECLINE = frozenset({"decline", "refuse", "skip"})
_DONE = frozenset({"done", "ok", "okay", "yes", "accept", "finished"})
_TRUE = frozenset({"yes", "y", "true", "on", "1", "oui"})
_FALSE = frozenset({"no", "n", "false", "off", "0", "non"})


def plain(text: object, *, limit: int) -> str:
    """The server's words as one safe line: control characters dropped, cut at `limit`."""
    cleaned = "".join(
        " " if ch in "\r\n\t" else ch for ch in str(text) if ch in "\r\n\t" or unicodedata.category(ch)[0] != "C"
    )
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


async def relay(
    agent: str, params: mcp_types.ElicitRequestParams, human: HumanChannel, *, answer_seconds: float
) -> mcp_types.ElicitResult:
    """Ask the person what the server asks and turn the reply into the server's answer; never raises."""
    if isinstance(params, mcp_types.ElicitRequestURLParams):
        return await _relay_page(agent, params, human, answer_seconds=answer_seconds)
    schema = params.requested_schema if isinstance(params.requested_schema, dict) else {}
    fields = _fields(schema)
    question = _form_question(agent, plain(params.message, limit=_MESSAGE_CHARS), fields)
    for _ in range(ASKS):
        try:
            reply = await human.ask(question, timeout_seconds=answer_seconds)
        except AgentTimeout:
            return mcp_types.ElicitResult(action="cancel")
        if reply.strip().lower() in _DECLINE:
            return mcp_types.ElicitResult(action="decline")
        content, problem = read_reply(reply, fields)
        if problem is None:
            return mcp_types.ElicitResult(action="accept", content=content)
        question = f"I could not read that: {problem}. {_form_question(agent, '', fields)}"
    return mcp_types.ElicitResult(action="cancel")


async def _relay_page(
    agent: str, params: mcp_types.ElicitRequestURLParams, human: HumanChannel, *, answer_seconds: float
) -> mcp_types.ElicitResult:
    question = (
        f"{plain(params.message, limit=_MESSAGE_CHARS)} {agent} asks you to open a page of its own: "
        f"{plain(params.url, limit=_FIELD_CHARS * 2)} (from the agent, not from me: open it only if you expect it). "
        'Reply "done" when you have finished there, or "decline".'
    )
    try:
        reply = await human.ask(question.strip(), timeout_seconds=answer_seconds)
    except AgentTimeout:
        return mcp_types.ElicitResult(action="cancel")
    word = reply.strip().lower()
    if word in _DONE:
        return mcp_types.ElicitResult(action="accept")
    return mcp_types.ElicitResult(action="decline" if word in _DECLINE else "cancel")


# The form ----------------------------------------------------------------------------------------------------------


def _fields(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
    """(name, property schema, required) of each field the form asks for, in the server's order."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return []
    listed = schema.get("required")
    required: list[Any] = listed if isinstance(listed, list) else []
    return [
        (str(name), spec if isinstance(spec, dict) else {}, name in required)
        for name, spec in list(properties.items())[:_MOST_FIELDS]
    ]


def _choices(spec: dict[str, Any]) -> list[str]:
    if isinstance(spec.get("enum"), list):
        return [str(value) for value in spec["enum"]]
    for key in ("oneOf", "anyOf"):
        if isinstance(spec.get(key), list):
            return [str(option["const"]) for option in spec[key] if isinstance(option, dict) and "const" in option]
    items = spec.get("items")
    if spec.get("type") == "array" and isinstance(items, dict):
        return _choices(items)
    return []


def _kind(spec: dict[str, Any]) -> str:
    choices = _choices(spec)
    if spec.get("type") == "array":
        return f"one or more of {', '.join(choices)}, separated by commas" if choices else "a list"
    if choices:
        return f"one of {', '.join(choices)}"
    return {"boolean": "yes or no", "integer": "a whole number", "number": "a number"}.get(
        str(spec.get("type")), "text"
    )


def _form_question(agent: str, message: str, fields: list[tuple[str, dict[str, Any], bool]]) -> str:
    lines = [message or f"{agent} needs more information to go on."]
    for name, spec, required in fields:
        label = plain(spec.get("title") or name, limit=_FIELD_CHARS)
        about = plain(spec.get("description", ""), limit=_FIELD_CHARS)
        line = f"- {label} ({_kind(spec)}{', required' if required else ''})"
        lines.append(f"{line}: {about}" if about else line)
    if len(fields) == 1:
        lines.append('Reply with the value, "decline" to refuse, or "cancel".')
    elif fields:
        lines.append('Reply with "name: value" for each field, "decline" to refuse, or "cancel".')
    else:
        lines.append('Reply "yes" to go on, "decline" to refuse, or "cancel".')
    return "\n".join(lines)


def read_reply(reply: str, fields: list[tuple[str, dict[str, Any], bool]]) -> tuple[dict[str, Any] | None, str | None]:
    """The form's content from the person's reply, or the problem that keeps it from being read."""
    if not fields:
        return ({}, None) if reply.strip().lower() in _DONE else (None, 'say "yes", "decline" or "cancel"')
    raw: dict[str, str] = {}
    if len(fields) == 1:
        raw[fields[0][0]] = reply.strip()
    else:
        raw = _named_values(reply, fields)
    content: dict[str, Any] = {}
    for name, spec, required in fields:
        text = raw.get(name, "").strip()
        if not text and "default" in spec:  # the server's default for what the person left out (SEP-1034)
            content[name] = spec["default"]
            continue
        if not text:
            if required:
                return None, f"{plain(spec.get('title') or name, limit=_FIELD_CHARS)} is required"
            continue
        value, problem = _value(text, spec)
        if problem is not None:
            return None, f"{plain(spec.get('title') or name, limit=_FIELD_CHARS)} must be {problem}"
        content[name] = value
    return content, None


def _named_values(reply: str, fields: list[tuple[str, dict[str, Any], bool]]) -> dict[str, str]:
    try:
        parsed = json.loads(reply)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return {str(key): value if isinstance(value, str) else json.dumps(value) for key, value in parsed.items()}
    # Teams may join a reply's lines into one: a value runs until the next field's name, wherever that is.
    names = {name.lower(): name for name, _, _ in fields}
    names.update({str(spec["title"]).lower(): name for name, spec, _ in fields if spec.get("title")})
    labels = "|".join(re.escape(label) for label in sorted(names, key=len, reverse=True))
    found = list(re.finditer(rf"(?i)(?:^|(?<=[\s,;]))({labels})\s*[:=]", reply))
    values: dict[str, str] = {}
    for match, following in zip(found, [*found[1:], None][: len(found)], strict=True):
        end = following.start() if following is not None else len(reply)
        values[names[match.group(1).lower()]] = reply[match.end() : end].strip().rstrip(",;").strip()
    return values


def _value(text: str, spec: dict[str, Any]) -> tuple[Any, str | None]:
    kind = spec.get("type")
    choices = _choices(spec)
    if kind == "array":
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not choices:
            return items, None
        picked = [_choice(item, choices) for item in items]
        return (None, _kind(spec)) if any(item is None for item in picked) else (picked, None)
    if choices:
        choice = _choice(text, choices)
        return (choice, None) if choice is not None else (None, _kind(spec))
    if kind == "boolean":
        word = text.lower()
        return (True, None) if word in _TRUE else (False, None) if word in _FALSE else (None, "yes or no")
    if kind in ("integer", "number"):
        cleaned = text.replace(" ", "").replace("\u202f", "").replace(",", "" if kind == "integer" else ".")
        try:
            number: int | float = int(cleaned) if kind == "integer" else float(cleaned)
        except ValueError:
            return None, _kind(spec)
        low, high = spec.get("minimum"), spec.get("maximum")
        if (isinstance(low, int | float) and number < low) or (isinstance(high, int | float) and number > high):
            return None, f"between {low if low is not None else '…'} and {high if high is not None else '…'}"
        return number, None
    return text, None


def _choice(text: str, choices: list[str]) -> str | None:
    return next((choice for choice in choices if choice.lower() == text.lower()), None)
