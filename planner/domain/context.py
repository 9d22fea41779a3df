"""Shared context, as values and rules: the types of facts connected systems post about accounts, how long each
holds, which closing fact supersedes which opening one, and the check of a posted body of events.

Facts expire: each type has a default lifetime (`DEFAULT_TTLS`), an event may give its own. A closing fact
supersedes the opening ones it closes (`ticket_closed` closes `ticket_opened`, `renewal_closed` closes
`renewal_open`; with a `ticket_id` / `renewal_id` attribute, only the one with that id), so "a ticket is open"
stops holding the moment it is closed, whichever of the two events arrives first.

Replay protection: an event id is accepted once per source, and only when the event's time (`at`) is within a few
minutes of the bot's clock (`SKEW`); ids are kept at least twice that long, so a replay is refused by one check or
the other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from planner.domain.errors import Expected, Field, InvalidValue, PlannerError
from planner.domain.problems import Problem, ProblemCode, parse_time, stated

SKEW = timedelta(minutes=5)
"""How far an event's time may be from the bot's clock, either way."""
MAX_EVENTS = 1_000
"""Events in one post."""
MAX_TTL = timedelta(days=5 * 366)
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")
_EVENT_FIELDS = ("id", "type", "account", "at", "observed_at", "attributes", "ttl_hours")
_REQUIRED_FIELDS = ("id", "type", "account", "at")


class FactType(StrEnum):
    RENEWAL_OPEN = "renewal_open"
    """The account's renewal is under way (attributes: renewal_id, amount, closes_on…)."""
    RENEWAL_CLOSED = "renewal_closed"
    """The renewal is decided (attributes: renewal_id, outcome); supersedes the open renewal."""
    TICKET_OPENED = "ticket_opened"
    """A support ticket was opened (attributes: ticket_id, severity…)."""
    TICKET_CLOSED = "ticket_closed"
    """The ticket was closed; supersedes the opened ticket (the one with the same ticket_id, or all of them)."""
    SALES_CONTACT = "sales_contact"
    """Sales spoke to the customer (attributes: channel, by…)."""
    PURCHASE = "purchase"
    PAGE_VISIT = "page_visit"
    CONTENT_READ = "content_read"


DEFAULT_TTLS: Mapping[FactType, timedelta] = {
    FactType.RENEWAL_OPEN: timedelta(days=120),
    FactType.RENEWAL_CLOSED: timedelta(days=30),
    FactType.TICKET_OPENED: timedelta(days=30),
    FactType.TICKET_CLOSED: timedelta(days=7),
    FactType.SALES_CONTACT: timedelta(days=30),
    FactType.PURCHASE: timedelta(days=365),
    FactType.PAGE_VISIT: timedelta(days=30),
    FactType.CONTENT_READ: timedelta(days=30),
}
"""How long a fact of each type holds when its event gives no `ttl_hours`."""

CLOSES: Mapping[FactType, tuple[FactType, str]] = {
    FactType.TICKET_CLOSED: (FactType.TICKET_OPENED, "ticket_id"),
    FactType.RENEWAL_CLOSED: (FactType.RENEWAL_OPEN, "renewal_id"),
}
"""A closing type: the opening type it supersedes, and the attribute that says which one."""
CLOSED_BY: Mapping[FactType, tuple[FactType, str]] = {
    opening: (closing, key) for closing, (opening, key) in CLOSES.items()
}
"""An opening type: the closing type that supersedes it, and the attribute that says which one."""
FACT_TYPES: Mapping[str, FactType] = {t.value: t for t in FactType}


def closes(key: str, closing: Mapping[str, Any], opening: Mapping[str, Any]) -> bool:
    """Whether a closing fact closes an opening one: the same id under `key`, or any when the closing one names none."""
    return closing.get(key) is None or closing.get(key) == opening.get(key)


