"""Shared context: facts about customers and accounts, posted by connected systems, read by the policy engine.

A connected system (a CRM, a help desk, a web analytics tool) is registered as a *source* of a tenant with an HMAC
secret of its own (`ContextSources`: the secret is kept encrypted with the `Vault` and shown only once). It posts
signed events to the bot (`POST /api/context/events`); each event becomes a `Fact` about one account
(`ContextFacts.post`), and every agent's actions are judged against the same facts.

Facts expire: each type has a default lifetime (`DEFAULT_TTLS`), an event may give its own. A closing fact
supersedes the opening ones it closes (`ticket_closed` closes `ticket_opened`, `renewal_closed` closes
`renewal_open`; with a `ticket_id` / `renewal_id` attribute, only the one with that id), so "a ticket is open"
stops holding the moment it is closed, whichever of the two events arrives first.

Replay protection: an event id is accepted once per source, and only when the event's time (`at`) is within a few
minutes of the bot's clock (`SKEW`); ids are kept at least twice that long, so a replay is refused by one check or
the other.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from planner.domain.errors import InvalidValue, PlannerError
from planner.store import Store
from planner.store import events as event_log
from planner.store.schema import context_facts, context_sources
from planner.store.vault import Vault

SKEW = timedelta(minutes=5)
"""How far an event's time may be from the bot's clock, either way."""
MAX_EVENTS = 1_000
"""Events in one post."""
MAX_TTL = timedelta(days=5 * 366)
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")
_EVENT_FIELDS = ("id", "type", "account", "at", "observed_at", "attributes", "ttl_hours")
SIGNATURE_PREFIX = "sha256="


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
_CLOSED_BY = {opening: (closing, key) for closing, (opening, key) in CLOSES.items()}


# ---- errors ------------------------------------------------------------------------------------------------------


class InvalidContextEvent(PlannerError, ValueError):
    """Events that cannot be stored as they are; `problems` names each field and what it should be."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid context event: " + "; ".join(problems))


class StaleContextEvent(PlannerError, ValueError):
    """An event whose time is too far from the bot's clock to be told apart from a replay."""

    def __init__(
        self,
        event_ids: Sequence[str],
        now: datetime,
        *,
        sent: str = "at",
        earlier: str = "give an earlier time as `observed_at`",
    ) -> None:
        self.event_ids = tuple(event_ids)
        super().__init__(
            f"event(s) {', '.join(map(repr, event_ids))}: `{sent}` is more than {int(SKEW.total_seconds() // 60)} "
            f"minutes from the bot's clock ({now.isoformat()}). Send events as they happen, with the time they "
            f"are sent, and keep the sender's clock in sync; {earlier}."
        )


class ReplayedContextEvent(PlannerError, ValueError):
    """An event id this source has posted before: nothing of the post is stored."""

    def __init__(self, source: str, event_ids: Sequence[str]) -> None:
        self.source = source
        self.event_ids = tuple(event_ids)
        super().__init__(
            f"source {source!r} already posted event id(s) {', '.join(map(repr, event_ids))}: each event id is "
            "accepted once, so nothing of this post was stored. Give every event a new id."
        )


