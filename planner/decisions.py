"""The decision log: every decision, who or which agent made it, why, on what data, under which rules, with which
approval.

Append-only and tamper-evident. Each tenant has one hash chain: entry `seq` n carries `prev_hash`, the hash of
entry n-1 (`GENESIS` for entry 1), and its own `hash`, the SHA-256 of the canonical JSON of all its fields
(`entry_hash`). `data_hash` is the SHA-256 of the canonical JSON of the data it was decided on. Editing, deleting
or reordering an entry therefore breaks a link, and `verify` names the first broken one. The chain's last entry is
also kept in `decision_heads`, so a deleted tail shows too; only someone who rewrites every entry from the tampered
one onwards *and* the head goes unseen, which is why `verify` reports each head hash, for an operator to keep
elsewhere.

There is no API to change or remove an entry. On PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE on the
table (migration 0008); an operator can also `REVOKE UPDATE, DELETE, TRUNCATE ON decisions FROM <the bot's role>`.

Any number of replicas may append: an appender locks its tenant's head row (`SELECT … FOR UPDATE` on PostgreSQL;
on SQLite the store's write lock serialises writers), so no two entries ever link to the same previous one; the
primary key `(tenant_id, seq)` stands behind that.

Canonical JSON: keys sorted, no whitespace, UTF-8 kept as is, no NaN; times as ISO 8601 in UTC, to the
microsecond.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, TextIO

from sqlalchemy import Select, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from planner.errors import InvalidValue, PlannerError, TenantMismatch
from planner.governance import DecisionRecord
from planner.schema import decision_heads, decision_refs, decisions, delegations, plans, tasks, weekly_items
from planner.store import Store

GENESIS = "0" * 64
"""The `prev_hash` of every tenant's first entry."""
MAX_DATA_BYTES = 256 * 1024
MAX_REFS = 100
_APPEND_ATTEMPTS = 5
_PAGE = 500
_LIMITS = {"actor": 200, "action": 100, "subject": 200, "verdict": 32}
_REF = re.compile(r"[a-z][a-z_]{0,31}:[A-Za-z0-9_.@:#-]{1,160}")
"""A reference held in the data: `task:12`, `fact:renewal:acme`, `account:acme-corp`… (not a URL)."""
_ID_KEYS = {
    "task": "task",
    "task_id": "task",
    "plan": "plan",
    "plan_id": "plan",
    "master_id": "plan",
    "delegation": "delegation",
    "delegation_id": "delegation",
    "approval": "approval",
    "approval_id": "approval",
    "decision_id": "decision",
}
_NAME_KEYS = {"agent": "agent", "adapter": "agent", "account": "account", "accounts": "account"}


class DecisionNotFound(PlannerError, LookupError):
    def __init__(self, seq: int) -> None:
        self.seq = seq
        super().__init__(f"No decision {seq} in the log. `decisions` lists the latest ones with their numbers.")


def canonical_json(value: Any) -> str:
    """The one JSON text of `value` that hashes are taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def data_hash(data: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a decision's data."""
    return _sha256(canonical_json(dict(data)))


@dataclass(frozen=True, kw_only=True)
class Decision:
    """An entry of the log: the `DecisionRecord` it was asked to keep, with its place in the chain."""

    tenant_id: str
    seq: int
    """1, 2, 3… within the tenant: the entry's number."""
    at: datetime
    actor: str
    action: str
    subject: str
    verdict: str
    rationale: str
    data: dict[str, Any]
    data_hash: str
    refs: tuple[str, ...]
    """What else it is about, besides its subject: references held in its data, and the plans of its tasks."""
    rules: tuple[str, ...]
    approval_id: int | None
    prev_hash: str
    hash: str

    @property
    def agent(self) -> str | None:
        """The agent it concerns: its actor when that is `agent:<name>`, else the agent named in its data."""
        if self.actor.startswith("agent:"):
            return self.actor.removeprefix("agent:")
        action = self.data.get("action")
        nested = action.get("agent") if isinstance(action, dict) else None
        named = self.data.get("agent") or self.data.get("adapter") or nested
        return named if isinstance(named, str) and named else None

    def hashed_fields(self) -> dict[str, Any]:
        """Everything its `hash` covers (the data through `data_hash`)."""
        return {
            "tenant_id": self.tenant_id,
            "seq": self.seq,
            "at": _iso(self.at),
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "verdict": self.verdict,
            "rationale": self.rationale,
            "data_hash": self.data_hash,
            "refs": list(self.refs),
            "rules": list(self.rules),
            "approval_id": self.approval_id,
            "prev_hash": self.prev_hash,
        }

    def as_json(self) -> dict[str, Any]:
        """The entry as exported: every field, so an export can be checked on its own."""
        return {**self.hashed_fields(), "data": self.data, "hash": self.hash}


