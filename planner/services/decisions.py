"""The decision log: every decision, who or which agent made it, why, on what data, under which rules, with which
approval.

Append-only and tamper-evident against someone who can write the database. Each tenant has one chain: entry `seq` n
carries `prev_hash`, the hash of entry n-1 (`GENESIS` for entry 1), and its own `hash`: the HMAC-SHA256, under a key
the database does not hold (`DecisionKeys`, derived from the secret keys), of the canonical JSON of all its fields
(`entry_hash`), the id of that key among them (`key_id`). `data_hash` is the SHA-256 of the canonical JSON of the
data it was decided on. Editing, deleting or reordering an entry breaks a link or a signature, and re-hashing the
rest of the chain needs the key, so `verify` names the first broken entry. Entries logged before the log was keyed
have no `key_id` and a plain SHA-256 hash: `verify` reports them as legacy, unkeyed (the first signed entry after
them vouches for them, since its signature covers the last one's hash).

What the database alone cannot show is a chain cut short with its head rolled back, or a tenant's entries and head
removed together. `checkpoint` writes each tenant's head (seq, hash, count, since when) to a file outside the
database, signed with the same key; the scheduler keeps it current, and `verify` holds the log to it.

There is no API to change or remove an entry. On PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE on the
table (migration 0008); the README shows how to give the table, and so the trigger, to a role other than the bot's.

Any number of replicas may append: an appender locks its tenant's head row (`SELECT … FOR UPDATE` on PostgreSQL;
on SQLite the store's write lock serialises writers), so no two entries ever link to the same previous one; the
primary key `(tenant_id, seq)` stands behind that.

Canonical JSON: keys sorted, no whitespace, UTF-8 kept as is, no NaN; times as ISO 8601 in UTC, to the
microsecond.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import os
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TextIO

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from planner.domain.errors import InvalidValue, PlannerError, TenantMismatch
from planner.domain.governance import DecisionRecord
from planner.store import Store
from planner.store.schema import decision_heads, decision_refs, decisions, delegations, plans, tasks, weekly_items
from planner.store.vault import Vault

GENESIS = "0" * 64
"""The `prev_hash` of every tenant's first entry."""
KEY_PURPOSE = "decision log signatures"
"""What the decision log's keys are derived for, from the secret keys (see `Vault.derive_keys`)."""
CHECKPOINT_FORMAT = "cos-decision-checkpoint/1"
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


class NoDecisionKeys(PlannerError, LookupError):
    def __init__(self, tenant_id: str | None = None) -> None:
        self.tenant_id = tenant_id
        what = f"The decision log of tenant {tenant_id} is signed" if tenant_id else "The decision log is signed"
        super().__init__(
            f"{what}, and this process has no key to sign with: set COS_SECRET_KEYS (in local mode, keep the local "
            "key file) as the bot's other processes have it."
        )


class CheckpointInvalid(PlannerError, ValueError):
    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        super().__init__(
            f"The decision log checkpoint {path} cannot be trusted: {reason}. Move it aside as evidence (do not "
            "delete it), run `cos decisions verify --checkpoints FILE` with a copy you trust if you keep one, then "
            "`cos decisions checkpoint` to start a new one."
        )


class CheckpointRefused(PlannerError, RuntimeError):
    def __init__(self, path: Path, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = tuple(problems)
        super().__init__(
            f"The decision log no longer extends its checkpoint {path} ({'; '.join(problems)}): the checkpoint is "
            "kept as it is. Run `cos decisions verify` to see what changed."
        )


def key_id(key: bytes) -> str:
    """A short name of a key, stored with what it signed: a hash of it, which tells nothing of the key."""
    return hashlib.sha256(b"chief-of-staff key id\n" + key).hexdigest()[:16]


class DecisionKeys:
    """The keys that sign the decision log, newest first. New entries are signed with the first; an entry is checked
    with the key its `key_id` names, so what an older key signed still verifies while that key is configured."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise InvalidValue("decision log keys", "none", "at least one key")
        self._keys = {key_id(key): key for key in keys}
        self.signing_id = key_id(keys[0])

    @classmethod
    def from_vault(cls, vault: Vault) -> DecisionKeys:
        """Keys derived from the vault's secret keys (HKDF), never the encryption keys themselves."""
        return cls(vault.derive_keys(KEY_PURPOSE))

    def knows(self, key_id: str) -> bool:
        return key_id in self._keys

    def sign(self, message: str, key_id: str | None = None) -> str | None:
        """HMAC-SHA256 of `message` under the key `key_id` names (the newest by default); None for a key not held."""
        key = self._keys.get(self.signing_id if key_id is None else key_id)
        if key is None:
            return None
        return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return f"DecisionKeys(<{len(self._keys)} key(s) hidden>, signing with {self.signing_id})"


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
    key_id: str | None = None
    """The key that signed it (see `DecisionKeys`); None for an entry logged before the log was keyed."""

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
        } | ({"key_id": self.key_id} if self.key_id is not None else {})

    def as_json(self) -> dict[str, Any]:
        """The entry as exported: every field, so an export can be checked on its own (with the key, if signed)."""
        return {**self.hashed_fields(), "key_id": self.key_id, "data": self.data, "hash": self.hash}


