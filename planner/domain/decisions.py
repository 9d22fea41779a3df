"""The decision log's chain, as values and rules: entries, their canonical JSON and hashes, the keys that sign them,
and the check of a tenant's chain over its loaded entries.

Each tenant has one chain: entry `seq` n carries `prev_hash`, the hash of entry n-1 (`GENESIS` for entry 1), and its
own `hash`: the HMAC-SHA256, under a key the database does not hold (`DecisionKeys`), of the canonical JSON of all
its fields (`entry_hash`), the id of that key among them (`key_id`). `data_hash` is the SHA-256 of the canonical
JSON of the data it was decided on. Editing, deleting or reordering an entry breaks a link or a signature, and
re-hashing the rest of the chain needs the key, so `verify_chain` names the first broken entry. Entries logged
before the log was keyed have no `key_id` and a plain SHA-256 hash: they are reported as legacy, unkeyed (the first
signed entry after them vouches for them, since its signature covers the last one's hash).

A `Checkpoint` holds each tenant's head (seq, hash, count, since when), signed with the same key, to be kept outside
the database: it shows a chain cut short with its head rolled back, or a tenant's entries and head removed together.

Canonical JSON: keys sorted, no whitespace, UTF-8 kept as is, no NaN; times as ISO 8601 in UTC, to the
microsecond.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum, StrEnum
from typing import Any, Protocol

from planner.domain.errors import Expected, Field, InvalidValue, PlannerError, TenantMismatch
from planner.domain.governance import DecisionRecord

GENESIS = "0" * 64
"""The `prev_hash` of every tenant's first entry."""
KEY_PURPOSE = b"decision log signatures"
"""What the decision log's keys are derived for, from the secret keys (see `Vault.derive_keys`)."""
CHECKPOINT_FORMAT = "cos-decision-checkpoint/1"
MAX_DATA_BYTES = 256 * 1024
MAX_REFS = 100
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
        super().__init__(f"decision {seq} not found")


class NoDecisionKeys(PlannerError, LookupError):
    def __init__(self, tenant_id: str | None = None) -> None:
        self.tenant_id = tenant_id
        of = f" of tenant {tenant_id}" if tenant_id else ""
        super().__init__(f"the decision log{of} is signed, and this process has no key to sign with")


class CheckpointFlaw(Enum):
    """Why a checkpoint cannot be trusted: a code, and the names of the details it carries. The bot words each one
    (bot/text/decisions.py)."""

    def __init__(self, code: str, *details: str) -> None:
        self.code = code
        self.details = details

    NOT_A_CHECKPOINT = ("not_a_checkpoint",)
    OTHER_FORMAT = ("other_format", "format")
    """Its `format` is not the one this version writes."""
    KEY_NOT_CONFIGURED = ("key_not_configured", "key")
    SIGNATURE_FAILS = ("signature_fails",)
    """Its signature does not match its content: it was edited."""
    UNREADABLE_BODY = ("unreadable_body",)
    """It is signed, yet not a checkpoint this version reads."""


class CheckpointUnreadable(PlannerError, ValueError):
    """A checkpoint text that cannot be trusted: `why`, with the `details` it names."""

    def __init__(self, why: CheckpointFlaw, /, **details: object) -> None:
        self.why = why
        self.details = details
        shown = "".join(f" {name}={detail!r}" for name, detail in details.items())
        super().__init__(f"decision log checkpoint cannot be trusted: {why.code}{shown}")


class KeySource(Protocol):
    """Where the log's keys come from: the vault derives them from the secret keys."""

    def derive_keys(self, purpose: bytes) -> Sequence[bytes]: ...


def key_id(key: bytes) -> str:
    """A short name of a key, stored with what it signed: a hash of it, which tells nothing of the key."""
    return hashlib.sha256(b"chief-of-staff key id\n" + key).hexdigest()[:16]