def entry_hash(decision: Decision) -> str:
    """SHA-256 of the canonical JSON of every field of an entry but its own hash."""
    return _sha256(canonical_json(decision.hashed_fields()))


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _decision(row: Row[Any]) -> Decision:
    return Decision(
        tenant_id=row.tenant_id,
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        verdict=row.verdict,
        rationale=row.rationale,
        data=row.data,
        data_hash=row.data_hash,
        refs=tuple(row.refs),
        rules=tuple(row.rules),
        approval_id=row.approval_id,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _plain_data(data: Mapping[str, Any]) -> dict[str, Any]:
    try:
        text = canonical_json(dict(data))
    except (TypeError, ValueError):
        raise InvalidValue("decision data", data, "an object of plain JSON values (text, numbers, lists…)") from None
    if len(text.encode("utf-8")) > MAX_DATA_BYTES:
        raise InvalidValue("decision data", f"{text[:40]}…", f"at most {MAX_DATA_BYTES} bytes of JSON: keep references")
    plain: dict[str, Any] = json.loads(text)
    return plain


def _references_in(data: Any, found: set[str], depth: int = 0) -> None:
    if depth > 6 or len(found) >= MAX_REFS:
        return
    if isinstance(data, dict):
        for key, value in data.items():
            if key in _ID_KEYS and isinstance(value, int) and not isinstance(value, bool):
                found.add(f"{_ID_KEYS[key]}:{value}")
            elif key in _NAME_KEYS:
                for name in value if isinstance(value, list) else [value]:
                    if isinstance(name, str) and name and not _REF.fullmatch(name):
                        found.add(f"{_NAME_KEYS[key]}:{name}"[:200])
            _references_in(value, found, depth + 1)
    elif isinstance(data, list):
        for value in data:
            _references_in(value, found, depth + 1)
    elif isinstance(data, str) and _REF.fullmatch(data):
        found.add(data)


def _ids(refs: Iterable[str], kind: str) -> set[int]:
    prefix = kind + ":"
    return {int(r[len(prefix) :]) for r in refs if r.startswith(prefix) and r[len(prefix) :].isdigit()}


class DecisionLog:
    """The decision log of one tenant: append, read, explain. Nothing in it is ever changed or removed."""

    def __init__(self, store: Store, tenant_id: str) -> None:
        if not tenant_id or not tenant_id.strip():
            raise InvalidValue("tenant id", tenant_id, "the Teams tenant id")
        self._store = store
        self.tenant_id = tenant_id

    # ---- appending -----------------------------------------------------------------------------------------

    async def record(self, record: DecisionRecord, *, conn: AsyncConnection | None = None) -> Decision:
        """Append `record` at the end of the tenant's chain and return the entry.

        With `conn`, it is written in the caller's transaction, so a change and the decision to make it commit
        together (on SQLite the caller must hold `store.transaction()`).

        Raises:
            TenantMismatch: the record belongs to another tenant.
            InvalidValue: a field is blank or too long, the data is not plain JSON or is too large, or the time
                has no time zone.
        """
        if conn is not None:
            return await self._append(conn, record)
        for attempt in range(_APPEND_ATTEMPTS):
            try:
                async with self._store.transaction() as own:
                    return await self._append(own, record)
            except IntegrityError:
                # Another process appended the same seq (two processes on one SQLite file): read the head again.
                if attempt == _APPEND_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _append(self, conn: AsyncConnection, record: DecisionRecord) -> Decision:
        if record.tenant_id != self.tenant_id:
            raise TenantMismatch(self.tenant_id, record.tenant_id)
        for name, limit in _LIMITS.items():
            value = getattr(record, name)
            if not value or not value.strip() or len(value) > limit:
                raise InvalidValue(name, value, f"some text of at most {limit} characters")
        at = record.at or self._store.clock()
        if at.tzinfo is None:
            raise InvalidValue("at", at, "a time with its time zone")
        at = at.astimezone(UTC)
        data = _plain_data(record.data)
        rules = tuple(str(rule) for rule in record.rules)
        refs = await self._references(conn, record, data)
        seq, prev_hash = await self._lock_head(conn)
        entry = Decision(
            tenant_id=self.tenant_id,
            seq=seq + 1,
            at=at,
            actor=record.actor,
            action=record.action,
            subject=record.subject,
            verdict=record.verdict,
            rationale=record.rationale.strip(),
            data=data,
            data_hash=data_hash(data),
            refs=refs,
            rules=rules,
            approval_id=record.approval_id,
            prev_hash=prev_hash,
            hash="",
        )
        entry = replace(entry, hash=entry_hash(entry))
        await conn.execute(
            insert(decisions).values(**entry.hashed_fields() | {"at": at, "data": data, "hash": entry.hash})
        )
        await conn.execute(
            insert(decision_refs),
            [{"tenant_id": self.tenant_id, "ref": ref, "seq": entry.seq} for ref in {entry.subject, *refs}],
        )
        await conn.execute(
            update(decision_heads)
            .where(decision_heads.c.tenant_id == self.tenant_id)
            .values(seq=entry.seq, hash=entry.hash)
        )
        return entry

    async def _lock_head(self, conn: AsyncConnection) -> tuple[int, str]:
        """The (seq, hash) of the chain's last entry, locked until the caller's transaction ends."""
        query = select(decision_heads.c.seq, decision_heads.c.hash).where(decision_heads.c.tenant_id == self.tenant_id)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        head = (await conn.execute(query)).first()
        if head is None:
            # The tenant's first entry (or a head row someone removed: carry on from the last entry there is).
            last = (
                await conn.execute(
                    select(decisions.c.seq, decisions.c.hash)
                    .where(decisions.c.tenant_id == self.tenant_id)
                    .order_by(decisions.c.seq.desc())
                    .limit(1)
                )
            ).first()
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        insert(decision_heads).values(
                            tenant_id=self.tenant_id, seq=last.seq if last else 0, hash=last.hash if last else GENESIS
                        )
                    )
            except IntegrityError:
                pass  # another replica created it first; its row is locked below
            head = (await conn.execute(query)).one()
        return head.seq, head.hash

    async def _references(self, conn: AsyncConnection, record: DecisionRecord, data: dict[str, Any]) -> tuple[str, ...]:
        """References in the data, plus the tasks of its delegations and the plans of its tasks and plans."""
        found: set[str] = set()
        _references_in(data, found)
        if record.actor.startswith("agent:"):
            found.add(record.actor[:200])
        if record.approval_id is not None:
            found.add(f"approval:{record.approval_id}")
        known = found | {record.subject}
        tenant = self.tenant_id
        if delegation_ids := _ids(known, "delegation"):
            rows = await conn.execute(
                select(delegations.c.task_id).where(
                    delegations.c.tenant_id == tenant, delegations.c.id.in_(delegation_ids)
                )
            )
            found.update(f"task:{task_id}" for (task_id,) in rows)
        if task_ids := _ids(found | known, "task"):
            rows = await conn.execute(
                select(tasks.c.plan_id, tasks.c.master_id).where(tasks.c.tenant_id == tenant, tasks.c.id.in_(task_ids))
            )
            found.update(f"plan:{plan_id}" for row in rows for plan_id in row)
            rows = await conn.execute(
                select(weekly_items.c.weekly_plan_id).where(
                    weekly_items.c.tenant_id == tenant, weekly_items.c.task_id.in_(task_ids)
                )
            )
            found.update(f"plan:{plan_id}" for (plan_id,) in rows)
        if plan_ids := _ids(found | known, "plan"):
            rows = await conn.execute(
                select(plans.c.parent_id, plans.c.master_id).where(
                    plans.c.tenant_id == tenant, plans.c.id.in_(plan_ids)
                )
            )
            found.update(f"plan:{plan_id}" for row in rows for plan_id in row if plan_id is not None)
        found.discard(record.subject)
        return tuple(sorted(ref for ref in found if len(ref) <= 200)[:MAX_REFS])

    # ---- reading -------------------------------------------------------------------------------------------

    def _query(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = None,
        agent: str | None = None,
        subject_prefix: str | None = None,
        verdict: str | None = None,
        plan: int | None = None,
        about: str | None = None,
    ) -> Select[Any]:
        query = select(decisions).where(decisions.c.tenant_id == self.tenant_id)
        if since is not None:
            query = query.where(decisions.c.at >= since)
        if until is not None:
            query = query.where(decisions.c.at < until)
        if actor:
            query = query.where(decisions.c.actor == actor)
        if subject_prefix:
            query = query.where(decisions.c.subject.startswith(subject_prefix, autoescape=True))
        if verdict:
            query = query.where(decisions.c.verdict == verdict)
        refs = [f"agent:{agent.removeprefix('agent:')}" if agent else None, f"plan:{plan}" if plan else None, about]
        for ref in filter(None, refs):
            query = query.where(
                decisions.c.seq.in_(
                    select(decision_refs.c.seq).where(
                        decision_refs.c.tenant_id == self.tenant_id, decision_refs.c.ref == ref
                    )
                )
            )
        return query

    async def entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = None,
        agent: str | None = None,
        subject_prefix: str | None = None,
        verdict: str | None = None,
        plan: int | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[Decision]:
        """Entries in log order (or newest first), filtered.

        `since` is inclusive and `until` exclusive; `actor` is exact (`policy`, `agent:hubspot`, a user id);
        `agent` matches every entry concerning that agent, whoever acted; `plan` matches entries about the plan,
        its sub-plans, their tasks and their delegations.
        """
        query = self._query(
            since=since,
            until=until,
            actor=actor,
            agent=agent,
            subject_prefix=subject_prefix,
            verdict=verdict,
            plan=plan,
        )
        query = query.order_by(decisions.c.seq.desc() if newest_first else decisions.c.seq)
        if limit is not None:
            query = query.limit(limit)
        async with self._store.engine.connect() as conn:
            return [_decision(row) for row in await conn.execute(query)]

    async def stream(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = None,
        agent: str | None = None,
        subject_prefix: str | None = None,
        verdict: str | None = None,
        plan: int | None = None,
    ) -> AsyncIterator[Decision]:
        """Like `entries`, in log order, read a page at a time (for exports of any size)."""
        query = self._query(
            since=since,
            until=until,
            actor=actor,
            agent=agent,
            subject_prefix=subject_prefix,
            verdict=verdict,
            plan=plan,
        )
        after = 0
        while True:
            async with self._store.engine.connect() as conn:
                page = (
                    await conn.execute(query.where(decisions.c.seq > after).order_by(decisions.c.seq).limit(_PAGE))
                ).all()
            for row in page:
                yield _decision(row)
            if len(page) < _PAGE:
                return
            after = page[-1].seq

    async def about(self, subject: str, *, limit: int = 5) -> list[Decision]:
        """The latest entries about `subject` (`task:12`, `delegation:3`, `plan:1`…), newest first: those whose
        subject it is, and those that refer to it (a delegation's decisions are about its task too)."""
        query = self._query(about=subject).order_by(decisions.c.seq.desc()).limit(limit)
        async with self._store.engine.connect() as conn:
            return [_decision(row) for row in await conn.execute(query)]

    async def get(self, seq: int) -> Decision:
        """Entry `seq`. Raises DecisionNotFound."""
        query = select(decisions).where(decisions.c.tenant_id == self.tenant_id, decisions.c.seq == seq)
        async with self._store.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            raise DecisionNotFound(seq)
        return _decision(row)


