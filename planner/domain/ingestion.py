"""KPI readings from outside the chat, as values: a posted metric event and its checks, a metric feed and when it is
due, the unit a reading must be in (see `planner.services.ingestion` for how they are stored and pulled)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from planner.domain.errors import InvalidValue, PlannerError
from planner.domain.model import Metric

MAX_EVENTS = 1_000
MAX_ID = 200
MIN_EVERY_MINUTES = 5
_UNIT_ALIASES = {"%": "percent", "pct": "percent", "per cent": "percent", "eur": "€", "usd": "$", "gbp": "£"}


class UnitMismatch(PlannerError, ValueError):
    def __init__(self, metric: Metric, unit: str) -> None:
        self.metric = metric
        self.unit = unit
        super().__init__(f"{metric.name} is counted in {metric.unit or 'no unit'!s}, not {unit!r}")


class InvalidMetricEvent(PlannerError, ValueError):
    """Metric events that cannot be stored; `problems` names each field and what it should be."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid metric event: " + "; ".join(problems))


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


def parse_time(value: Any, path: str, problems: list[str]) -> datetime | None:
    """An ISO 8601 time with its zone; None (and a problem naming `path`) otherwise."""
    if not isinstance(value, str):
        problems.append(f"{path}: an ISO 8601 time with its zone, such as 2026-02-15T12:00:00Z")
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        problems.append(f"{path}: an ISO 8601 time with its zone, such as 2026-02-15T12:00:00Z")
        return None
    return parsed


def parse_metric_events(payload: Any) -> list[MetricEvent]:
    """Events from a posted JSON body (one object or a list). Raises InvalidMetricEvent naming every bad field."""
    raw = payload if isinstance(payload, list) else [payload]
    if not raw or len(raw) > MAX_EVENTS:
        raise InvalidMetricEvent([f"body: one event or a list of 1 to {MAX_EVENTS} events"])
    problems: list[str] = []
    parsed: list[MetricEvent] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        path = f"[{index}]" if isinstance(payload, list) else "event"
        if not isinstance(item, dict):
            problems.append(f"{path}: an object with id, sent_at, metric, value, unit and at")
            continue
        unknown = sorted(set(item) - {"id", "sent_at", "metric", "value", "unit", "at", "plan"})
        if unknown:
            problems.append(f"{path}: unknown field(s) {', '.join(unknown)}")
        metric, value, unit, plan = item.get("metric"), item.get("value"), item.get("unit"), item.get("plan")
        event_id = item.get("id")
        if not isinstance(event_id, str) or not 0 < len(event_id.strip()) <= MAX_ID:
            problems.append(f"{path}.id: the event's id, unique for its source (1 to {MAX_ID} characters)")
        elif event_id.strip() in seen:
            problems.append(f"{path}.id: {event_id!r} is given twice in this post")
        else:
            seen.add(event_id.strip())
        sent_at = parse_time(item.get("sent_at"), f"{path}.sent_at", problems)
        if not isinstance(metric, str) or not metric.strip():
            problems.append(f"{path}.metric: the KPI's name, such as SQLs")
        number_ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not number_ok:
            problems.append(f"{path}.value: a finite number")
        if not isinstance(unit, str):
            problems.append(f'{path}.unit: the unit of the value, such as "SQL" or "%" ("" for none)')
        if plan is not None and (not isinstance(plan, int) or isinstance(plan, bool)):
            problems.append(f"{path}.plan: a plan id number, such as 1")
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
            raise InvalidValue("feed field", path, f"a field of the agent's data; it has {sorted(data)}")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float) or not math.isfinite(node):
        raise InvalidValue(f"field {path}", node, "a finite number")
    return float(node)


def check_feed(metric: Metric, *, adapter: str, capability: str, field: str, unit: str, every_minutes: int) -> None:
    """Raise UnitMismatch or InvalidValue unless a feed of `metric` with these settings can be pulled."""
    check_unit(metric, unit)
    if every_minutes < MIN_EVERY_MINUTES:
        raise InvalidValue("every", every_minutes, f"at least {MIN_EVERY_MINUTES} minutes")
    for name, value in (("adapter", adapter), ("capability", capability), ("field", field)):
        if not value.strip():
            raise InvalidValue(name, value, f"the {name} to read the metric from")


def is_due(feed: MetricFeed, at: datetime) -> bool:
    """Never pulled, or pulled `every_minutes` ago or more."""
    return feed.last_pulled_at is None or feed.last_pulled_at + timedelta(minutes=feed.every_minutes) <= at
