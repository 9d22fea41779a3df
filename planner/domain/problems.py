"""What is wrong with a document an admin or a connected system sent (a rule set, context facts, metric or spend
events, a delegation's input to a tool), or with the decision log against its checkpoint: each problem a `Problem`,
its code, the path of what it is about (`rules[2].effect`, `events[0].at`, `input.percent`, a tenant's id) and its
details (the value given, the names known, a limit). The words an admin or an integrator reads are the bot's, in
bot/text/problems.py; a test keeps every code worded there with exactly the details it lists."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any


class ProblemCode(Enum):
    """What kind of problem: a code, and the names of the details each problem of the kind carries."""

    def __init__(self, code: str, *details: str) -> None:
        self.code = code
        self.details = details

    # any posted document
    NOT_AN_OBJECT = ("not_an_object", "fields")
    NOT_A_FIELD = ("not_a_field", "name", "known")
    MISSING = ("missing",)
    TEXT = ("text",)
    TEXT_AT_MOST = ("text_at_most", "limit")
    NOT_YAML = ("not_yaml", "reason")
    NOT_YAML_AT = ("not_yaml_at", "line", "column", "reason")
    # posted events
    NO_EVENTS = ("no_events",)
    TOO_MANY_EVENTS = ("too_many_events", "count", "most")
    EVENT_ID = ("event_id", "limit")
    GIVEN_TWICE = ("given_twice", "value")
    TIME = ("time",)
    NOT_A_TIME = ("not_a_time", "value")
    NO_OFFSET = ("no_offset", "value")
    FACT_TYPE = ("fact_type", "value", "known")
    ATTRIBUTES = ("attributes",)
    TTL_HOURS = ("ttl_hours", "most")
    OBSERVED_AFTER_SENT = ("observed_after_sent",)
    METRIC_NAME = ("metric_name",)
    FINITE_NUMBER = ("finite_number",)
    UNIT = ("unit",)
    PLAN_ID = ("plan_id",)
    POSITIVE_AMOUNT = ("positive_amount",)
    CURRENCY_CODE = ("currency_code",)
    SPEND_DAY = ("spend_day",)
    # rule sets
    POLICY_DOCUMENT = ("policy_document",)
    TOO_MANY_RULES = ("too_many_rules", "count", "most")
    RULE = ("rule",)
    RULE_ID = ("rule_id", "value")
    RULE_ID_TAKEN = ("rule_id_taken", "value", "first")
    DESCRIPTION = ("description",)
    EFFECT = ("effect", "value", "known")
    VERDICT = ("verdict", "value", "known")
    NOT_PLAIN = ("not_plain", "value")
    COMPARISONS = ("comparisons",)
    ATTRIBUTE_NAME = ("attribute_name",)
    NO_OPERATOR = ("no_operator", "known")
    OPERATOR = ("operator", "value", "known")
    NOT_A_NUMBER = ("not_a_number", "value", "operator")
    NOT_A_LIST = ("not_a_list", "value")
    NAMES = ("names", "of")
    NAME = ("name", "of")
    ACTION_KIND = ("action_kind", "value", "known")
    DURATION = ("duration", "value")
    TRUE_OR_FALSE = ("true_or_false", "value")
    CONDITIONS = ("conditions",)
    FACT_UNNAMED = ("fact_unnamed", "given")
    FACT_LIST = ("fact_list",)
    FACT_CONDITION = ("fact_condition",)
    LIMITS_MISSING = ("limits_missing",)
    LIMITS_OUT_OF_PLACE = ("limits_out_of_place", "effect")
    GATES = ("gates",)
    GATE = ("gate", "value", "known")
    # a delegation's input against its tool's input schema (the path is the field's, `input.percent`; the schema's
    # own problems are at `inputSchema`)
    FIELD_NOT_TAKEN = ("field_not_taken",)
    SCHEMA_UNREADABLE = ("schema_unreadable", "reason")
    SCHEMA_UNUSABLE = ("schema_unusable", "reason")
    NOT_OF_TYPE = ("not_of_type", "value", "types")
    NOT_ONE_OF = ("not_one_of", "value", "known")
    NOT_CONSTANT = ("not_constant", "value", "expected")
    BELOW_MINIMUM = ("below_minimum", "value", "limit")
    ABOVE_MAXIMUM = ("above_maximum", "value", "limit")
    NOT_ABOVE = ("not_above", "value", "limit")
    NOT_BELOW = ("not_below", "value", "limit")
    NOT_A_MULTIPLE = ("not_a_multiple", "value", "limit")
    TEXT_AT_LEAST = ("text_at_least", "limit")
    PATTERN = ("pattern", "value", "pattern")
    FORMAT = ("format", "value", "format")
    ITEMS_AT_LEAST = ("items_at_least", "limit")
    ITEMS_AT_MOST = ("items_at_most", "limit")
    ITEMS_REPEAT = ("items_repeat",)
    SCHEMA_SAYS = ("schema_says", "keyword", "message")
    """A rule of the schema the bot does not word itself (`oneOf`, `not`…): the validator's own `message`."""
    # a decision log against its checkpoint (the path is the tenant's id)
    LOG_GONE = ("log_gone", "count")
    LOG_SHORTER = ("log_shorter", "end", "reached")
    ENTRY_CHANGED = ("entry_changed", "seq")


@dataclass(frozen=True, init=False)
class Problem:
    """One problem of a document: its `code`, the `path` of the field it is about, and the `details` its code lists."""

    code: ProblemCode
    path: str
    details: Mapping[str, object]

    def __init__(self, code: ProblemCode, path: str, /, **details: object) -> None:
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "details", details)

    def __str__(self) -> str:
        shown = "".join(f" {name}={detail!r}" for name, detail in self.details.items())
        return f"{self.path}: {self.code.code}{shown}"


def stated(problems: list[Problem]) -> str:
    """The problems as one plain line, for an error's own message (a log); people read the bot's words."""
    return "; ".join(map(str, problems))


def parse_time(value: Any, path: str, problems: list[Problem]) -> datetime | None:
    """A posted ISO 8601 time with its offset (`2026-01-05T09:00:00Z`); None, and a problem naming `path`, otherwise."""
    if not isinstance(value, str):
        problems.append(Problem(ProblemCode.TIME, path))
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        problems.append(Problem(ProblemCode.NOT_A_TIME, path, value=value))
        return None
    if parsed.tzinfo is None:
        problems.append(Problem(ProblemCode.NO_OFFSET, path, value=value))
        return None
    return parsed