# ---- verification ----------------------------------------------------------------------------------------------


class BreakKind(StrEnum):
    EDITED = "edited"
    """An entry's content no longer matches its hash, or the hash the next entry recorded for it."""
    DELETED = "deleted"
    """Entries are missing from the chain."""
    REORDERED = "reordered"
    """An intact entry sits at another place than the one it was logged at."""
    INSERTED = "inserted"
    """Entries were added behind the log's back (past the head it recorded)."""


@dataclass(frozen=True, kw_only=True)
class ChainBreak:
    """The first broken link of a tenant's chain."""

    tenant_id: str
    seq: int
    """The entry where it breaks (the first missing one, for deletions)."""
    kind: BreakKind
    detail: str

    def __str__(self) -> str:
        return f"tenant {self.tenant_id}: entry {self.seq} {self.kind.value}: {self.detail}"


@dataclass(frozen=True, kw_only=True)
class ChainReport:
    tenant_id: str
    entries: int
    head_seq: int
    head_hash: str
    """Keep it elsewhere: a later `verify` that finds the same hash at the same seq vouches for all before it."""
    broken: ChainBreak | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    chains: tuple[ChainReport, ...]

    @property
    def ok(self) -> bool:
        return all(chain.ok for chain in self.chains)

    @property
    def broken(self) -> tuple[ChainBreak, ...]:
        return tuple(chain.broken for chain in self.chains if chain.broken is not None)


