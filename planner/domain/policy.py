"""Policy rules and their evaluation: go, flag or stop for an action, from the rules an admin set and the facts in
force about its accounts.

A rule document (`{"rules": [...]}`) is checked whole (`validate_policy` lists every problem with its path). An
action's verdict is the strictest of the rules that match (stop > flag > go; go when none does), every rule that
matched with its reason, and the context facts the rules read (`decide`). An action in an approval gate category (a
strategy change, an audience definition…) is at least flagged, whatever the rules say.

Three sorts of rule, each for some agents (`*` for all), action kinds and action names:

    rules:
      - id: hubspot-discounts
        description: HubSpot may offer discounts up to 15 % on its own; more needs a person.
        effect: allow                    # within the limits: go; over them: the verdict (flag by default, or stop)
        agents: [hubspot]
        kinds: [delegation]
        actions: [offer_discount]
        limits:
          discount: {le: 15}
      - id: renewal-touch
        description: Every touch of an account in renewal is checked by a person first.
        effect: require                  # when the conditions hold: the verdict (flag by default, or stop)
        when:
          fact: renewal_open
      - id: outbound-after-ticket
        description: No outbound while the customer has had a support ticket open in the last 48 h.
        effect: forbid                   # when the conditions hold: the verdict (stop by default, or flag)
        when:
          attributes: {direction: outbound}
          fact: ticket_opened
          within: 48h

Conditions: `when.attributes` compares the action's attributes (dotted paths reach nested values, such as
`input.discount`) with eq, ne, lt, le, gt, ge, in or contains (a bare value means eq; strings compare without
regard to case); `when.fact` (or `when.facts`, a list) asks for a fact in force about one of the action's accounts,
of a type, optionally observed `within` a duration (`30m`, `48h`, `7d`, `2w`), optionally whose attributes
`match`, or `absent: true` for an account with no such fact. An allow rule's `limits` are compared the same way;
an action without the attribute a limit names is within it, and a rule none of whose limits the action carries
says nothing about it (it is not listed among the matches).

A rule that flags may name the approval gates the action then falls under, so that their approvers decide it:

      - id: big-discounts
        description: A discount above 15 % is a budget shift.
        effect: require
        kinds: [delegation]
        when:
          attributes: {discount: {gt: 15}}
        gates: [budget]

Gates only add: a capability an admin classified under a gate, or an action in a gate category, stays under it
whatever the rules or the input say.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from planner.domain.context import Fact, FactType
from planner.domain.errors import PlannerError
from planner.domain.governance import (
    OPERATION_KINDS,
    Action,
    ActionKind,
    GateCategory,
    OverLimit,
    OverLimits,
    PolicyDecision,
    RuleMatch,
    Verdict,
    gate_match,
)
from planner.domain.problems import Problem, ProblemCode, stated

MAX_RULES = 10_000
MAX_DESCRIPTION = 500

OPERATORS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "contains")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(m|min|mins|minutes?|h|hours?|d|days?|w|weeks?)")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_SEVERITY = {Verdict.GO: 0, Verdict.FLAG: 1, Verdict.STOP: 2}
_RULE_FIELDS = ("id", "description", "effect", "agents", "kinds", "actions", "when", "limits", "verdict", "gates")
_WHEN_FIELDS = ("attributes", "fact", "within", "match", "absent", "facts")
_FACT_FIELDS = ("type", "within", "match", "absent")


class Effect(StrEnum):
    ALLOW = "allow"
    """The action may go on its own within the rule's limits; over them, the rule's verdict."""
    REQUIRE = "require"
    """When the conditions hold, the action needs the rule's verdict (a person's approval, by default)."""
    FORBID = "forbid"
    """When the conditions hold, the action may not go (stop, by default)."""


_DEFAULT_VERDICT = {Effect.ALLOW: Verdict.FLAG, Effect.REQUIRE: Verdict.FLAG, Effect.FORBID: Verdict.STOP}


class PolicyInvalid(PlannerError, ValueError):
    """A rule document that cannot be loaded; `problems` lists every problem with its path. Nothing is stored."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in the rules: " + stated(problems))


