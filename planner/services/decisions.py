"""The decision log: every decision, who or which agent made it, why, on what data, under which rules, with which
approval.

Append-only and tamper-evident against someone who can write the database: each tenant has one chain of entries,
each signed with a key the database does not hold (see `planner.domain.decisions` for the chain and its hashes), so
`verify` names the first broken entry.

What the database alone cannot show is a chain cut short with its head rolled back, or a tenant's entries and head
removed together. `checkpoint` writes each tenant's head (seq, hash, count, since when) to a file outside the
database, signed with the same key; the scheduler keeps it current, and `verify` holds the log to it.

There is no API to change or remove an entry. On PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE on the
table (migration 0008); the README shows how to give the table, and so the trigger, to a role other than the bot's.

Any number of replicas may append: an appender locks its tenant's head row, so no two entries ever link to the same
previous one; the primary key `(tenant_id, seq)` stands behind that.
"""

from __future__ import annotations

import csv
import os
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal, TextIO

from planner.domain.decisions import (
    ChainLinks,
    ChainReport,
    CheckedRecord,
    Checkpoint,
    CheckpointFlaw,
    CheckpointHead,
    CheckpointUnreadable,
    Decision,
    DecisionKeys,
    DecisionNotFound,
    NoDecisionKeys,
    VerifyReport,
    canonical_json,
    chained_entry,
    check_record,
    entry_refs,
    ids_of,
    kept_references,
    verify_chain,
)
from planner.domain.errors import Expected, Field, InvalidValue, PlannerError
from planner.domain.governance import DecisionRecord
from planner.domain.problems import Problem, ProblemCode, stated
from planner.store import Connection, Store
from planner.store import decisions as stored
from planner.store.decisions import EntryTaken

_APPEND_ATTEMPTS = 5
_PAGE = 500


class CheckpointInvalid(PlannerError, ValueError):
    """The checkpoint file at `path` cannot be trusted: `why`, with the `details` it names."""

    def __init__(self, path: Path, why: CheckpointFlaw, /, **details: object) -> None:
        self.path = path
        self.why = why
        self.details = details
        shown = "".join(f" {name}={detail!r}" for name, detail in details.items())
        super().__init__(f"decision log checkpoint {path} cannot be trusted: {why.code}{shown}")


class CheckpointRefused(PlannerError, RuntimeError):
    """The decision log no longer extends its checkpoint; `problems` says how, per tenant (the path of each)."""

    def __init__(self, path: Path, problems: Sequence[Problem]) -> None:
        self.path = path
        self.problems = list(problems)
        super().__init__(f"decision log no longer extends its checkpoint {path}: {stated(self.problems)}")


class DecisionLog:
    """The decision log of one tenant: append, read, verify. Nothing in it is ever changed or removed."""

    def __init__(self, store: Store, tenant_id: str) -> None:
        if not tenant_id or not tenant_id.strip():
            raise InvalidValue(Field.TENANT_ID, tenant_id, Expected.TEAMS_TENANT_ID)
        self._store = store
        self.tenant_id = tenant_id

    # ---- appending -----------------------------------------------------------------------------------------

    async def record(self, record: DecisionRecord, *, conn: Connection | None = None) -> Decision:
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
            except EntryTaken:
                # Another process appended the same seq (two processes on one SQLite file): read the head again.
                if attempt == _APPEND_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _append(self, conn: Connection, record: DecisionRecord) -> Decision:
        checked = check_record(record, self.tenant_id, self._store.clock())
        refs = await self._references(conn, checked)
        head = await stored.lock_head(conn, self.tenant_id)
        entry = chained_entry(checked, refs=refs, after=head, keys=self._store.decision_keys)
        await stored.append(conn, entry)
        return entry

    async def _references(self, conn: Connection, checked: CheckedRecord) -> tuple[str, ...]:
        """References in the data, plus the tasks of its delegations and the plans of its tasks and plans."""
        found = checked.references()
        subject = checked.record.subject
        known = found | {subject}
        tenant = self.tenant_id
        if delegation_ids := ids_of(known, "delegation"):
            found.update(
                f"task:{task_id}" for task_id in await stored.tasks_of_delegations(conn, tenant, delegation_ids)
            )
        if task_ids := ids_of(found | known, "task"):
            found.update(f"plan:{plan_id}" for plan_id in await stored.plans_of_tasks(conn, tenant, task_ids))
        if plan_ids := ids_of(found | known, "plan"):
            found.update(f"plan:{plan_id}" for plan_id in await stored.parents_of_plans(conn, tenant, plan_ids))
        return kept_references(found, subject)

    # ---- reading -------------------------------------------------------------------------------------------

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
        async with self._store.read() as conn:
            return await stored.entries(
                conn,
                self.tenant_id,
                since=since,
                until=until,
                actor=actor,
                subject_prefix=subject_prefix,
                verdict=verdict,
                refs=entry_refs(agent, plan, None),
                newest_first=newest_first,
                limit=limit,
            )

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
        after = 0
        while True:
            async with self._store.read() as conn:
                page = await stored.entries(
                    conn,
                    self.tenant_id,
                    since=since,
                    until=until,
                    actor=actor,
                    subject_prefix=subject_prefix,
                    verdict=verdict,
                    refs=entry_refs(agent, plan, None),
                    after=after,
                    limit=_PAGE,
                )
            for entry in page:
                yield entry
            if len(page) < _PAGE:
                return
            after = page[-1].seq

    async def about(self, subject: str, *, limit: int = 5) -> list[Decision]:
        """The latest entries about `subject` (`task:12`, `delegation:3`, `plan:1`…), newest first: those whose
        subject it is, and those that refer to it (a delegation's decisions are about its task too)."""
        async with self._store.read() as conn:
            return await stored.entries(
                conn, self.tenant_id, refs=entry_refs(None, None, subject), newest_first=True, limit=limit
            )

    async def get(self, seq: int) -> Decision:
        """Entry `seq`. Raises DecisionNotFound."""
        async with self._store.read() as conn:
            found = await stored.entry(conn, self.tenant_id, seq)
        if found is None:
            raise DecisionNotFound(seq)
        return found