class DecisionKeys:
    """The keys that sign the decision log, newest first. New entries are signed with the first; an entry is checked
    with the key its `key_id` names, so what an older key signed still verifies while that key is configured."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise InvalidValue(Field.DECISION_KEYS, "none", Expected.SOME_KEY)
        self._keys = {key_id(key): key for key in keys}
        self.signing_id = key_id(keys[0])

    @classmethod
    def from_vault(cls, vault: KeySource) -> DecisionKeys:
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


def plain_data(data: Mapping[str, Any]) -> dict[str, Any]:
    try:
        text = canonical_json(dict(data))
    except (TypeError, ValueError):
        raise InvalidValue(Field.DECISION_DATA, data, Expected.JSON_OBJECT) from None
    if len(text.encode("utf-8")) > MAX_DATA_BYTES:
        raise InvalidValue(Field.DECISION_DATA, f"{text[:40]}…", Expected.JSON_AT_MOST_BYTES, limit=MAX_DATA_BYTES)
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


def ids_of(refs: Iterable[str], kind: str) -> set[int]:
    """The numbers of the references of one kind: `task:12`, `task:14` → {12, 14}."""
    prefix = kind + ":"
    return {int(r[len(prefix) :]) for r in refs if r.startswith(prefix) and r[len(prefix) :].isdigit()}


# ---- appending -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CheckedRecord:
    """A record fit to be logged: its time in UTC, its data as plain JSON, its rules as text."""

    record: DecisionRecord
    at: datetime
    data: dict[str, Any]
    rules: tuple[str, ...]

    def references(self) -> set[str]:
        """What it refers to by itself: references held in its data, the agent that acted, its approval."""
        found: set[str] = set()
        _references_in(self.data, found)
        if self.record.actor.startswith("agent:"):
            found.add(self.record.actor[:200])
        if self.record.approval_id is not None:
            found.add(f"approval:{self.record.approval_id}")
        return found


def check_record(record: DecisionRecord, tenant_id: str, now: datetime) -> CheckedRecord:
    """`record` checked for the log of `tenant_id`, timed `now` unless it says when.

    Raises:
        TenantMismatch: the record belongs to another tenant.
        InvalidValue: a field is blank or too long, the data is not plain JSON or is too large, or the time
            has no time zone.
    """
    if record.tenant_id != tenant_id:
        raise TenantMismatch(tenant_id, record.tenant_id)
    for field, value, limit in (
        (Field.DECISION_ACTOR, record.actor, 200),
        (Field.DECISION_ACTION, record.action, 100),
        (Field.DECISION_SUBJECT, record.subject, 200),
        (Field.DECISION_VERDICT, record.verdict, 32),
    ):
        if not value or not value.strip() or len(value) > limit:
            raise InvalidValue(field, value, Expected.TEXT_AT_MOST, limit=limit)
    at = record.at or now
    if at.tzinfo is None:
        raise InvalidValue(Field.DECISION_TIME, at, Expected.TIME_WITH_ZONE)
    return CheckedRecord(
        record=record,
        at=at.astimezone(UTC),
        data=plain_data(record.data),
        rules=tuple(str(rule) for rule in record.rules),
    )


def kept_references(found: Iterable[str], subject: str) -> tuple[str, ...]:
    """The references an entry keeps: all but its subject, each short enough, sorted, at most `MAX_REFS`."""
    return tuple(sorted(ref for ref in set(found) - {subject} if len(ref) <= 200)[:MAX_REFS])


def chained_entry(
    checked: CheckedRecord,
    *,
    refs: tuple[str, ...],
    after: tuple[int, str, str | None],
    keys: DecisionKeys | None,
) -> Decision:
    """The entry that follows the chain's head `after` (its seq, hash and key id), signed with the newest key.

    Raises NoDecisionKeys when the chain is signed and there is no key to go on with.
    """
    record = checked.record
    seq, prev_hash, prev_key = after
    if keys is None and prev_key is not None:
        raise NoDecisionKeys(record.tenant_id)
    entry = Decision(
        tenant_id=record.tenant_id,
        seq=seq + 1,
        at=checked.at,
        actor=record.actor,
        action=record.action,
        subject=record.subject,
        verdict=record.verdict,
        rationale=record.rationale.strip(),
        data=checked.data,
        data_hash=data_hash(checked.data),
        refs=refs,
        rules=checked.rules,
        approval_id=record.approval_id,
        prev_hash=prev_hash,
        hash="",
        key_id=keys.signing_id if keys is not None else None,
    )
    return replace(entry, hash=entry_hash(entry, keys) or "")


def entry_refs(agent: str | None, plan: int | None, about: str | None) -> list[str]:
    """The references a reading asks its entries to hold: `agent:<name>`, `plan:<id>`, and `about` as is."""
    refs = [f"agent:{agent.removeprefix('agent:')}" if agent else None, f"plan:{plan}" if plan else None, about]
    return [ref for ref in refs if ref]


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


class BreakCode(Enum):
    """What exactly is wrong at a chain's break: a code, and the names of the details it carries (entries by their
    seq; `checkpoint_at`, when the checkpoint that saw otherwise was written). The bot words each one
    (bot/text/decisions.py); a test keeps every code worded with exactly its details."""

    def __init__(self, code: str, *details: str) -> None:
        self.code = code
        self.details = details

    # reordered
    OUT_OF_PLACE = ("out_of_place", "entry", "follows", "expected")
    """Entry `entry` sits next, yet follows the entry now numbered `follows`, not `expected`."""
    MOVED = ("moved", "logged_as")
    """The entry was logged as entry `logged_as`."""
    FOLLOWS_ANOTHER = ("follows_another", "follows", "expected")
    """The entry follows the entry now numbered `follows`, not `expected`."""
    # deleted or inserted
    MISSING = ("missing", "first", "last")
    MISSING_FROM_END = ("missing_from_end", "first", "last")
    HEAD_MISSING = ("head_missing",)
    """The log's record of its last entry is gone."""
    ADDED_AFTER_HEAD = ("added_after_head", "head")
    """The log's record of its last entry says `head`; later ones were added."""
    LOG_GONE = ("log_gone", "last", "checkpoint_at")
    """Entries 1 to `last` are gone, which the checkpoint saw."""
    HEAD_MOVED_BACK = ("head_moved_back", "first", "last", "head", "checkpoint_at")
    """Entries `first` to `last` are gone from the end, and the log's head moved back to `head`."""
    # edited
    DATA_CHANGED = ("data_changed",)
    UNSIGNED_AFTER_SIGNED = ("unsigned_after_signed",)
    NOT_ITS_HASH = ("not_its_hash",)
    NOT_ITS_SIGNATURE = ("not_its_signature",)
    NOT_THE_START = ("not_the_start",)
    REWRITTEN_BEFORE = ("rewritten_before", "next")
    """The entry changed after entry `next` recorded its hash."""
    HEAD_HASH_CHANGED = ("head_hash_changed",)
    NOT_AS_CHECKPOINTED = ("not_as_checkpointed", "checkpoint_at")
    # unknown key
    KEY_NOT_CONFIGURED = ("key_not_configured", "key")