# ---- the rules ---------------------------------------------------------------------------------------------------

_MISSING = object()


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip().rstrip("%").strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(expected, str) and isinstance(actual, str):
        return actual.casefold() == expected.casefold()
    if isinstance(expected, int | float) and not isinstance(expected, bool):
        number = _number(actual)
        return number is not None and number == expected
    return bool(actual == expected)


def _equal_to(expected: Any) -> Callable[[Any], bool]:
    """`_equal(actual, expected)` with the expected side prepared once (this runs for every rule met)."""
    if isinstance(expected, str):
        folded = expected.casefold()
        return lambda actual: actual.casefold() == folded if isinstance(actual, str) else actual == expected
    return lambda actual: _equal(actual, expected)


def _lookup(attributes: Mapping[str, Any], parts: tuple[str, ...]) -> Any:
    value: Any = attributes
    for part in parts:
        if not isinstance(value, dict | Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _test(op: str, expected: Any) -> Callable[[Any], bool]:
    """The comparison `<actual> <op> <expected>` as a function of the actual value."""
    if op in ("lt", "le", "gt", "ge"):
        compare = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge}[op]

        def ordered(actual: Any) -> bool:
            number = _number(actual)
            return number is not None and compare(number, expected)

        return ordered
    if op in ("eq", "ne"):
        equal = _equal_to(expected)
        return equal if op == "eq" else lambda actual: not equal(actual)
    if op == "in":
        tests = [_equal_to(e) for e in expected]

        def within(actual: Any) -> bool:
            values = actual if isinstance(actual, list | tuple) else (actual,)
            return any(test(v) for v in values for test in tests)

        return within
    equal = _equal_to(expected)

    def contains(actual: Any) -> bool:
        if isinstance(actual, str) and isinstance(expected, str):
            return expected.casefold() in actual.casefold()
        return isinstance(actual, list | tuple) and any(equal(v) for v in actual)

    return contains


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """`<path> <op> <value>` on a mapping of attributes."""

    path: str
    op: str
    value: Any
    parts: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _check: Callable[[Any], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Prepared once: a comparison runs for every action its rule meets.
        object.__setattr__(self, "parts", tuple(self.path.split(".")))
        object.__setattr__(self, "_check", _test(self.op, self.value))

    def actual(self, attributes: Mapping[str, Any]) -> Any:
        """The attribute's value, or `_MISSING`."""
        return _lookup(attributes, self.parts)

    def present(self, attributes: Mapping[str, Any]) -> bool:
        return _lookup(attributes, self.parts) is not _MISSING

    def holds(self, attributes: Mapping[str, Any]) -> bool:
        """Whether the attribute compares so; a missing attribute makes every comparison false."""
        actual = _lookup(attributes, self.parts)
        return actual is not _MISSING and self._check(actual)


@dataclass(frozen=True, kw_only=True)
class FactCondition:
    """A fact in force about one of the action's accounts (or, `absent`, an account without one)."""

    type: FactType
    within: timedelta | None = None
    match: tuple[Comparison, ...] = ()
    absent: bool = False

    def finds(self, fact: Fact, at: datetime) -> bool:
        return (
            fact.type is self.type
            and (self.within is None or fact.observed_at >= at - self.within)
            and all(c.holds(fact.attributes) for c in self.match)
        )


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One checked rule. Empty `agents`, `kinds` or `actions` mean all of them."""

    id: str
    description: str
    effect: Effect
    verdict: Verdict
    agents: tuple[str, ...] = ()
    kinds: tuple[ActionKind, ...] = ()
    actions: tuple[str, ...] = ()
    when: tuple[Comparison, ...] = ()
    facts: tuple[FactCondition, ...] = ()
    limits: tuple[Comparison, ...] = ()
    gates: tuple[GateCategory, ...] = ()
    """The approval gates an action falls under when this rule flags or stops it."""

    def to_json(self) -> dict[str, Any]:
        """The rule in the document format, every default spelled out (what is stored)."""
        document: dict[str, Any] = {
            "id": self.id,
            "description": self.description,
            "effect": self.effect.value,
            "verdict": self.verdict.value,
            "agents": list(self.agents) or "*",
            "kinds": [k.value for k in self.kinds] or "*",
            "actions": list(self.actions) or "*",
        }
        when: dict[str, Any] = {}
        if self.when:
            when["attributes"] = _comparisons_json(self.when)
        if self.facts:
            when["facts"] = [
                {
                    "type": c.type.value,
                    **({"within": duration_text(c.within)} if c.within is not None else {}),
                    **({"match": _comparisons_json(c.match)} if c.match else {}),
                    **({"absent": True} if c.absent else {}),
                }
                for c in self.facts
            ]
        if when:
            document["when"] = when
        if self.limits:
            document["limits"] = _comparisons_json(self.limits)
        if self.gates:
            document["gates"] = [g.value for g in self.gates]
        return document


def _comparisons_json(comparisons: Sequence[Comparison]) -> dict[str, dict[str, Any]]:
    grouped: dict[str, dict[str, Any]] = {}
    for c in comparisons:
        grouped.setdefault(c.path, {})[c.op] = c.value
    return grouped


def duration_text(duration: timedelta) -> str:
    """A duration as a rule document writes it: `30m`, `48h`, `2d`, `1w`."""
    minutes = duration / timedelta(minutes=1)
    for unit, size in (("w", 7 * 24 * 60), ("d", 24 * 60), ("h", 60)):
        if minutes >= size and minutes % size == 0:
            return f"{int(minutes // size)}{unit}"
    return f"{minutes:g}m"


def parse_duration(text: str) -> timedelta | None:
    """`30m`, `48h`, `7d`, `2w` (or `48 hours`…) as a timedelta; None when it is not one."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        return None
    return float(match.group(1)) * _UNITS[match.group(2)[0]]


# ---- checking a document -------------------------------------------------------------------------------------------


class _Checker:
    """Checks a whole document, collecting every problem with its path instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def problem(self, code: ProblemCode, path: str, **details: object) -> None:
        self.problems.append(Problem(code, path, **details))

    def unknown_keys(self, raw: Mapping[Any, Any], path: str, known: Sequence[str]) -> None:
        for key in raw:
            if key not in known:
                self.problem(ProblemCode.NOT_A_FIELD, f"{path}.{key}", name=str(key), known=tuple(known))

    def plain(self, value: Any, path: str) -> bool:
        if value is None or isinstance(value, str | bool | int):
            return True
        if isinstance(value, float) and math.isfinite(value):
            return True
        self.problem(ProblemCode.NOT_PLAIN, path, value=value)
        return False

    def comparisons(self, raw: Any, path: str) -> tuple[Comparison, ...]:
        if not isinstance(raw, Mapping) or not raw:
            self.problem(ProblemCode.COMPARISONS, path)
            return ()
        found: list[Comparison] = []
        for name, spec in raw.items():
            where = f"{path}.{name}"
            if not isinstance(name, str) or not _PATH.fullmatch(name):
                self.problem(ProblemCode.ATTRIBUTE_NAME, where)
                continue
            if not isinstance(spec, Mapping):
                if self.plain(spec, where):
                    found.append(Comparison(path=name, op="eq", value=spec))
                continue
            if not spec:
                self.problem(ProblemCode.NO_OPERATOR, where, known=tuple(OPERATORS))
            for op, value in spec.items():
                found.extend(self._comparison(name, str(op), value, f"{where}.{op}"))
        return tuple(found)

    def _comparison(self, name: str, op: str, value: Any, where: str) -> list[Comparison]:
        if op not in OPERATORS:
            self.problem(ProblemCode.OPERATOR, where, value=op, known=tuple(OPERATORS))
            return []
        if op in ("lt", "le", "gt", "ge"):
            number = None if isinstance(value, bool) else value
            if not isinstance(number, int | float) or not math.isfinite(number):
                self.problem(ProblemCode.NOT_A_NUMBER, where, value=value, operator=op)
                return []
            return [Comparison(path=name, op=op, value=number)]
        if op == "in":
            if not isinstance(value, list) or not value:
                self.problem(ProblemCode.NOT_A_LIST, where, value=value)
                return []
            if not all([self.plain(v, f"{where}[{n}]") for n, v in enumerate(value)]):
                return []
            return [Comparison(path=name, op=op, value=tuple(value))]
        if not self.plain(value, where):
            return []
        return [Comparison(path=name, op=op, value=value)]

    def names(self, raw: Any, path: str, what: str) -> tuple[str, ...]:
        """`*` (all) or a list of names (of `what`: the rule's field, `agents`, `kinds` or `actions`); () for all."""
        if raw is None or raw == "*":
            return ()
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not raw:
            self.problem(ProblemCode.NAMES, path, of=what)
            return ()
        names: list[str] = []
        for n, name in enumerate(raw):
            if not isinstance(name, str) or not name.strip():
                self.problem(ProblemCode.NAME, f"{path}[{n}]", of=what)
            elif name.strip() == "*":
                return ()
            else:
                names.append(name.strip().casefold())
        return tuple(dict.fromkeys(names))

    def kinds(self, raw: Any, path: str) -> tuple[ActionKind, ...]:
        known = [k.value for k in ActionKind]
        found: list[ActionKind] = []
        for n, name in enumerate(self.names(raw, path, "kinds")):
            if name in known:
                found.append(ActionKind(name))
            else:
                where = f"{path}[{n}]" if isinstance(raw, list) else path
                self.problem(ProblemCode.ACTION_KIND, where, value=name, known=tuple(known))
        return tuple(found)

    def fact(self, raw: Mapping[str, Any], path: str, type_key: str) -> FactCondition | None:
        known = [t.value for t in FactType]
        type_name = raw.get(type_key)
        fact_type = FactType(type_name) if type_name in known else None
        if fact_type is None:
            self.problem(ProblemCode.FACT_TYPE, f"{path}.{type_key}", value=type_name, known=tuple(known))
        within: timedelta | None = None
        if raw.get("within") is not None:
            within = parse_duration(str(raw["within"])) if isinstance(raw["within"], str) else None
            if within is None or within <= timedelta(0):
                self.problem(ProblemCode.DURATION, f"{path}.within", value=raw["within"])
        match = self.comparisons(raw["match"], f"{path}.match") if raw.get("match") is not None else ()
        absent = raw.get("absent", False)
        if not isinstance(absent, bool):
            self.problem(ProblemCode.TRUE_OR_FALSE, f"{path}.absent", value=absent)
        if fact_type is None:
            return None
        return FactCondition(type=fact_type, within=within, match=match, absent=absent is True)

    def when(self, raw: Any, path: str) -> tuple[tuple[Comparison, ...], tuple[FactCondition, ...]]:
        if not isinstance(raw, Mapping) or not raw:
            self.problem(ProblemCode.CONDITIONS, path)
            return (), ()
        self.unknown_keys(raw, path, _WHEN_FIELDS)
        attributes = self.comparisons(raw["attributes"], f"{path}.attributes") if "attributes" in raw else ()
        facts: list[FactCondition] = []
        single = [key for key in ("fact", "within", "match", "absent") if key in raw]
        if single:
            if "fact" not in raw:
                self.problem(ProblemCode.FACT_UNNAMED, f"{path}.fact", given=tuple(single))
            elif (condition := self.fact(raw, path, "fact")) is not None:
                facts.append(condition)
        if "facts" in raw:
            if not isinstance(raw["facts"], list) or not raw["facts"]:
                self.problem(ProblemCode.FACT_LIST, f"{path}.facts")
            else:
                for n, item in enumerate(raw["facts"]):
                    where = f"{path}.facts[{n}]"
                    if not isinstance(item, Mapping):
                        self.problem(ProblemCode.FACT_CONDITION, where)
                        continue
                    self.unknown_keys(item, where, _FACT_FIELDS)
                    if (condition := self.fact(item, where, "type")) is not None:
                        facts.append(condition)
        return attributes, tuple(facts)

    def rule(self, raw: Any, path: str) -> Rule | None:
        if not isinstance(raw, Mapping):
            self.problem(ProblemCode.RULE, path)
            return None
        before = len(self.problems)
        self.unknown_keys(raw, path, _RULE_FIELDS)
        rule_id = raw.get("id")
        if not isinstance(rule_id, str) or not _ID.fullmatch(rule_id):
            self.problem(ProblemCode.RULE_ID, f"{path}.id", value=rule_id)
        description = raw.get("description")
        if not isinstance(description, str) or not description.strip():
            self.problem(ProblemCode.DESCRIPTION, f"{path}.description")
        elif len(description) > MAX_DESCRIPTION:
            self.problem(ProblemCode.TEXT_AT_MOST, f"{path}.description", limit=MAX_DESCRIPTION)
        effects = [e.value for e in Effect]
        effect = Effect(raw["effect"]) if raw.get("effect") in effects else None
        if effect is None:
            self.problem(ProblemCode.EFFECT, f"{path}.effect", value=raw.get("effect"), known=tuple(effects))
        verdict: Verdict | None = _DEFAULT_VERDICT[effect] if effect else None
        if raw.get("verdict") is not None:
            verdict = Verdict(raw["verdict"]) if raw["verdict"] in ("flag", "stop") else None
            if verdict is None:
                self.problem(ProblemCode.VERDICT, f"{path}.verdict", value=raw["verdict"], known=("flag", "stop"))
        agents = self.names(raw.get("agents"), f"{path}.agents", "agents")
        kinds = self.kinds(raw.get("kinds"), f"{path}.kinds")
        actions = self.names(raw.get("actions"), f"{path}.actions", "actions")
        when, facts = self.when(raw["when"], f"{path}.when") if "when" in raw else ((), ())
        limits: tuple[Comparison, ...] = ()
        if effect is Effect.ALLOW:
            if "limits" not in raw:
                self.problem(ProblemCode.LIMITS_MISSING, f"{path}.limits")
            else:
                limits = self.comparisons(raw["limits"], f"{path}.limits")
        elif "limits" in raw and effect is not None:
            self.problem(ProblemCode.LIMITS_OUT_OF_PLACE, f"{path}.limits", effect=effect.value)
        gates = self.gates(raw.get("gates"), f"{path}.gates")
        if len(self.problems) > before or effect is None or verdict is None:
            return None
        return Rule(
            id=str(rule_id),
            description=" ".join(str(description).split()),
            effect=effect,
            verdict=verdict,
            agents=agents,
            kinds=kinds,
            actions=actions,
            when=when,
            facts=facts,
            limits=limits,
            gates=gates,
        )

    def gates(self, raw: Any, path: str) -> tuple[GateCategory, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list) or not raw:
            self.problem(ProblemCode.GATES, path)
            return ()
        names = [g.value for g in GateCategory]
        found: list[GateCategory] = []
        for n, value in enumerate(raw):
            if isinstance(value, str) and value in names:
                found.append(GateCategory(value))
            else:
                self.problem(ProblemCode.GATE, f"{path}[{n}]", value=value, known=tuple(names))
        return tuple(dict.fromkeys(found))


def validate_policy(document: Any) -> tuple[Rule, ...]:
    """The rules of a parsed document (`{"rules": [...]}`). Raises PolicyInvalid listing every problem."""
    checker = _Checker()
    if not isinstance(document, Mapping) or not isinstance(document.get("rules"), list):
        raise PolicyInvalid([Problem(ProblemCode.POLICY_DOCUMENT, "rules")])
    checker.unknown_keys(document, "document", ("rules",))
    raw_rules = document["rules"]
    if len(raw_rules) > MAX_RULES:
        raise PolicyInvalid([Problem(ProblemCode.TOO_MANY_RULES, "rules", count=len(raw_rules), most=MAX_RULES)])
    rules: list[Rule] = []
    first_of: dict[str, int] = {}
    for n, raw in enumerate(raw_rules):
        rule = checker.rule(raw, f"rules[{n}]")
        rule_id = raw.get("id") if isinstance(raw, Mapping) else None
        if isinstance(rule_id, str):
            if rule_id in first_of:
                checker.problem(ProblemCode.RULE_ID_TAKEN, f"rules[{n}].id", value=rule_id, first=first_of[rule_id])
            first_of.setdefault(rule_id, n)
        if rule is not None:
            rules.append(rule)
    if checker.problems:
        raise PolicyInvalid(checker.problems)
    return tuple(rules)


def policy_document(rules: Iterable[Rule]) -> dict[str, Any]:
    """The rules as a JSON-ready document that `validate_policy` reads back."""
    return {"rules": [rule.to_json() for rule in rules]}


@dataclass(frozen=True, kw_only=True)
class PolicySet:
    """A tenant's rules as loaded: the version, the rules, and the text they were loaded from."""

    tenant_id: str
    version: int
    rules: tuple[Rule, ...]
    loaded_by: str
    loaded_at: datetime
    source: str


# ---- evaluating ---------------------------------------------------------------------------------------------------

_Key = tuple[str, str, str]


def _indexed_kinds(kinds: Sequence[ActionKind]) -> list[str]:
    """The kinds a rule is filed under: `tool_call` stands for every kind of operation (see `OPERATION_KINDS`)."""
    if not kinds:
        return ["*"]
    expanded = [k for kind in kinds for k in (OPERATION_KINDS if kind is ActionKind.TOOL_CALL else (kind,))]
    return list(dict.fromkeys(k.value for k in expanded))


class CompiledRules:
    """One version of a tenant's rules, indexed by (agent, kind, action name) so an action meets only its rules."""

    def __init__(self, version: int, rules: Sequence[Rule]) -> None:
        self.version = version
        self.rules = tuple(rules)
        self._index: dict[_Key, list[tuple[int, Rule]]] = {}
        for position, rule in enumerate(self.rules):
            for agent in rule.agents or ("*",):
                for kind in _indexed_kinds(rule.kinds):
                    for name in rule.actions or ("*",):
                        self._index.setdefault((agent, kind, name), []).append((position, rule))

    def candidates(self, action: Action) -> list[Rule]:
        """The rules whose agents, kinds and actions include this action's, in document order."""
        return self.about(action.kind, agent=action.agent, name=action.name)

    def about(self, kind: ActionKind, *, agent: str | None, name: str) -> list[Rule]:
        """The rules whose agents, kinds and actions include these, in document order."""
        agents = ("*", agent.strip().casefold()) if agent else ("*",)
        names = ("*", name.strip().casefold()) if name.strip() else ("*",)
        found: list[tuple[int, Rule]] = []
        for each_agent in agents:
            for each_kind in ("*", kind.value):
                for each_name in names:
                    found.extend(self._index.get((each_agent, each_kind, each_name), ()))
        found.sort(key=lambda pair: pair[0])
        return [rule for _, rule in found]


class RuleCache:
    """The latest compiled rule set of each tenant (compiling 1,000 rules costs more than evaluating them), and when
    the database last confirmed it is the version in force."""

    def __init__(self) -> None:
        self._compiled: dict[str, tuple[CompiledRules, datetime]] = {}

    def latest(self, tenant_id: str) -> tuple[CompiledRules, datetime] | None:
        return self._compiled.get(tenant_id)

    def put(self, tenant_id: str, compiled: CompiledRules, *, confirmed_at: datetime) -> None:
        known = self._compiled.get(tenant_id)
        if known is None or known[0].version <= compiled.version:
            self._compiled[tenant_id] = (compiled, confirmed_at)


FactsWanted = tuple[tuple[str, ...], datetime | None]
"""The fact types some rules ask about, and since when (None: whenever observed)."""


def facts_wanted(candidates: Sequence[Rule], action: Action, at: datetime) -> FactsWanted | None:
    """Which facts the candidate rules ask about (their types, and since when), or None when they ask nothing.

    Only rules whose conditions on the action's attributes hold can match, so only theirs are read."""
    if not action.accounts:
        return None
    conditions = [
        c
        for rule in candidates
        if rule.facts and all(comparison.holds(action.attributes) for comparison in rule.when)
        for c in rule.facts
    ]
    if not conditions:
        return None
    windows = [c.within for c in conditions if c.within is not None]
    since = at - max(windows) if len(windows) == len(conditions) else None
    return tuple(sorted({c.type.value for c in conditions})), since


def _evidence(condition: FactCondition, facts: Sequence[Fact], accounts: Sequence[str], at: datetime) -> list[Fact]:
    return [f for f in facts if condition.finds(f, at) and f.account in accounts]


def decide(action: Action, candidates: Sequence[Rule], facts: Sequence[Fact], at: datetime) -> PolicyDecision:
    """The decision on `action` as of `at` from the rules that may be about it and the facts in force about its
    accounts: the strictest verdict of the rules that match, and of its gate categories."""
    matched: list[RuleMatch] = []
    evidence: dict[str, None] = {}
    gates: dict[GateCategory, None] = {}
    accounts = tuple(dict.fromkeys(action.accounts))
    for rule in candidates:
        found = _matches(rule, action, facts, accounts, at)
        if found is None:
            continue
        match, used = found
        matched.append(match)
        evidence.update((f.reference, None) for f in used)
        if match.verdict is not Verdict.GO:
            gates.update((gate, None) for gate in rule.gates if gate not in action.categories)
    matched.extend(gate_match(category) for category in dict.fromkeys(action.categories))
    matched.sort(key=lambda m: -_SEVERITY[m.verdict])
    verdict = matched[0].verdict if matched else Verdict.GO
    return PolicyDecision(verdict=verdict, matched=tuple(matched), facts=tuple(evidence), gates=tuple(gates))


def _matches(
    rule: Rule, action: Action, facts: Sequence[Fact], accounts: Sequence[str], at: datetime
) -> tuple[RuleMatch, list[Fact]] | None:
    for comparison in rule.when:
        if not comparison.holds(action.attributes):
            return None
    used: list[Fact] = []
    for condition in rule.facts:
        found = _evidence(condition, facts, accounts, at)
        if condition.absent:
            # Holds when one of the action's accounts has no such fact.
            if not accounts or {f.account for f in found} >= set(accounts):
                return None
        elif not found:
            return None
        used.extend(found)
    if rule.effect is not Effect.ALLOW:
        return RuleMatch(rule_id=rule.id, verdict=rule.verdict, reason=rule.description), used
    applicable = [c for c in rule.limits if c.present(action.attributes)]
    if not applicable:
        return None  # the action carries none of the values this rule limits: the rule says nothing about it
    over = [c for c in applicable if not c.holds(action.attributes)]
    if not over:
        return RuleMatch(rule_id=rule.id, verdict=Verdict.GO, reason=rule.description), used
    limits = tuple(
        OverLimit(path=c.path, actual=c.actual(action.attributes), operator=c.op, limit=c.value) for c in over
    )
    return RuleMatch(
        rule_id=rule.id, verdict=rule.verdict, reason=OverLimits(description=rule.description, over=limits)
    ), used