# ---- verification ----------------------------------------------------------------------------------------------


async def verify(store: Store, tenant_id: str | None = None, *, checkpoint: Checkpoint | None = None) -> VerifyReport:
    """Check every tenant's chain (or one tenant's) with the store's keys, and against `checkpoint` (see
    `read_checkpoint`); report the first broken link of each. A tenant the checkpoint saw and the database no longer
    holds is reported too."""
    seen = dict(checkpoint.heads) if checkpoint is not None else {}
    if tenant_id is not None:
        tenants = [tenant_id]
    else:
        async with store.read() as conn:
            tenants = sorted(await stored.tenants(conn) | set(seen))
    chains = [await _verify_chain(store, tenant, checkpoint) for tenant in tenants]
    return VerifyReport(chains=tuple(chains))


async def _verify_chain(store: Store, tenant_id: str, checkpoint: Checkpoint | None) -> ChainReport:
    async def links() -> ChainLinks:
        async with store.read() as conn:
            return await stored.links(conn, tenant_id)

    async def head() -> tuple[int, str] | None:
        async with store.read() as conn:
            return await stored.head(conn, tenant_id)

    return await verify_chain(
        tenant_id,
        DecisionLog(store, tenant_id).stream(),
        keys=store.decision_keys,
        links=links,
        head=head,
        checkpoint=checkpoint,
    )


# ---- checkpoints -----------------------------------------------------------------------------------------------


def read_checkpoint(path: Path, keys: DecisionKeys | None) -> Checkpoint | None:
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
        return Checkpoint.from_signed_json(text, keys)
    except CheckpointUnreadable as error:
        raise CheckpointInvalid(path, error.why, **error.details) from None


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
    previous = read_checkpoint(path, keys)
    before = dict(previous.heads) if previous is not None else {}
    async with store.read() as conn:
        heads = await stored.heads(conn)
        if previous is not None and heads == {tenant: (head.seq, head.hash) for tenant, head in before.items()}:
            return previous
        problems: list[Problem] = []
        for tenant, old in sorted(before.items()):
            if tenant not in heads:
                problems.append(Problem(ProblemCode.LOG_GONE, tenant, count=old.count))
            elif heads[tenant][0] < old.seq:
                problems.append(Problem(ProblemCode.LOG_SHORTER, tenant, end=heads[tenant][0], reached=old.seq))
            elif heads[tenant] != (old.seq, old.hash) and await stored.hash_of(conn, tenant, old.seq) != old.hash:
                problems.append(Problem(ProblemCode.ENTRY_CHANGED, tenant, seq=old.seq))
        if problems:
            raise CheckpointRefused(path, problems)
        count_of = await stored.counts(conn)
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
        raise InvalidValue(Field.FORMAT, fmt, Expected.ONE_OF, choices=("jsonl", "csv"))
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