async def verify(store: Store, tenant_id: str | None = None) -> VerifyReport:
    """Recompute every tenant's chain (or one tenant's) and report the first broken link of each."""
    if tenant_id is not None:
        tenants = [tenant_id]
    else:
        async with store.engine.connect() as conn:
            found = await conn.execute(
                select(decisions.c.tenant_id).distinct().union(select(decision_heads.c.tenant_id))
            )
            tenants = sorted(row[0] for row in found)
    return VerifyReport(chains=tuple([await _verify_chain(store, tenant) for tenant in tenants]))


class _Links:
    """hash → (seq, prev_hash) of a tenant's stored entries, loaded once a break needs explaining."""

    def __init__(self, rows: Iterable[Row[Any]]) -> None:
        self._by_hash = {row.hash: (row.seq, row.prev_hash) for row in rows}

    def seq_of(self, hash_: str) -> int | None:
        found = self._by_hash.get(hash_)
        return found[0] if found else None

    def logged_position(self, hash_: str) -> int | None:
        """How many entries the chain ending at `hash_` holds: the seq an entry following it was logged at, - 1."""
        count = 0
        seen: set[str] = set()
        while hash_ != GENESIS:
            if hash_ in seen or hash_ not in self._by_hash:
                return None
            seen.add(hash_)
            hash_ = self._by_hash[hash_][1]
            count += 1
        return count