def source_name(name: str) -> str:
    """A source's name as it is kept (lower case, trimmed). Raises InvalidValue when it is not a name."""
    name = name.strip().lower()
    if not _NAME.fullmatch(name):
        raise InvalidValue(Field.SOURCE_NAME, name, Expected.NAME_CHARACTERS, limit=100)
    return name


def purgeable_received_before(at: datetime) -> datetime:
    """A fact expired by `at` may be deleted once received before this: its id no longer guards against a replay."""
    return at - 2 * SKEW


# ---- errors ------------------------------------------------------------------------------------------------------


class InvalidContextEvent(PlannerError, ValueError):
    """Events that cannot be stored as they are; `problems` names each field and what is wrong with it."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("invalid context event: " + stated(problems))


class StaleContextEvent(PlannerError, ValueError):
    """An event whose time is too far from the bot's clock to be told apart from a replay."""

    def __init__(self, event_ids: Sequence[str], now: datetime, *, sent: str = "at") -> None:
        self.event_ids = tuple(event_ids)
        self.now = now
        self.sent = sent
        """The field that carries the time the events were sent."""
        self.skew_minutes = int(SKEW.total_seconds() // 60)
        super().__init__(
            f"event(s) {', '.join(map(repr, event_ids))}: {sent} is more than {self.skew_minutes} minutes from "
            f"the clock ({now.isoformat()})"
        )


class ReplayedContextEvent(PlannerError, ValueError):
    """An event id this source has posted before: nothing of the post is stored."""

    def __init__(self, source: str, event_ids: Sequence[str]) -> None:
        self.source = source
        self.event_ids = tuple(event_ids)
        super().__init__(f"source {source!r} already posted event id(s) {', '.join(map(repr, event_ids))}")


class ContextSourceNotFound(PlannerError, LookupError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = tuple(sorted(known))
        super().__init__(f"no context source named {name!r}")


class ContextSourceExists(PlannerError, ValueError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"context source {name!r} exists already")


# ---- values ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ContextEvent:
    """One event as a connected system posts it, checked (see `parse_events`)."""

    id: str
    type: FactType
    account: str
    at: datetime
    """When the event was sent: it must be within `SKEW` of the bot's clock."""
    observed_at: datetime | None = None
    """When the fact was observed, if earlier than `at` (a contact made yesterday, posted now)."""
    attributes: dict[str, Any] = field(default_factory=dict)
    ttl: timedelta | None = None
    """How long the fact holds; the type's default when None."""

    @property
    def observed(self) -> datetime:
        """When the fact was observed: `observed_at`, or when the event was sent."""
        return self.observed_at or self.at

    @property
    def expires_at(self) -> datetime:
        """When the fact stops holding: its own lifetime, or its type's, from when it was observed."""
        return self.observed + (self.ttl or DEFAULT_TTLS[self.type])


@dataclass(frozen=True, kw_only=True)
class Fact:
    """Something a connected system said about an account, in force from `observed_at` until `expires_at`."""

    id: int
    tenant_id: str
    source: str
    event_id: str
    account: str
    type: FactType
    attributes: dict[str, Any]
    observed_at: datetime
    expires_at: datetime
    received_at: datetime
    superseded_at: datetime | None = None
    """When a closing fact closed it (a ticket closed): from then on it no longer holds."""

    @property
    def reference(self) -> str:
        """How a decision names the fact it was made on: `fact:<id>:<type>:<account>`."""
        return f"fact:{self.id}:{self.type.value}:{self.account}"

    def holds_at(self, at: datetime) -> bool:
        return self.observed_at <= at < self.expires_at and (self.superseded_at is None or self.superseded_at > at)


@dataclass(frozen=True, kw_only=True)
class ContextSource:
    """A registered source, as shown to an admin: never its secret."""

    id: int
    tenant_id: str
    name: str
    created_by: str
    created_at: datetime
    rotated_at: datetime | None = None


# ---- parsing posted events -----------------------------------------------------------------------------------------


def _text_field(value: Any, path: str, problems: list[Problem], *, limit: int = 200) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        problems.append(Problem(ProblemCode.TEXT, path))
        return None
    if len(value.strip()) > limit:
        problems.append(Problem(ProblemCode.TEXT_AT_MOST, path, limit=limit))
        return None
    return value.strip()


def _one_event(raw: Any, path: str, problems: list[Problem]) -> ContextEvent | None:
    if not isinstance(raw, Mapping):
        problems.append(Problem(ProblemCode.NOT_AN_OBJECT, path or "event", fields=_REQUIRED_FIELDS))
        return None
    at = f"{path}." if path else ""
    before = len(problems)
    for key in raw:
        if key not in _EVENT_FIELDS:
            problems.append(Problem(ProblemCode.NOT_A_FIELD, f"{at}{key}", name=str(key), known=_EVENT_FIELDS))
    for required in _REQUIRED_FIELDS:
        if required not in raw:
            problems.append(Problem(ProblemCode.MISSING, f"{at}{required}"))
    event_id = _text_field(raw["id"], f"{at}id", problems) if "id" in raw else None
    account = _text_field(raw["account"], f"{at}account", problems) if "account" in raw else None
    fact_type: FactType | None = None
    if "type" in raw:
        fact_type = FACT_TYPES.get(str(raw["type"]))
        if fact_type is None:
            problems.append(Problem(ProblemCode.FACT_TYPE, f"{at}type", value=raw["type"], known=tuple(FACT_TYPES)))
    sent = parse_time(raw["at"], f"{at}at", problems) if "at" in raw else None
    observed = (
        parse_time(raw["observed_at"], f"{at}observed_at", problems) if raw.get("observed_at") is not None else None
    )
    attributes = raw.get("attributes")
    if attributes is None:
        attributes = {}
    elif not isinstance(attributes, Mapping):
        problems.append(Problem(ProblemCode.ATTRIBUTES, f"{at}attributes"))
    ttl: timedelta | None = None
    hours = raw.get("ttl_hours")
    if hours is not None:
        if (
            isinstance(hours, bool)
            or not isinstance(hours, int | float)
            or not 0 < hours <= MAX_TTL / timedelta(hours=1)
        ):
            problems.append(Problem(ProblemCode.TTL_HOURS, f"{at}ttl_hours", most=MAX_TTL.days * 24))
        else:
            ttl = timedelta(hours=hours)
    if sent is not None and observed is not None and observed > sent:
        problems.append(Problem(ProblemCode.OBSERVED_AFTER_SENT, f"{at}observed_at"))
    if len(problems) > before or event_id is None or account is None or fact_type is None or sent is None:
        return None
    return ContextEvent(
        id=event_id,
        type=fact_type,
        account=account,
        at=sent,
        observed_at=observed,
        attributes=dict(attributes),
        ttl=ttl,
    )


def parse_events(payload: Any) -> list[ContextEvent]:
    """The events in a posted JSON body: one event object, or a list of them.

    Raises InvalidContextEvent listing every problem with its path (`events[2].type: ...`).
    """
    problems: list[Problem] = []
    if isinstance(payload, list):
        if not payload:
            raise InvalidContextEvent([Problem(ProblemCode.NO_EVENTS, "events")])
        if len(payload) > MAX_EVENTS:
            raise InvalidContextEvent(
                [Problem(ProblemCode.TOO_MANY_EVENTS, "events", count=len(payload), most=MAX_EVENTS)]
            )
        found = [_one_event(raw, f"events[{n}]", problems) for n, raw in enumerate(payload)]
    else:
        found = [_one_event(payload, "", problems)]
    events = [event for event in found if event is not None]
    seen: set[str] = set()
    for event in events:
        if event.id in seen:
            problems.append(Problem(ProblemCode.GIVEN_TWICE, "id", value=event.id))
        seen.add(event.id)
    if problems:
        raise InvalidContextEvent(problems)
    return events