def entry_hash(decision: Decision, keys: DecisionKeys | None = None) -> str | None:
    """The hash of every field of an entry but its own hash, as canonical JSON: the HMAC-SHA256 under the key its
    `key_id` names, or the plain SHA-256 of a legacy, unkeyed entry. None when that key is not among `keys`."""
    text = canonical_json(decision.hashed_fields())
    if decision.key_id is None:
        return _sha256(text)
    return keys.sign(text, decision.key_id) if keys is not None else None


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
        key_id=row.key_id,
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
        seq, prev_hash, prev_key = await self._lock_head(conn)
        keys = self._store.decision_keys
        if keys is None and prev_key is not None:
            raise NoDecisionKeys(self.tenant_id)
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
            key_id=keys.signing_id if keys is not None else None,
        )
        entry = replace(entry, hash=entry_hash(entry, keys) or "")
        await conn.execute(
            insert(decisions).values(
                **entry.hashed_fields() | {"at": at, "data": data, "hash": entry.hash, "key_id": entry.key_id}
            )
        )
        await conn.execute(
            insert(decision_refs),
            [{"tenant_id": self.tenant_id, "ref": ref, "seq": entry.seq} for ref in {entry.subject, *refs}],
        )
        await conn.execute(
            update(decision_heads)
            .where(decision_heads.c.tenant_id == self.tenant_id)
            .values(seq=entry.seq, hash=entry.hash, key_id=entry.key_id)
        )
        return entry

    async def _lock_head(self, conn: AsyncConnection) -> tuple[int, str, str | None]:
        """The (seq, hash, key id) of the chain's last entry, locked until the caller's transaction ends."""
        query = select(decision_heads.c.seq, decision_heads.c.hash, decision_heads.c.key_id).where(
            decision_heads.c.tenant_id == self.tenant_id
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        head = (await conn.execute(query)).first()
        if head is None:
            # The tenant's first entry (or a head row someone removed: carry on from the last entry there is).
            last = (
                await conn.execute(
                    select(decisions.c.seq, decisions.c.hash, decisions.c.key_id)
                    .where(decisions.c.tenant_id == self.tenant_id)
                    .order_by(decisions.c.seq.desc())
                    .limit(1)
                )
            ).first()
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        insert(decision_heads).values(
                            tenant_id=self.tenant_id,
                            seq=last.seq if last else 0,
                            hash=last.hash if last else GENESIS,
                            key_id=last.key_id if last else None,
                        )
                    )
            except IntegrityError:
                pass  # another replica created it first; its row is locked below
            head = (await conn.execute(query)).one()
        return head.seq, head.hash, head.key_id

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
    """An entry's content no longer matches its signature (or hash), or the hash the next entry recorded for it."""
    DELETED = "deleted"
    """Entries are missing from the chain (from its end too, when a checkpoint saw them)."""
    REORDERED = "reordered"
    """An intact entry sits at another place than the one it was logged at."""
    INSERTED = "inserted"
    """Entries were added behind the log's back (past the head it recorded)."""
    UNKNOWN_KEY = "unknown key"
    """An entry names a key that is not configured, so it cannot be checked: a key dropped too soon, or a forgery."""


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
    legacy: int = 0
    """Entries 1 to `legacy` were logged before the log was keyed: hashed, not signed. A signed entry after them
    vouches for them (its signature covers the last one's hash)."""
    checkpoint_seq: int | None = None
    """The last entry the checkpoint saw, found as it saw it; None when no checkpoint was given or it has no such
    tenant."""
    broken: ChainBreak | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None

    @property
    def vouched(self) -> bool:
        """Whether its legacy entries are followed by a signed one."""
        return self.entries > self.legacy


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    chains: tuple[ChainReport, ...]

    @property
    def ok(self) -> bool:
        return all(chain.ok for chain in self.chains)

    @property
    def broken(self) -> tuple[ChainBreak, ...]:
        return tuple(chain.broken for chain in self.chains if chain.broken is not None)