@dataclass(frozen=True, init=False)
class ChainBreak:
    """The first broken link of a tenant's chain: at entry `seq` (the first missing one, for deletions), of a `kind`,
    `why` exactly with the `details` its code lists."""

    tenant_id: str
    seq: int
    kind: BreakKind
    why: BreakCode
    details: Mapping[str, object]

    def __init__(self, tenant_id: str, seq: int, kind: BreakKind, why: BreakCode, /, **details: object) -> None:
        object.__setattr__(self, "tenant_id", tenant_id)
        object.__setattr__(self, "seq", seq)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "why", why)
        object.__setattr__(self, "details", details)

    def __str__(self) -> str:
        shown = "".join(f" {name}={detail!r}" for name, detail in self.details.items())
        return f"tenant {self.tenant_id}: entry {self.seq} {self.kind.value}: {self.why.code}{shown}"


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


class ChainLinks:
    """hash → (seq, prev_hash) of a tenant's stored entries, loaded once a break needs explaining."""

    def __init__(self, links: Iterable[tuple[int, str, str]]) -> None:
        """`links`: the (seq, hash, prev_hash) of each entry."""
        self._by_hash = {hash_: (seq, prev_hash) for seq, hash_, prev_hash in links}

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


def _matches(expected: str | None, found: str) -> bool:
    return expected is not None and hmac.compare_digest(expected, found)