async def _links(store: Store, tenant_id: str) -> _Links:
    query = select(decisions.c.seq, decisions.c.hash, decisions.c.prev_hash).where(decisions.c.tenant_id == tenant_id)
    async with store.engine.connect() as conn:
        return _Links(await conn.execute(query))


def _range(first: int, last: int) -> str:
    return f"entry {first} is" if first == last else f"entries {first} to {last} are"


async def _verify_chain(store: Store, tenant_id: str) -> ChainReport:
    log = DecisionLog(store, tenant_id)
    count, prev_seq, prev_hash = 0, 0, GENESIS

    def report(seq: int, kind: BreakKind, detail: str) -> ChainReport:
        chain_break = ChainBreak(tenant_id=tenant_id, seq=seq, kind=kind, detail=detail)
        return ChainReport(
            tenant_id=tenant_id, entries=count, head_seq=prev_seq, head_hash=prev_hash, broken=chain_break
        )

    async for entry in log.stream():
        if entry.seq != prev_seq + 1:
            links = await _links(store, tenant_id)
            moved = links.seq_of(entry.prev_hash)
            if moved is not None and moved != prev_seq:
                return report(
                    prev_seq + 1,
                    BreakKind.REORDERED,
                    f"entry {entry.seq} follows the entry now numbered {moved}, not entry {prev_seq}",
                )
            return report(prev_seq + 1, BreakKind.DELETED, f"{_range(prev_seq + 1, entry.seq - 1)} missing")
        if data_hash(entry.data) != entry.data_hash:
            return report(entry.seq, BreakKind.EDITED, "its data is not the data it was logged with")
        if entry_hash(entry) != entry.hash:
            links = await _links(store, tenant_id)
            logged_after = links.logged_position(entry.prev_hash)
            if (
                logged_after is not None
                and logged_after + 1 != entry.seq
                and entry_hash(replace(entry, seq=logged_after + 1)) == entry.hash
            ):
                return report(
                    entry.seq, BreakKind.REORDERED, f"it was logged as entry {logged_after + 1}, and has been moved"
                )
            return report(entry.seq, BreakKind.EDITED, "its content (who, what, why, when…) no longer matches its hash")
        if entry.prev_hash != prev_hash:
            links = await _links(store, tenant_id)
            moved = links.seq_of(entry.prev_hash)
            if moved is not None and moved != prev_seq:
                return report(
                    entry.seq,
                    BreakKind.REORDERED,
                    f"it follows the entry now numbered {moved} in the chain, not entry {prev_seq}",
                )
            if prev_seq == 0:
                return report(entry.seq, BreakKind.EDITED, "it does not start the chain: earlier entries were removed")
            return report(
                prev_seq,
                BreakKind.EDITED,
                f"it was rewritten after entry {entry.seq} recorded its hash",
            )
        count, prev_seq, prev_hash = count + 1, entry.seq, entry.hash

    async with store.engine.connect() as conn:
        head = (
            await conn.execute(
                select(decision_heads.c.seq, decision_heads.c.hash).where(decision_heads.c.tenant_id == tenant_id)
            )
        ).first()
    if head is None:
        if count:
            return report(prev_seq + 1, BreakKind.DELETED, "the log's record of its last entry is missing")
    elif head.seq > prev_seq:
        return report(prev_seq + 1, BreakKind.DELETED, f"{_range(prev_seq + 1, head.seq)} missing from the end")
    elif head.seq < prev_seq:
        return report(head.seq + 1, BreakKind.INSERTED, f"the log ends at entry {head.seq}; later ones were added")
    elif head.hash != prev_hash:
        return report(prev_seq, BreakKind.EDITED, "it was rewritten after the log recorded its hash")
    return ChainReport(tenant_id=tenant_id, entries=count, head_seq=prev_seq, head_hash=prev_hash)


