"""What an admin or an integrator reads about a document the bot refused (a rule set, context facts, metric or spend
events): each `Problem` of planner/domain/problems.py worded from its code and details, after the path of the field
it is about. Plain text: bot/text/errors.py shows it in chat as prose, the CLI prints it, the HTTP routes return it."""

from __future__ import annotations

import difflib
import json
import string

from bot.text.numbers import whole
from planner.domain.problems import Problem, ProblemCode

PROBLEMS: dict[ProblemCode, str] = {
    ProblemCode.NOT_AN_OBJECT: "expected an object with {fields}",
    ProblemCode.NOT_A_FIELD: "not a field here{hint}; fields: {known}",
    ProblemCode.MISSING: "missing",
    ProblemCode.TEXT: "expected some text",
    ProblemCode.TEXT_AT_MOST: "at most {limit} characters",
    ProblemCode.NOT_YAML: "not valid YAML or JSON: {reason}",
    ProblemCode.NOT_YAML_AT: "not valid YAML or JSON at line {line}, column {column}: {reason}",
    ProblemCode.NO_EVENTS: "the list is empty; post at least one event",
    ProblemCode.TOO_MANY_EVENTS: "{count} events; post at most {most} at a time",
    ProblemCode.EVENT_ID: "the event's id, unique for its source (1 to {limit} characters)",
    ProblemCode.GIVEN_TWICE: "{value} is given twice in this post; every event needs its own id",
    ProblemCode.TIME: "expected an ISO 8601 time with its offset, such as 2026-01-05T09:00:00Z",
    ProblemCode.NOT_A_TIME: "{value} is not an ISO 8601 time such as 2026-01-05T09:00:00Z",
    ProblemCode.NO_OFFSET: "{value} has no offset; add one, such as 2026-01-05T09:00:00Z or +01:00",
    ProblemCode.FACT_TYPE: "{value} is not a fact type{hint}; types: {known}",
    ProblemCode.ATTRIBUTES: "expected an object of names to values",
    ProblemCode.TTL_HOURS: "expected a number of hours above 0 and at most {most}",
    ProblemCode.OBSERVED_AFTER_SENT: "after `at`; a fact is observed before it is sent",
    ProblemCode.METRIC_NAME: "the KPI's name, such as SQLs",
    ProblemCode.FINITE_NUMBER: "a finite number",
    ProblemCode.UNIT: 'the unit of the value, such as "SQL" or "%" ("" for none)',
    ProblemCode.PLAN_ID: "a plan id number, such as 2",
    ProblemCode.POSITIVE_AMOUNT: "a positive amount, such as 12500",
    ProblemCode.CURRENCY_CODE: "a three-letter currency code such as USD",
    ProblemCode.SPEND_DAY: "the day it was spent, such as 2026-10-15",
    ProblemCode.POLICY_DOCUMENT: "expected a document with a list of rules, like {{rules: [{{id: ..., ...}}]}}",
    ProblemCode.TOO_MANY_RULES: "{count} rules; a rule set holds at most {most}",
    ProblemCode.RULE: "expected a rule: id, description, effect, and what it applies to",
    ProblemCode.RULE_ID: "{value} is not an id (letters, digits, '-', '_', '.' or ':')",
    ProblemCode.RULE_ID_TAKEN: "{value} is already the id of rules[{first}]",
    ProblemCode.DESCRIPTION: "missing: say why, in the words people will read",
    ProblemCode.EFFECT: "{value} is not an effect{hint}; use {known}",
    ProblemCode.VERDICT: "{value} is not a verdict{hint}; use {known}",
    ProblemCode.NOT_PLAIN: "{value} is not a plain value (text, a number, true/false); quote it",
    ProblemCode.COMPARISONS: "expected a mapping of attribute names to comparisons, like {{discount: {{le: 15}}}}",
    ProblemCode.ATTRIBUTE_NAME: "not an attribute name (letters, digits, '_' or '-', dotted for nested values)",
    ProblemCode.NO_OPERATOR: "expected one of {known}, like {{le: 15}}",
    ProblemCode.OPERATOR: "{value} is not a comparison{hint}; use {known}",
    ProblemCode.NOT_A_NUMBER: "{value} is not a number; {operator} compares numbers",
    ProblemCode.NOT_A_LIST: "{value} is not a list of values, like [email, sms]",
    ProblemCode.NAMES: "expected `*` or a list of {of}",
    ProblemCode.NAME: "expected the name of one of the {of}",
    ProblemCode.ACTION_KIND: "{value} is not an action kind{hint}; kinds: {known}",
    ProblemCode.DURATION: "{value} is not a duration like 48h",
    ProblemCode.TRUE_OR_FALSE: "{value} is not true or false",
    ProblemCode.CONDITIONS: "expected conditions: attributes, and a fact (or facts)",
    ProblemCode.FACT_UNNAMED: "missing: {given} qualify a fact, so name its type",
    ProblemCode.FACT_LIST: "expected a list of fact conditions, like [{{type: ticket_opened}}]",
    ProblemCode.FACT_CONDITION: "expected a fact condition, like {{type: ticket_opened, within: 48h}}",
    ProblemCode.LIMITS_MISSING: "missing: an allow rule says its limits, like {{discount: {{le: 15}}}}",
    ProblemCode.LIMITS_OUT_OF_PLACE: "only an allow rule has limits; a {effect} rule says `when`",
    ProblemCode.GATES: "expected a list of approval gates, like [budget]",
    ProblemCode.GATE: "{value} is not an approval gate{hint}; use {known}",
    ProblemCode.FIELD_NOT_TAKEN: "not a field the tool takes",
    ProblemCode.SCHEMA_UNREADABLE: "the server's input schema for the tool cannot be read ({reason})",
    ProblemCode.SCHEMA_UNUSABLE: "the server's input schema for the tool cannot be used ({reason})",
    ProblemCode.NOT_OF_TYPE: "expected {types}, not {value}",
    ProblemCode.NOT_ONE_OF: "{value} is not one of the choices{hint}; choose {known}",
    ProblemCode.NOT_CONSTANT: "expected {expected}, not {value}",
    ProblemCode.BELOW_MINIMUM: "{value} is below the minimum, {limit}",
    ProblemCode.ABOVE_MAXIMUM: "{value} is above the maximum, {limit}",
    ProblemCode.NOT_ABOVE: "expected more than {limit}, not {value}",
    ProblemCode.NOT_BELOW: "expected less than {limit}, not {value}",
    ProblemCode.NOT_A_MULTIPLE: "{value} is not a multiple of {limit}",
    ProblemCode.TEXT_AT_LEAST: "at least {limit} character{s}",
    ProblemCode.PATTERN: "{value} does not match the pattern {pattern}",
    ProblemCode.FORMAT: "{value} is not in the {format} format",
    ProblemCode.ITEMS_AT_LEAST: "expected a list of at least {limit} item{s}",
    ProblemCode.ITEMS_AT_MOST: "expected a list of at most {limit} item{s}",
    ProblemCode.ITEMS_REPEAT: "expected a list whose items all differ",
    ProblemCode.SCHEMA_SAYS: "{message} (the schema's {keyword})",
    ProblemCode.LOG_GONE: "its log is gone; it held {count} entries",
    ProblemCode.LOG_SHORTER: "its log ends at entry {end}, it reached {reached}",
    ProblemCode.ENTRY_CHANGED: "its entry {seq} is not the one the checkpoint saw",
}
"""What each kind of problem reads as; `{detail}` is filled from the problem's details, `{hint}` is a "did you mean"
drawn from the name or value given and the `known` ones, and `{s}` is a plural's ending for its `limit` (a test keeps
every code here)."""

