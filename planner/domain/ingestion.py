"""KPI readings from outside the chat, as values: a posted metric event and its checks, a metric feed and when it is
due, the unit a reading must be in (see `planner.services.ingestion` for how they are stored and pulled)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from planner.domain.errors import Expected, Field, InvalidValue, PlannerError
from planner.domain.model import Metric
from planner.domain.problems import Problem, ProblemCode, parse_time, stated

MAX_EVENTS = 1_000
MAX_ID = 200
_EVENT_FIELDS = ("id", "sent_at", "metric", "value", "unit", "at", "plan")
_REQUIRED_FIELDS = ("id", "sent_at", "metric", "value", "unit", "at")
MIN_EVERY_MINUTES = 5
_UNIT_ALIASES = {"%": "percent", "pct": "percent", "per cent": "percent", "eur": "€", "usd": "$", "gbp": "£"}


class UnitMismatch(PlannerError, ValueError):
    def __init__(self, metric: Metric, unit: str) -> None:
        self.metric = metric
        self.unit = unit
        super().__init__(f"{metric.name} is counted in {metric.unit or 'no unit'!s}, not {unit!r}")


class InvalidMetricEvent(PlannerError, ValueError):
    """Metric events that cannot be stored; `problems` names each field and what it should be."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("invalid metric event: " + stated(problems))


def _normal_unit(unit: str) -> str:
    folded = " ".join(unit.split()).casefold()
    folded = _UNIT_ALIASES.get(folded, folded)
    return folded[:-1] if folded.endswith("s") and len(folded) > 1 else folded


def check_unit(metric: Metric, unit: str) -> None:
    """Raise UnitMismatch unless `unit` is the metric's (case, spacing, a plural `s` and `%`/`percent` aside).

    A metric without a unit takes readings in no unit or named after the metric (`SQLs` of a metric `SQLs`).
    """
    given = _normal_unit(unit)
    accepted = {_normal_unit(metric.unit)} if metric.unit else {"", _normal_unit(metric.name)}
    if given not in accepted:
        raise UnitMismatch(metric, unit)


@dataclass(frozen=True, kw_only=True)
class MetricEvent:
    id: str
    sent_at: datetime
    metric: str
    value: float
    unit: str
    at: datetime
    plan: int | None = None


def parse_metric_events(payload: Any) -> list[MetricEvent]:
    """Events from a posted JSON body (one object or a list). Raises InvalidMetricEvent naming every bad field."""
    raw = payload if isinstance(payload, list) else [payload]
    if not raw:
        raise InvalidMetricEvent([Problem(ProblemCode.NO_EVENTS, "body")])
    if len(raw) > MAX_EVENTS:
        raise InvalidMetricEvent([Problem(ProblemCode.TOO_MANY_EVENTS, "body", count=len(raw), most=MAX_EVENTS)])
    problems: list[Problem] = []
    parsed: list[MetricEvent] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        path = f"[{index}]" if isinstance(payload, list) else "event"
        if not isinstance(item, dict):
            problems.append(Problem(ProblemCode.NOT_AN_OBJECT, path, fields=_REQUIRED_FIELDS))
            continue
        for key in item:
            if key not in _EVENT_FIELDS:
                problems.append(Problem(ProblemCode.NOT_A_FIELD, f"{path}.{key}", name=str(key), known=_EVENT_FIELDS))
        metric, value, unit, plan = item.get("metric"), item.get("value"), item.get("unit"), item.get("plan")
        event_id = item.get("id")
        if not isinstance(event_id, str) or not 0 < len(event_id.strip()) <= MAX_ID:
            problems.append(Problem(ProblemCode.EVENT_ID, f"{path}.id", limit=MAX_ID))
        elif event_id.strip() in seen:
            problems.append(Problem(ProblemCode.GIVEN_TWICE, f"{path}.id", value=event_id))
        else:
            seen.add(event_id.strip())
        sent_at = parse_time(item.get("sent_at"), f"{path}.sent_at", problems)
        if not isinstance(metric, str) or not metric.strip():
            problems.append(Problem(ProblemCode.METRIC_NAME, f"{path}.metric"))
        number_ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not number_ok:
            problems.append(Problem(ProblemCode.FINITE_NUMBER, f"{path}.value"))
        if not isinstance(unit, str):
            problems.append(Problem(ProblemCode.UNIT, f"{path}.unit"))
        if plan is not None and (not isinstance(plan, int) or isinstance(plan, bool)):
            problems.append(Problem(ProblemCode.PLAN_ID, f"{path}.plan"))
        at = parse_time(item.get("at"), f"{path}.at", problems)
        if not problems and at is not None and sent_at is not None:
            parsed.append(
                MetricEvent(
                    id=str(event_id).strip(),
                    sent_at=sent_at,
                    metric=str(metric).strip(),
                    value=float(value or 0),
                    unit=str(unit),
                    at=at,
                    plan=plan,
                )
            )
    if problems:
        raise InvalidMetricEvent(problems)
    return parsed


@dataclass(frozen=True, kw_only=True)
class MetricFeed:
    id: int
    tenant_id: str
    metric_id: int
    adapter: str
    capability: str
    input: dict[str, Any]
    field: str
    unit: str
    every_minutes: int
    spend: bool = False
    """The reading is the metric's plan's spend to date, in its budget's currency: what it rose by is spend."""
    last_pulled_at: datetime | None = None
    last_error: str | None = None


def field_value(data: Mapping[str, Any], path: str) -> float:
    """The number at a dotted path of the agent's data (`totals.sqls`). Raises InvalidValue."""
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise InvalidValue(Field.FEED_FIELD, path, Expected.FIELD_OF_DATA, fields=tuple(sorted(data)))
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float) or not math.isfinite(node):
        raise InvalidValue(Field.DATA_FIELD, node, Expected.FINITE_NUMBER, path=path)
    return float(node)


def check_feed(metric: Metric, *, adapter: str, capability: str, field: str, unit: str, every_minutes: int) -> None:
    """Raise UnitMismatch or InvalidValue unless a feed of `metric` with these settings can be pulled."""
    check_unit(metric, unit)
    if every_minutes < MIN_EVERY_MINUTES:
        raise InvalidValue(Field.EVERY, every_minutes, Expected.MINUTES_AT_LEAST, low=MIN_EVERY_MINUTES)
    for part, value in ((Field.ADAPTER, adapter), (Field.CAPABILITY, capability), (Field.FEED_FIELD, field)):
        if not value.strip():
            raise InvalidValue(part, value, Expected.FEED_PART, part=part)


def is_due(feed: MetricFeed, at: datetime) -> bool:
    """Never pulled, or pulled `every_minutes` ago or more."""
    return feed.last_pulled_at is None or feed.last_pulled_at + timedelta(minutes=feed.every_minutes) <= at