# ---- export ----------------------------------------------------------------------------------------------------

ExportFormat = Literal["jsonl", "csv"]
EXPORT_COLUMNS = (
    "tenant_id",
    "seq",
    "at",
    "actor",
    "action",
    "subject",
    "verdict",
    "rationale",
    "rules",
    "approval_id",
    "refs",
    "data",
    "data_hash",
    "prev_hash",
    "hash",
)


async def export(entries: AsyncIterable[Decision], out: TextIO, fmt: ExportFormat = "jsonl") -> int:
    """Write `entries` to `out` as JSON lines or CSV (lists and data as canonical JSON); how many were written.

    Every field is written, hashes included, so an export can be checked on its own.
    """
    if fmt not in ("jsonl", "csv"):
        raise InvalidValue("format", fmt, "jsonl or csv")
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    count = 0
    async for entry in entries:
        row = entry.as_json()
        if writer is None:
            out.write(canonical_json(row) + "\n")
        else:
            writer.writerow({k: canonical_json(row[k]) if k in ("rules", "refs", "data") else row[k] for k in row})
        count += 1
    return count


# ---- plain words -----------------------------------------------------------------------------------------------

_WHO = {"policy": "the policy engine", "llm": "the assistant", "bot": "the bot", "system": "the bot"}
_DID = {
    "go": "{who} allowed {what}",
    "flag": "{who} held {what} for a person's approval",
    "stop": "{who} stopped {what}",
    "approved": "{who} approved {what}",
    "rejected": "{who} rejected {what}",
    "expired": "{what} expired with no answer",
    "refused": "the bot refused {who}'s decision on {what}",
    "done": "{who} completed {what}",
    "succeeded": "{who} completed {what}",
    "failed": "{who} tried {what}, which failed",
}
_ACTIONS = {
    "approval.requested": "{who} asked a person to approve {what}",
    "approval.expired": "the approval request for {what} expired with no answer",
}
_NOUNS = {
    "delegation": "the delegation",
    "approval": "the approval request",
    "nudge": "the nudge",
    "tool_call": "the tool call",
    "plan": "the plan change",
    "plan_change": "the plan change",
}
_SUBJECTS = {"task": "task T{}", "plan": "plan P{}", "delegation": "delegation D{}", "approval": "approval request A{}"}