HINT_SOURCES = ("name", "value")
"""The details a `{hint}` is drawn from, beside `known`."""

_NAMES_OF = {
    "agents": "agents (adapter names)",
    "kinds": "action kinds",
    "actions": "action names or capabilities",
}
"""What a rule's list of names holds, by the field it is in (the `of` detail)."""


def describe_problem(problem: Problem) -> str:
    """`path: what is wrong`, in plain text."""
    return f"{problem.path}: {problem_message(problem)}"


def problem_message(problem: Problem) -> str:
    """What is wrong with the field at the problem's path, in plain text."""
    template = PROBLEMS[problem.code]
    shown = {name: _detail(name, value) for name, value in problem.details.items()}
    if "hint" in template_fields(template):
        shown["hint"] = _hint(problem)
    if "s" in template_fields(template):
        shown["s"] = "" if problem.details.get("limit") == 1 else "s"
    return template.format_map(shown)


def template_fields(template: str) -> set[str]:
    """The `{names}` a wording fills in."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


_TYPES = {
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
    "null": "null",
}
"""A JSON Schema type as what it holds."""
_VALUE_CHARS = 80


def _detail(name: str, value: object) -> str:
    if name == "of":
        return _NAMES_OF.get(str(value), str(value))
    if name in ("value", "expected"):
        shown = json.dumps(value, ensure_ascii=False, default=str)
        return shown if len(shown) <= _VALUE_CHARS else shown[: _VALUE_CHARS - 1] + "…"
    if name == "types" and isinstance(value, tuple | list):
        return " or ".join(_TYPES.get(str(name), str(name)) for name in value)
    if name == "limit" and isinstance(value, int) and not isinstance(value, bool):
        return whole(value)
    if name == "fields" and isinstance(value, tuple | list) and len(value) > 1:
        return ", ".join(map(str, value[:-1])) + f" and {value[-1]}"
    if isinstance(value, tuple | list):
        return ", ".join(map(str, value))
    return str(value)


def _hint(problem: Problem) -> str:
    given = next((problem.details[name] for name in HINT_SOURCES if name in problem.details), None)
    known = problem.details.get("known")
    if given is None or not isinstance(known, tuple | list):
        return ""
    close = difflib.get_close_matches(str(given), [str(name) for name in known], n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""