async def verify(store: Store, tenant_id: str | None = None, *, checkpoint: Checkpoint | None = None) -> VerifyReport:
    """Check every tenant's chain (or one tenant's) with the store's keys, and against `checkpoint` (see
    `Checkpoint.read`); report the first broken link of each. A tenant the checkpoint saw and the database no longer
    holds is reported too."""
    seen = dict(checkpoint.heads) if checkpoint is not None else {}
    if tenant_id is not None:
        tenants = [tenant_id]
    else:
        async with store.engine.connect() as conn:
            found = await conn.execute(
                select(decisions.c.tenant_id).distinct().union(select(decision_heads.c.tenant_id))
            )
            tenants = sorted({row[0] for row in found} | set(seen))
    chains = [await _verify_chain(store, tenant, seen.get(tenant), checkpoint) for tenant in tenants]
    return VerifyReport(chains=tuple(chains))


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


def _matches(expected: str | None, found: str) -> bool:
    return expected is not None and hmac.compare_digest(expected, found)


async def _verify_chain(
    store: Store, tenant_id: str, seen: CheckpointHead | None, checkpoint: Checkpoint | None
) -> ChainReport:
    log, keys = DecisionLog(store, tenant_id), store.decision_keys
    count, legacy, prev_seq, prev_hash = 0, 0, 0, GENESIS
    seen_hash: str | None = None

    def report(seq: int, kind: BreakKind, detail: str) -> ChainReport:
        chain_break = ChainBreak(tenant_id=tenant_id, seq=seq, kind=kind, detail=detail)
        return ChainReport(
            tenant_id=tenant_id,
            entries=count,
            head_seq=prev_seq,
            head_hash=prev_hash,
            legacy=legacy,
            broken=chain_break,
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
        if entry.key_id is None and count > legacy:
            return report(
                entry.seq,
                BreakKind.EDITED,
                "it is not signed, yet it follows signed entries: it was rewritten by someone without the key",
            )
        if entry.key_id is not None and (keys is None or not keys.knows(entry.key_id)):
            return report(
                entry.seq,
                BreakKind.UNKNOWN_KEY,
                f"it names key {entry.key_id}, which is not configured, so it cannot be checked: list the key that "
                "signed it in COS_SECRET_KEYS (after a rotation, old keys stay listed for what they signed)",
            )
        if not _matches(entry_hash(entry, keys), entry.hash):
            links = await _links(store, tenant_id)
            logged_after = links.logged_position(entry.prev_hash)
            if (
                logged_after is not None
                and logged_after + 1 != entry.seq
                and _matches(entry_hash(replace(entry, seq=logged_after + 1), keys), entry.hash)
            ):
                return report(
                    entry.seq, BreakKind.REORDERED, f"it was logged as entry {logged_after + 1}, and has been moved"
                )
            proof = "hash" if entry.key_id is None else "signature"
            return report(
                entry.seq, BreakKind.EDITED, f"its content (who, what, why, when…) no longer matches its {proof}"
            )
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
        legacy += entry.key_id is None
        if seen is not None and entry.seq == seen.seq:
            seen_hash = entry.hash

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
    if seen is not None and checkpoint is not None:
        when = f"the checkpoint of {_iso(checkpoint.written_at)}"
        if prev_seq == 0:
            return report(
                1,
                BreakKind.DELETED,
                f"{_range(1, seen.seq)} missing: the tenant's whole log is gone, and {when} saw {seen.seq}",
            )
        if prev_seq < seen.seq:
            return report(
                prev_seq + 1,
                BreakKind.DELETED,
                f"{_range(prev_seq + 1, seen.seq)} missing from the end, and the log's head was moved back to entry "
                f"{prev_seq}: {when} saw {seen.seq} entries",
            )
        if seen_hash != seen.hash:
            return report(
                seen.seq,
                BreakKind.EDITED,
                f"it is not the entry {when} saw: it, or entries before it, were rewritten and re-hashed",
            )
    return ChainReport(
        tenant_id=tenant_id,
        entries=count,
        head_seq=prev_seq,
        head_hash=prev_hash,
        legacy=legacy,
        checkpoint_seq=seen.seq if seen is not None else None,
    )


# ---- checkpoints -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CheckpointHead:
    """The end of one tenant's chain, as a checkpoint saw it."""

    seq: int
    hash: str
    count: int
    """How many entries the tenant's log held."""
    at: datetime
    """When a checkpoint first saw the chain end here."""


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    """Each tenant's chain head at `written_at`, signed with the log's key and kept outside the database, where the
    bot's database role cannot roll it back."""

    written_at: datetime
    heads: Mapping[str, CheckpointHead]

    def signed_json(self, keys: DecisionKeys) -> str:
        """The checkpoint as the file holds it: its content and the HMAC-SHA256 of that content's canonical JSON."""
        body = {
            "format": CHECKPOINT_FORMAT,
            "written_at": _iso(self.written_at),
            "key_id": keys.signing_id,
            "tenants": {
                tenant: {"seq": head.seq, "hash": head.hash, "count": head.count, "at": _iso(head.at)}
                for tenant, head in sorted(self.heads.items())
            },
        }
        signature = keys.sign(_checkpoint_message(body))
        return json.dumps(body | {"signature": signature}, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def read(cls, path: Path, keys: DecisionKeys | None) -> Checkpoint | None:
        """The checkpoint in `path`, its signature checked; None when there is no file.

        Raises:
            CheckpointInvalid: it is not a checkpoint, its key is not configured, or its signature fails.
            OSError: the file cannot be read.
        """
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            body = json.loads(text)
            signature = body.pop("signature")
            format_, signed_by = body["format"], body["key_id"]
        except (ValueError, TypeError, KeyError, AttributeError):
            raise CheckpointInvalid(path, "it is not a decision log checkpoint") from None
        if format_ != CHECKPOINT_FORMAT:
            raise CheckpointInvalid(path, f"its format is {format_!r}, not {CHECKPOINT_FORMAT}")
        if keys is None or not isinstance(signed_by, str) or not keys.knows(signed_by):
            raise CheckpointInvalid(path, f"it was signed with key {signed_by}, which is not configured")
        expected = keys.sign(_checkpoint_message(body), signed_by)
        if not isinstance(signature, str) or not _matches(expected, signature):
            raise CheckpointInvalid(path, "its signature does not match its content: it was edited")
        try:
            heads = {
                str(tenant): CheckpointHead(
                    seq=int(head["seq"]),
                    hash=str(head["hash"]),
                    count=int(head["count"]),
                    at=datetime.fromisoformat(head["at"]),
                )
                for tenant, head in body["tenants"].items()
            }
            return cls(written_at=datetime.fromisoformat(body["written_at"]), heads=heads)
        except (ValueError, TypeError, KeyError, AttributeError):
            raise CheckpointInvalid(path, "it is signed, yet not a checkpoint this version reads") from None


def _checkpoint_message(body: Mapping[str, Any]) -> str:
    return CHECKPOINT_FORMAT + "\n" + canonical_json(dict(body))


async def checkpoint(store: Store, path: Path) -> Checkpoint:
    """Write each tenant's chain head to `path`, signed, when a head moved since the checkpoint there; return what
    the file holds. A new checkpoint must extend the one it replaces: every tenant still there, its chain as long,
    through the same entry at the head the old one saw.

    Raises:
        NoDecisionKeys: the store has no key to sign with.
        CheckpointInvalid: the file there cannot be trusted (it is left as it is).
        CheckpointRefused: the log no longer extends that checkpoint (it is left as it is).
        OSError: the file cannot be read or written.
    """
    keys = store.decision_keys
    if keys is None:
        raise NoDecisionKeys()
    previous = Checkpoint.read(path, keys)
    before = dict(previous.heads) if previous is not None else {}
    query = select(decision_heads.c.tenant_id, decision_heads.c.seq, decision_heads.c.hash)
    async with store.engine.connect() as conn:
        heads = {row.tenant_id: (row.seq, row.hash) for row in await conn.execute(query)}
        if previous is not None and heads == {tenant: (head.seq, head.hash) for tenant, head in before.items()}:
            return previous
        problems = []
        for tenant, old in sorted(before.items()):
            if tenant not in heads:
                problems.append(f"tenant {tenant}'s log is gone; it held {old.count} entries")
            elif heads[tenant][0] < old.seq:
                problems.append(f"tenant {tenant}'s log ends at entry {heads[tenant][0]}, it reached {old.seq}")
            elif heads[tenant] != (old.seq, old.hash):
                found = await conn.scalar(
                    select(decisions.c.hash).where(decisions.c.tenant_id == tenant, decisions.c.seq == old.seq)
                )
                if found != old.hash:
                    problems.append(f"tenant {tenant}'s entry {old.seq} is not the one the checkpoint saw")
        if problems:
            raise CheckpointRefused(path, problems)
        counts = await conn.execute(select(decisions.c.tenant_id, func.count()).group_by(decisions.c.tenant_id))
        count_of: dict[str, int] = {tenant: count for tenant, count in counts}
    now = store.clock()
    written = Checkpoint(
        written_at=now,
        heads={
            tenant: CheckpointHead(
                seq=seq,
                hash=hash_,
                count=count_of.get(tenant, 0),
                at=before[tenant].at if tenant in before and before[tenant].hash == hash_ else now,
            )
            for tenant, (seq, hash_) in heads.items()
        },
    )
    _replace_file(path, written.signed_json(keys))
    return written


def _replace_file(path: Path, text: str) -> None:
    """Write `text` to `path` in one step (a reader sees the old file or the new one), readable by its owner only."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


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
    "key_id",
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
