"""Shared context: facts about customers and accounts, posted by connected systems, read by the policy engine.

A connected system (a CRM, a help desk, a web analytics tool) is registered as a *source* of a tenant with an HMAC
secret of its own (`ContextSources`: the secret is kept encrypted with the `Vault` and shown only once). It posts
signed events to the bot (`POST /api/context/events`); each event becomes a `Fact` about one account
(`ContextFacts.post`), and every agent's actions are judged against the same facts. What a fact is, how long it
holds and what closes it are in `planner.domain.context`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from planner.domain.context import (
    CLOSED_BY,
    CLOSES,
    SKEW,
    ContextEvent,
    ContextSource,
    ContextSourceNotFound,
    Fact,
    FactType,
    ReplayedContextEvent,
    StaleContextEvent,
    closes,
    purgeable_received_before,
    source_name,
)
from planner.store import Connection, Store
from planner.store import context as stored
from planner.store import events as event_log
from planner.store.context import EventIdTaken
from planner.store.vault import Vault

SIGNATURE_PREFIX = "sha256="


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
                seen = await stored.posted_event_ids(conn, self.tenant_id, source, ids)
                if seen:
                    raise ReplayedContextEvent(source, sorted(seen))
                return [await self._insert(conn, source, event, now) for event in events]
        except EventIdTaken:
            # Another post of the same id committed between the check and the insert.
            raise ReplayedContextEvent(source, ids) from None

    async def _insert(self, conn: Connection, source: str, event: ContextEvent, now: datetime) -> Fact:
        observed = event.observed
        row: dict[str, Any] = {
            "tenant_id": self.tenant_id,
            "source": source,
            "event_id": event.id,
            "account": event.account,
            "type": event.type.value,
            "attributes": event.attributes,
            "observed_at": observed,
            "expires_at": event.expires_at,
            "received_at": now,
        }
        if event.type in CLOSED_BY:
            closer = await self._closer_of(conn, event.account, event.type, event.attributes, observed)
            if closer is not None:
                row |= {"superseded_at": closer.observed_at, "superseded_by": closer.id}
        fact = await stored.insert_fact(conn, **row)
        if fact.type in CLOSES:
            await self._supersede(conn, fact)
        return fact

    async def _closer_of(
        self, conn: Connection, account: str, opening: FactType, attributes: Mapping[str, Any], at: datetime
    ) -> Fact | None:
        """The earliest closing fact already stored that closes an opening fact observed at `at` (events can
        arrive out of order)."""
        closing, key = CLOSED_BY[opening]
        found = await stored.facts_observed_since(conn, self.tenant_id, account, closing, at)
        return next((f for f in found if closes(key, f.attributes, attributes)), None)

    async def _supersede(self, conn: Connection, closer: Fact) -> None:
        opening, key = CLOSES[closer.type]
        candidates = await stored.unsuperseded_facts(conn, self.tenant_id, closer.account, opening, closer.observed_at)
        closed = [fact_id for fact_id, attributes in candidates if closes(key, closer.attributes, attributes)]
        if closed:
            await stored.supersede(conn, closed, at=closer.observed_at, by=closer.id)

    async def live(
        self,
        accounts: Iterable[str],
        *,
        types: Iterable[FactType | str] | None = None,
        at: datetime | None = None,
        since: datetime | None = None,
        conn: Connection | None = None,
    ) -> list[Fact]:
        """The facts in force at `at` (now by default) about these accounts, newest first: observed by then, not
        expired, not closed; optionally of some types only, and observed since a time.

        Reads only those accounts' rows (an index serves it), never the whole table.
        """
        parameters = stored.live_parameters(
            self.tenant_id, accounts, types=types, at=at or self._store.clock(), since=since
        )
        if not parameters["accounts"]:
            return []
        if conn is not None:
            return await stored.live_facts(conn, parameters)
        async with self._store.read() as own:
            return await stored.live_facts(own, parameters)

    async def purge(self, *, at: datetime | None = None) -> int:
        """Delete the tenant's facts expired before `at` (now), once their ids no longer guard against replays;
        returns how many."""
        at = at or self._store.clock()
        async with self._store.transaction() as conn:
            return await stored.purge_facts(
                conn, expired_by=at, received_before=purgeable_received_before(at), tenant_id=self.tenant_id
            )


async def purge_expired_facts(store: Store, at: datetime) -> int:
    """Delete every tenant's facts expired before `at`, once their ids no longer guard against replays (the
    scheduler's hourly housekeeping); returns how many."""
    async with store.transaction() as conn:
        return await stored.purge_facts(conn, expired_by=at, received_before=purgeable_received_before(at))


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

    async def _source(self, conn: Connection, name: str) -> ContextSource:
        found = await stored.source(conn, self.tenant_id, name)
        if found is None:
            raise ContextSourceNotFound(name, await stored.source_names(conn, self.tenant_id))
        return found

    async def _record(self, conn: Connection, kind: str, source: ContextSource, actor: str) -> None:
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
        name = source_name(name)
        secret = secrets.token_urlsafe(32)
        async with self._store.transaction() as conn:
            source = await stored.insert_source(
                conn,
                self.tenant_id,
                name,
                secret=self._vault.encrypt(secret.encode()),
                created_by=actor,
                created_at=self._store.clock(),
            )
            await self._record(conn, "context_source.added", source, actor)
        return secret

    async def list_sources(self) -> list[ContextSource]:
        """The tenant's sources by name (without their secrets)."""
        async with self._store.read() as conn:
            return await stored.sources(conn, self.tenant_id)

    async def remove(self, name: str, *, actor: str) -> ContextSource:
        """Forget a source and its secret (its facts stay until they expire). Raises ContextSourceNotFound."""
        async with self._store.transaction() as conn:
            source = await self._source(conn, name.strip().lower())
            await stored.delete_source(conn, source.id)
            await self._record(conn, "context_source.removed", source, actor)
        return source

    async def rotate(self, name: str, *, actor: str) -> str:
        """Give a source a new secret (the old one stops working at once); returns it, shown only this once.

        Raises ContextSourceNotFound.
        """
        secret = secrets.token_urlsafe(32)
        async with self._store.transaction() as conn:
            source = await self._source(conn, name.strip().lower())
            await stored.set_secret(
                conn, source.id, self._vault.encrypt(secret.encode()), rotated_at=self._store.clock()
            )
            await self._record(conn, "context_source.rotated", source, actor)
        return secret

    async def verify(self, name: str, body: bytes, signature: str) -> bool:
        """Whether `signature` (`sha256=<hex>`) is the HMAC-SHA256 of `body` with the source's secret.

        An unknown source answers False after the same work as a known one, and the digests are compared in
        constant time, so the answer tells nothing about which sources exist. Raises UndecryptableSecret.
        """
        async with self._store.read() as conn:
            token = await stored.secret_of(conn, self.tenant_id, name)
        secret = self._vault.decrypt(token if token is not None else self._decoy).decode()
        expected = sign(secret, body)
        given = signature.strip().lower()
        return hmac.compare_digest(expected.encode(), given.encode()) and token is not None


async def reseal_source_secrets(store: Store, vault: Vault) -> int:
    """Re-encrypt every tenant's source secrets with the vault's newest key (after a key rotation); how many.

    Raises UndecryptableSecret if a secret is readable with none of the vault's keys (nothing is changed then).
    """
    async with store.transaction() as conn:
        rows = await stored.all_secrets(conn)
        for source_id, token in rows:
            await stored.set_secret(conn, source_id, vault.rotate(token))
    return len(rows)