def describe_subject(subject: str) -> str:
    """`task:12` → `task T12`, `delegation:5` → `delegation D5`, `plan:3` → `plan P3`, `role:legal` → `role legal`."""
    kind, _, ident = subject.partition(":")
    template = _SUBJECTS.get(kind)
    if template and ident:
        return template.format(ident)
    return f"{kind} {ident}" if ident else subject


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def explain(decision: Decision, *, names: Mapping[str, str] | None = None) -> str:
    """The decision in plain words: when, who, what, for what, under which rules, why, and the approval.

    `names` maps user ids to display names.
    """
    actor, data = decision.actor, decision.data
    if actor.startswith("agent:"):
        who = f"agent {actor.removeprefix('agent:')}"
    else:
        who = _WHO.get(actor) or (names or {}).get(actor, actor)
    action = data.get("action")
    nested: dict[str, Any] = action if isinstance(action, dict) else {}
    candidates = (
        data.get("capability"),
        data.get("name"),
        data.get("operation"),
        nested.get("name"),
        data.get("action"),
    )
    name = next(filter(None, map(_text, candidates)), None)
    agent = decision.agent if not actor.startswith("agent:") else None
    first, _, last = decision.action.partition(".")
    noun = _NOUNS.get(first, "the " + first.replace("_", " "))
    what = f"agent {agent}'s {name or noun.removeprefix('the ')}" if agent else (name or noun)
    if decision.subject:
        what += f" for {describe_subject(decision.subject)}"
    verdict = decision.verdict.lower()
    template = _ACTIONS.get(decision.action) or _DID.get(verdict, "{who} decided {what}: {verdict}")
    if verdict in ("done", "succeeded") and last.endswith("ed") and not name:
        # `approvers.assigned`: say what was done (`assigned approvers`) rather than "completed the approvers".
        template, what = "{who} {did} {what}", what.replace(noun, first.replace("_", " "), 1)
    at = decision.at.astimezone(UTC)
    text = f"On {at:%Y-%m-%d} at {at:%H:%M} UTC, " + template.format(
        who=who, what=what, verdict=decision.verdict, did=last.replace("_", " ")
    )
    rationale = decision.rationale.strip().rstrip(".")
    if decision.rules:
        label = "rule" if len(decision.rules) == 1 else "rules"
        text += f": {label} {_and(list(decision.rules))} matched"
        if rationale:
            text += f" ({rationale})"
    elif rationale:
        text += f": {rationale}"
    approval = f"request A{decision.approval_id}" if decision.approval_id is not None else "none"
    return f"{text}. Approval: {approval}."