async def verify_chain(
    tenant_id: str,
    entries: AsyncIterable[Decision],
    *,
    keys: DecisionKeys | None,
    links: Callable[[], Awaitable[ChainLinks]],
    head: Callable[[], Awaitable[tuple[int, str] | None]],
    checkpoint: Checkpoint | None = None,
) -> ChainReport:
    """Check a tenant's chain: its `entries` in log order, then the `head` the log recorded (its seq and hash), and
    against what `checkpoint` saw of it; report the first broken link. `links` are asked for only to tell what
    happened at a break."""
    seen = checkpoint.heads.get(tenant_id) if checkpoint is not None else None
    count, legacy, prev_seq, prev_hash = 0, 0, 0, GENESIS
    seen_hash: str | None = None

    def report(seq: int, kind: BreakKind, why: BreakCode, **details: object) -> ChainReport:
        chain_break = ChainBreak(tenant_id, seq, kind, why, **details)
        return ChainReport(
            tenant_id=tenant_id,
            entries=count,
            head_seq=prev_seq,
            head_hash=prev_hash,
            legacy=legacy,
            broken=chain_break,
        )

    async for entry in entries:
        if entry.seq != prev_seq + 1:
            found_links = await links()
            moved = found_links.seq_of(entry.prev_hash)
            if moved is not None and moved != prev_seq:
                return report(
                    prev_seq + 1,
                    BreakKind.REORDERED,
                    BreakCode.OUT_OF_PLACE,
                    entry=entry.seq,
                    follows=moved,
                    expected=prev_seq,
                )
            return report(prev_seq + 1, BreakKind.DELETED, BreakCode.MISSING, first=prev_seq + 1, last=entry.seq - 1)
        if data_hash(entry.data) != entry.data_hash:
            return report(entry.seq, BreakKind.EDITED, BreakCode.DATA_CHANGED)
        if entry.key_id is None and count > legacy:
            return report(entry.seq, BreakKind.EDITED, BreakCode.UNSIGNED_AFTER_SIGNED)
        if entry.key_id is not None and (keys is None or not keys.knows(entry.key_id)):
            return report(entry.seq, BreakKind.UNKNOWN_KEY, BreakCode.KEY_NOT_CONFIGURED, key=entry.key_id)
        if not _matches(entry_hash(entry, keys), entry.hash):
            found_links = await links()
            logged_after = found_links.logged_position(entry.prev_hash)
            if (
                logged_after is not None
                and logged_after + 1 != entry.seq
                and _matches(entry_hash(replace(entry, seq=logged_after + 1), keys), entry.hash)
            ):
                return report(entry.seq, BreakKind.REORDERED, BreakCode.MOVED, logged_as=logged_after + 1)
            if entry.key_id is None:
                return report(entry.seq, BreakKind.EDITED, BreakCode.NOT_ITS_HASH)
            return report(entry.seq, BreakKind.EDITED, BreakCode.NOT_ITS_SIGNATURE)
        if entry.prev_hash != prev_hash:
            found_links = await links()
            moved = found_links.seq_of(entry.prev_hash)
            if moved is not None and moved != prev_seq:
                return report(
                    entry.seq, BreakKind.REORDERED, BreakCode.FOLLOWS_ANOTHER, follows=moved, expected=prev_seq
                )
            if prev_seq == 0:
                return report(entry.seq, BreakKind.EDITED, BreakCode.NOT_THE_START)
            return report(prev_seq, BreakKind.EDITED, BreakCode.REWRITTEN_BEFORE, next=entry.seq)
        count, prev_seq, prev_hash = count + 1, entry.seq, entry.hash
        legacy += entry.key_id is None
        if seen is not None and entry.seq == seen.seq:
            seen_hash = entry.hash

    recorded = await head()
    head_seq, head_hash = recorded if recorded is not None else (0, GENESIS)
    if recorded is None:
        if count:
            return report(prev_seq + 1, BreakKind.DELETED, BreakCode.HEAD_MISSING)
    elif head_seq > prev_seq:
        return report(prev_seq + 1, BreakKind.DELETED, BreakCode.MISSING_FROM_END, first=prev_seq + 1, last=head_seq)
    elif head_seq < prev_seq:
        return report(head_seq + 1, BreakKind.INSERTED, BreakCode.ADDED_AFTER_HEAD, head=head_seq)
    elif head_hash != prev_hash:
        return report(prev_seq, BreakKind.EDITED, BreakCode.HEAD_HASH_CHANGED)
    if seen is not None and checkpoint is not None:
        at = checkpoint.written_at
        if prev_seq == 0:
            return report(1, BreakKind.DELETED, BreakCode.LOG_GONE, last=seen.seq, checkpoint_at=at)
        if prev_seq < seen.seq:
            return report(
                prev_seq + 1,
                BreakKind.DELETED,
                BreakCode.HEAD_MOVED_BACK,
                first=prev_seq + 1,
                last=seen.seq,
                head=prev_seq,
                checkpoint_at=at,
            )
        if seen_hash != seen.hash:
            return report(seen.seq, BreakKind.EDITED, BreakCode.NOT_AS_CHECKPOINTED, checkpoint_at=at)
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
    def from_signed_json(cls, text: str, keys: DecisionKeys | None) -> Checkpoint:
        """The checkpoint a file holds (see `signed_json`), its signature checked.

        Raises:
            CheckpointUnreadable: it is not a checkpoint, its key is not configured, or its signature fails.
        """
        try:
            body = json.loads(text)
            signature = body.pop("signature")
            format_, signed_by = body["format"], body["key_id"]
        except (ValueError, TypeError, KeyError, AttributeError):
            raise CheckpointUnreadable(CheckpointFlaw.NOT_A_CHECKPOINT) from None
        if format_ != CHECKPOINT_FORMAT:
            raise CheckpointUnreadable(CheckpointFlaw.OTHER_FORMAT, format=format_)
        if keys is None or not isinstance(signed_by, str) or not keys.knows(signed_by):
            raise CheckpointUnreadable(CheckpointFlaw.KEY_NOT_CONFIGURED, key=signed_by)
        expected = keys.sign(_checkpoint_message(body), signed_by)
        if not isinstance(signature, str) or not _matches(expected, signature):
            raise CheckpointUnreadable(CheckpointFlaw.SIGNATURE_FAILS)
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
            raise CheckpointUnreadable(CheckpointFlaw.UNREADABLE_BODY) from None


def _checkpoint_message(body: Mapping[str, Any]) -> str:
    return CHECKPOINT_FORMAT + "\n" + canonical_json(dict(body))