class ContextSourceNotFound(PlannerError, LookupError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        names = sorted(known)
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        listing = f" Known sources: {', '.join(names)}." if names else " No sources are registered yet."
        super().__init__(f"There is no context source named {name!r}.{hint}{listing}")


class ContextSourceExists(PlannerError, ValueError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"A context source named {name!r} is already registered. Choose another name, or rotate its secret."
        )


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


_FACT_TYPES = {t.value: t for t in FactType}


def fact_from_row(row: Row[Any]) -> Fact:
    """A fact from a row of `context_facts` (or a row holding its columns)."""
    return Fact(
        id=row.id,
        tenant_id=row.tenant_id,
        source=row.source,
        event_id=row.event_id,
        account=row.account,
        type=_FACT_TYPES[row.type],
        attributes=dict(row.attributes or {}),
        observed_at=row.observed_at,
        expires_at=row.expires_at,
        received_at=row.received_at,
        superseded_at=row.superseded_at,
    )


def _source(row: Row[Any]) -> ContextSource:
    return ContextSource(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        created_by=row.created_by,
        created_at=row.created_at,
        rotated_at=row.rotated_at,
    )


# ---- parsing posted events -----------------------------------------------------------------------------------------


def _time(value: Any, path: str, problems: list[str]) -> datetime | None:
    if not isinstance(value, str):
        problems.append(f"{path}: expected an ISO-8601 time with its offset, like 2026-01-05T09:00:00Z")
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        problems.append(f"{path}: {value!r} is not an ISO-8601 time like 2026-01-05T09:00:00Z")
        return None
    if parsed.tzinfo is None:
        problems.append(f"{path}: {value!r} has no offset; add one, like 2026-01-05T09:00:00Z or +01:00")
        return None
    return parsed


def _text_field(value: Any, path: str, problems: list[str], *, limit: int = 200) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{path}: expected some text")
        return None
    if len(value.strip()) > limit:
        problems.append(f"{path}: at most {limit} characters")
        return None
    return value.strip()


def _one_event(raw: Any, path: str, problems: list[str]) -> ContextEvent | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{path or 'event'}: expected an object with id, type, account and at")
        return None
    at = f"{path}." if path else ""
    before = len(problems)
    for key in raw:
        if key not in _EVENT_FIELDS:
            close = difflib.get_close_matches(str(key), _EVENT_FIELDS, n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{at}{key}: not a field of an event{hint}; fields: {', '.join(_EVENT_FIELDS)}")
    for required in ("id", "type", "account", "at"):
        if required not in raw:
            problems.append(f"{at}{required}: missing")
    event_id = _text_field(raw["id"], f"{at}id", problems) if "id" in raw else None
    account = _text_field(raw["account"], f"{at}account", problems) if "account" in raw else None
    fact_type: FactType | None = None
    if "type" in raw:
        fact_type = _FACT_TYPES.get(str(raw["type"]))
        if fact_type is None:
            close = difflib.get_close_matches(str(raw["type"]), list(_FACT_TYPES), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{at}type: {raw['type']!r} is not a fact type{hint}; known: {', '.join(_FACT_TYPES)}")
    sent = _time(raw["at"], f"{at}at", problems) if "at" in raw else None
    observed = _time(raw["observed_at"], f"{at}observed_at", problems) if raw.get("observed_at") is not None else None
    attributes = raw.get("attributes")
    if attributes is None:
        attributes = {}
    elif not isinstance(attributes, Mapping):
        problems.append(f"{at}attributes: expected an object of names to values")
    ttl: timedelta | None = None
    hours = raw.get("ttl_hours")
    if hours is not None:
        if (
            isinstance(hours, bool)
            or not isinstance(hours, int | float)
            or not 0 < hours <= MAX_TTL / timedelta(hours=1)
        ):
            problems.append(f"{at}ttl_hours: expected a number of hours above 0 and at most {MAX_TTL.days * 24}")
        else:
            ttl = timedelta(hours=hours)
    if sent is not None and observed is not None and observed > sent:
        problems.append(f"{at}observed_at: after `at`; a fact is observed before it is sent")
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
    problems: list[str] = []
    if isinstance(payload, list):
        if not payload:
            raise InvalidContextEvent(["events: the list is empty; post at least one event"])
        if len(payload) > MAX_EVENTS:
            raise InvalidContextEvent([f"events: {len(payload)} events; post at most {MAX_EVENTS} at a time"])
        found = [_one_event(raw, f"events[{n}]", problems) for n, raw in enumerate(payload)]
    else:
        found = [_one_event(payload, "", problems)]
    events = [event for event in found if event is not None]
    seen: set[str] = set()
    for event in events:
        if event.id in seen:
            problems.append(f"id: {event.id!r} appears twice in the post; every event needs its own id")
        seen.add(event.id)
    if problems:
        raise InvalidContextEvent(problems)
    return events


# ---- facts -------------------------------------------------------------------------------------------------------

LIVE_FACTS = and_(
    context_facts.c.tenant_id == bindparam("tenant_id"),
    context_facts.c.account.in_(bindparam("accounts", expanding=True)),
    context_facts.c.type.in_(bindparam("types", expanding=True)),
    context_facts.c.observed_at <= bindparam("at"),
    context_facts.c.observed_at >= bindparam("since"),
    context_facts.c.expires_at > bindparam("at"),
    or_(context_facts.c.superseded_at.is_(None), context_facts.c.superseded_at > bindparam("at")),
)
"""Facts in force at `:at` about some accounts, of some types, observed since `:since` (see `live_parameters`); the
(tenant, account, type, observed_at) index serves it. The policy engine joins it to its version check."""
_LIVE = select(context_facts).where(LIVE_FACTS).order_by(context_facts.c.observed_at.desc(), context_facts.c.id.desc())
_EPOCH = datetime.fromisoformat("0001-01-02T00:00:00+00:00")


def live_parameters(
    tenant_id: str,
    accounts: Iterable[str],
    *,
    types: Iterable[FactType | str] | None,
    at: datetime,
    since: datetime | None,
) -> dict[str, Any]:
    """The parameters of `LIVE_FACTS`."""
    return {
        "tenant_id": tenant_id,
        "accounts": sorted({a for a in accounts if a}),
        "types": sorted({str(t) for t in types} if types is not None else _FACT_TYPES),
        "at": at,
        "since": since or _EPOCH,
    }


class ContextFacts:
    """The facts of one tenant: what connected systems posted, and what holds now."""

    def __init__(self, store: Store, tenant_id: str) -> None:
        self._store = store
        self.tenant_id = tenant_id

    async def post(self, source: str, events: Sequence[ContextEvent]) -> list[Fact]:
        """Store the events of one post from `source` as facts, all or none.

        Raises StaleContextEvent (an event's `at` is too far from the clock), ReplayedContextEvent (an id this
        source posted before) or InvalidContextEvent (a time in the future).
        """
        now = self._store.clock()
        stale = [e.id for e in events if abs(e.at - now) > SKEW]
        if stale:
            raise StaleContextEvent(stale, now)
        ids = [e.id for e in events]
        try:
            async with self._store.transaction() as conn:
                seen = (
                    await conn.execute(
                        select(context_facts.c.event_id).where(
                            context_facts.c.tenant_id == self.tenant_id,
                            context_facts.c.source == source,
                            context_facts.c.event_id.in_(ids),
                        )
                    )
                ).all()
                if seen:
                    raise ReplayedContextEvent(source, sorted(event_id for (event_id,) in seen))
                return [await self._insert(conn, source, event, now) for event in events]
        except IntegrityError:
            # Another post of the same id committed between the check and the insert.
            raise ReplayedContextEvent(source, ids) from None

    async def _insert(self, conn: AsyncConnection, source: str, event: ContextEvent, now: datetime) -> Fact:
        observed = event.observed_at or event.at
        row: dict[str, Any] = {
            "tenant_id": self.tenant_id,
            "source": source,
            "event_id": event.id,
            "account": event.account,
            "type": event.type.value,
            "attributes": event.attributes,
            "observed_at": observed,
            "expires_at": observed + (event.ttl or DEFAULT_TTLS[event.type]),
            "received_at": now,
        }
        if event.type in _CLOSED_BY:
            closer = await self._closer_of(conn, event.account, event.type, event.attributes, observed)
            if closer is not None:
                row |= {"superseded_at": closer.observed_at, "superseded_by": closer.id}
        fact = fact_from_row((await conn.execute(insert(context_facts).values(**row).returning(context_facts))).one())
        if fact.type in CLOSES:
            await self._supersede(conn, fact)
        return fact

    def _same_one(self, key: str, closing: Mapping[str, Any], opening: Mapping[str, Any]) -> bool:
        """Whether a closing fact closes an opening one: the same id, or any when the closing one names none."""
        return closing.get(key) is None or closing.get(key) == opening.get(key)

    async def _closer_of(
        self, conn: AsyncConnection, account: str, opening: FactType, attributes: Mapping[str, Any], at: datetime
    ) -> Fact | None:
        """The earliest closing fact already stored that closes an opening fact observed at `at` (events can
        arrive out of order)."""
        closing, key = _CLOSED_BY[opening]
        rows = (
            await conn.execute(
                select(context_facts)
                .where(
                    context_facts.c.tenant_id == self.tenant_id,
                    context_facts.c.account == account,
                    context_facts.c.type == closing.value,
                    context_facts.c.observed_at >= at,
                )
                .order_by(context_facts.c.observed_at, context_facts.c.id)
            )
        ).all()
        return next((f for f in map(fact_from_row, rows) if self._same_one(key, f.attributes, attributes)), None)

    async def _supersede(self, conn: AsyncConnection, closer: Fact) -> None:
        opening, key = CLOSES[closer.type]
        rows = (
            await conn.execute(
                select(context_facts.c.id, context_facts.c.attributes).where(
                    context_facts.c.tenant_id == self.tenant_id,
                    context_facts.c.account == closer.account,
                    context_facts.c.type == opening.value,
                    context_facts.c.observed_at <= closer.observed_at,
                    context_facts.c.superseded_at.is_(None),
                )
            )
        ).all()
        closed = [fact_id for fact_id, attributes in rows if self._same_one(key, closer.attributes, attributes or {})]
        if closed:
            await conn.execute(
                update(context_facts)
                .where(context_facts.c.id.in_(closed))
                .values(superseded_at=closer.observed_at, superseded_by=closer.id)
            )

    async def live(
        self,
        accounts: Iterable[str],
        *,
        types: Iterable[FactType | str] | None = None,
        at: datetime | None = None,
        since: datetime | None = None,
        conn: AsyncConnection | None = None,
    ) -> list[Fact]:
        """The facts in force at `at` (now by default) about these accounts, newest first: observed by then, not
        expired, not closed; optionally of some types only, and observed since a time.

        Reads only those accounts' rows (an index serves it), never the whole table.
        """
        parameters = live_parameters(self.tenant_id, accounts, types=types, at=at or self._store.clock(), since=since)
        if not parameters["accounts"]:
            return []
        if conn is not None:
            rows = (await conn.execute(_LIVE, parameters)).all()
        else:
            async with self._store.engine.connect() as own:
                rows = (await own.execute(_LIVE, parameters)).all()
        return [fact_from_row(row) for row in rows]

    async def purge(self, *, at: datetime | None = None) -> int:
        """Delete the tenant's facts expired before `at` (now), once their ids no longer guard against replays;
        returns how many."""
        at = at or self._store.clock()
        async with self._store.transaction() as conn:
            result = await conn.execute(
                delete(context_facts).where(context_facts.c.tenant_id == self.tenant_id, *_purgeable(at))
            )
        return int(result.rowcount or 0)


async def purge_expired_facts(store: Store, at: datetime) -> int:
    """Delete every tenant's facts expired before `at`, once their ids no longer guard against replays (the
    scheduler's hourly housekeeping); returns how many."""
    async with store.transaction() as conn:
        result = await conn.execute(delete(context_facts).where(*_purgeable(at)))
    return int(result.rowcount or 0)


def _purgeable(at: datetime) -> tuple[Any, ...]:
    """Expired before `at`, and received long enough ago that its id no longer guards against a replay."""
    return context_facts.c.expires_at <= at, context_facts.c.received_at < at - 2 * SKEW


# ---- sources -----------------------------------------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    """The `X-COS-Signature` header value a source sends with `body`: `sha256=<hex HMAC-SHA256>`."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class ContextSources:
    """The connected systems of one tenant that may post context events, each with its own HMAC secret.

    A secret is generated here, returned once (to hand to the connected system), and kept encrypted with the
    vault; listings never show it.
    """

    def __init__(self, store: Store, tenant_id: str, vault: Vault) -> None:
        self._store = store
        self.tenant_id = tenant_id
        self._vault = vault
        # A stand-in secret, so an unknown source costs the same decryption and HMAC as a known one.
        self._decoy = vault.encrypt(secrets.token_urlsafe(32).encode())

    def _key(self, name: str) -> Any:
        return and_(context_sources.c.tenant_id == self.tenant_id, context_sources.c.name == name)

    async def _row(self, conn: AsyncConnection, name: str) -> Row[Any]:
        row = (await conn.execute(select(context_sources).where(self._key(name)))).first()
        if row is None:
            known = await conn.execute(
                select(context_sources.c.name).where(context_sources.c.tenant_id == self.tenant_id)
            )
            raise ContextSourceNotFound(name, [n for (n,) in known.all()])
        return row

    async def _record(self, conn: AsyncConnection, kind: str, source: ContextSource, actor: str) -> None:
        await event_log.record(
            conn,
            tenant_id=self.tenant_id,
            at=self._store.clock(),
            actor=actor,
            kind=kind,
            subject_type="context_source",
            subject_id=source.id,
            before=None,
            after={"name": source.name},
        )

    async def add(self, name: str, *, actor: str) -> str:
        """Register a source; returns its newly generated secret, which is never shown again.

        Raises InvalidValue (the name) or ContextSourceExists.
        """
        name = name.strip().lower()
        if not _NAME.fullmatch(name):
            raise InvalidValue(
                "source name", name, "letters, digits, '-', '_' or '.', starting with a letter or digit (100 at most)"
            )
        secret = secrets.token_urlsafe(32)
        try:
            async with self._store.transaction() as conn:
                row = (
                    await conn.execute(
                        insert(context_sources)
                        .values(
                            tenant_id=self.tenant_id,
                            name=name,
                            secret=self._vault.encrypt(secret.encode()),
                            created_by=actor,
                            created_at=self._store.clock(),
                        )
                        .returning(context_sources)
                    )
                ).one()
                await self._record(conn, "context_source.added", _source(row), actor)
        except IntegrityError:
            raise ContextSourceExists(name) from None
        return secret

    async def list_sources(self) -> list[ContextSource]:
        """The tenant's sources by name (without their secrets)."""
        async with self._store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(context_sources)
                    .where(context_sources.c.tenant_id == self.tenant_id)
                    .order_by(context_sources.c.name)
                )
            ).all()
        return [_source(row) for row in rows]

    async def remove(self, name: str, *, actor: str) -> ContextSource:
        """Forget a source and its secret (its facts stay until they expire). Raises ContextSourceNotFound."""
        async with self._store.transaction() as conn:
            source = _source(await self._row(conn, name.strip().lower()))
            await conn.execute(delete(context_sources).where(context_sources.c.id == source.id))
            await self._record(conn, "context_source.removed", source, actor)
        return source

    async def rotate(self, name: str, *, actor: str) -> str:
        """Give a source a new secret (the old one stops working at once); returns it, shown only this once.

        Raises ContextSourceNotFound.
        """
        secret = secrets.token_urlsafe(32)
        async with self._store.transaction() as conn:
            row = await self._row(conn, name.strip().lower())
            await conn.execute(
                update(context_sources)
                .where(context_sources.c.id == row.id)
                .values(secret=self._vault.encrypt(secret.encode()), rotated_at=self._store.clock())
            )
            await self._record(conn, "context_source.rotated", _source(row), actor)
        return secret

    async def verify(self, name: str, body: bytes, signature: str) -> bool:
        """Whether `signature` (`sha256=<hex>`) is the HMAC-SHA256 of `body` with the source's secret.

        An unknown source answers False after the same work as a known one, and the digests are compared in
        constant time, so the answer tells nothing about which sources exist. Raises UndecryptableSecret.
        """
        async with self._store.engine.connect() as conn:
            token = (await conn.execute(select(context_sources.c.secret).where(self._key(name)))).scalar()
        secret = self._vault.decrypt(token if token is not None else self._decoy).decode()
        expected = sign(secret, body)
        given = signature.strip().lower()
        return hmac.compare_digest(expected.encode(), given.encode()) and token is not None


async def reseal_source_secrets(store: Store, vault: Vault) -> int:
    """Re-encrypt every tenant's source secrets with the vault's newest key (after a key rotation); how many.

    Raises UndecryptableSecret if a secret is readable with none of the vault's keys (nothing is changed then).
    """
    async with store.transaction() as conn:
        rows = (await conn.execute(select(context_sources.c.id, context_sources.c.secret))).all()
        for source_id, token in rows:
            await conn.execute(
                update(context_sources).where(context_sources.c.id == source_id).values(secret=vault.rotate(token))
            )
    return len(rows)
