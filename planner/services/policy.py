"""The policy engine: go, flag or stop for an action, from the rules an admin set and the shared context.

Rules are data, a YAML or JSON document (`parse_policy` checks it whole and lists every problem with its path; the
rules themselves, and how an action is judged by them, are in `planner.domain.policy`). A tenant has one rule set in
force; each load stores a new version (`PolicySets.load`) and replaces the set in one transaction, so the change
applies to every agent's next action at once. `PolicyEngine.evaluate(action)` answers with the strictest verdict of
the rules that match (stop > flag > go; go when none does), every rule that matched with its reason, and the context
facts the rules read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import yaml

from planner.domain.context import Fact
from planner.domain.errors import TenantMismatch
from planner.domain.governance import Action, PolicyDecision
from planner.domain.policy import (
    CompiledRules,
    PolicyInvalid,
    PolicySet,
    Rule,
    RuleCache,
    decide,
    facts_wanted,
    policy_document,
    validate_policy,
)
from planner.domain.problems import Problem, ProblemCode
from planner.ports import Clock
from planner.store import Connection, Store
from planner.store import events as event_log
from planner.store import policies as stored
from planner.store.context import live_parameters
from planner.store.policies import VersionTaken

RECHECK = timedelta(seconds=1)
"""How long an engine trusts the rule set it compiled before asking the database again (see `PolicyEngine`)."""
LOAD_ATTEMPTS = 5


def parse_policy(text: str) -> tuple[Rule, ...]:
    """The rules in a YAML or JSON document. Raises PolicyInvalid listing every problem with its path."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        reason = str(getattr(error, "problem", None) or error)
        if mark is None:
            raise PolicyInvalid([Problem(ProblemCode.NOT_YAML, "document", reason=reason)]) from None
        line, column = mark.line + 1, mark.column + 1
        raise PolicyInvalid(
            [Problem(ProblemCode.NOT_YAML_AT, "document", line=line, column=column, reason=reason)]
        ) from None
    return validate_policy(document)


class PolicySets:
    """The versions of one tenant's rule set; the newest is in force."""

    def __init__(self, store: Store, tenant_id: str) -> None:
        self._store = store
        self.tenant_id = tenant_id

    async def load(self, document: str | Mapping[str, Any], *, actor: str) -> PolicySet:
        """Check a whole document (YAML or JSON text, or parsed) and make it the rule set in force, as a new version.

        Raises PolicyInvalid listing every problem (nothing is stored then).
        """
        if isinstance(document, str):
            rules, source = parse_policy(document), document
        else:
            rules, source = validate_policy(document), json.dumps(document, indent=2, ensure_ascii=False)
        kept = policy_document(rules)
        for attempt in range(LOAD_ATTEMPTS):
            now = self._store.clock()
            try:
                async with self._store.transaction() as conn:
                    current = await stored.current_version(conn, self.tenant_id)
                    version = current + 1
                    await stored.insert_version(
                        conn,
                        self.tenant_id,
                        version,
                        document=kept,
                        source=source,
                        rule_count=len(rules),
                        loaded_by=actor,
                        loaded_at=now,
                    )
                    await event_log.record(
                        conn,
                        tenant_id=self.tenant_id,
                        at=now,
                        actor=actor,
                        kind="policy.loaded",
                        subject_type="policy",
                        subject_id=version,
                        before={"version": current} if current else None,
                        after={"version": version, "rules": [rule.id for rule in rules]},
                    )
            except VersionTaken:
                if attempt == LOAD_ATTEMPTS - 1:
                    raise
                continue  # another load took this version number first: stack on top of it
            # Engines of this process see the new rules at their next evaluation, without waiting for a recheck.
            self._store.rule_cache.put(self.tenant_id, CompiledRules(version, rules), confirmed_at=now)
            return PolicySet(
                tenant_id=self.tenant_id, version=version, rules=rules, loaded_by=actor, loaded_at=now, source=source
            )
        raise AssertionError("unreachable")

    async def version(self) -> int:
        """The version in force; 0 when no rules were ever loaded."""
        async with self._store.read() as conn:
            return await stored.current_version(conn, self.tenant_id)

    async def active(self) -> PolicySet | None:
        """The rule set in force, or None when no rules were ever loaded."""
        async with self._store.read() as conn:
            found = await stored.latest(conn, self.tenant_id)
        if found is None:
            return None
        return PolicySet(
            tenant_id=self.tenant_id,
            version=found.version,
            rules=validate_policy(found.document),
            loaded_by=found.loaded_by,
            loaded_at=found.loaded_at,
            source=found.source,
        )


class PolicyEngine:
    """Go, flag or stop for the actions of one tenant, from its rules in force and the shared context.

    The rule set in force is confirmed against the database at most every `recheck` (a second by default; zero
    to confirm it at every evaluation), and at every evaluation that reads facts. A load made in this process
    applies at once; one made by another process (another replica, `cos policy load`) within `recheck`.
    Engines are cheap to make per call: by default they share the compiled rules the store keeps for its process
    (`Store.rule_cache`).
    """

    def __init__(
        self,
        store: Store,
        tenant_id: str,
        clock: Clock | None = None,
        *,
        cache: RuleCache | None = None,
        recheck: timedelta = RECHECK,
    ) -> None:
        self._store = store
        self.tenant_id = tenant_id
        self._clock: Callable[[], datetime] = clock or store.clock
        self._cache = cache if cache is not None else store.rule_cache
        self._recheck = recheck

    async def evaluate(
        self, action: Action, at: datetime | None = None, *, conn: Connection | None = None
    ) -> PolicyDecision:
        """The decision on `action` as of `at` (now by default; the facts as they were then, under the rules in force
        now): the strictest verdict of the matching rules.

        At most one query: when a rule that could match asks about facts, it reads the facts of the action's own
        accounts and which version is in force together; otherwise it confirms the version, unless that was done
        within `recheck`. Only when the version changed does it read and compile the new rules (and their facts).
        A caller that holds a connection (in the transaction that will carry the action out) can pass it.
        Raises TenantMismatch for another tenant's action.
        """
        if action.tenant_id != self.tenant_id:
            raise TenantMismatch(self.tenant_id, action.tenant_id)
        now = self._clock()
        at = at or now
        cached = self._cache.latest(self.tenant_id)
        if cached is not None:
            compiled, confirmed_at = cached
            candidates = compiled.candidates(action)
            if facts_wanted(candidates, action, at) is None and self._confirmed(confirmed_at, now):
                return decide(action, candidates, [], at)
        if conn is not None:
            return await self._evaluate(conn, action, at, now)
        async with stored.single_read(self._store) as own:
            return await self._evaluate(own, action, at, now)

    def _confirmed(self, confirmed_at: datetime, now: datetime) -> bool:
        """Whether the cached rules were confirmed as the version in force recently enough to use them unread."""
        return confirmed_at <= now < confirmed_at + self._recheck

    async def _evaluate(self, conn: Connection, action: Action, at: datetime, now: datetime) -> PolicyDecision:
        cached = self._cache.latest(self.tenant_id)
        compiled = cached[0] if cached is not None else None
        candidates: list[Rule] = compiled.candidates(action) if compiled is not None else []
        fetched = facts_wanted(candidates, action, at)
        facts: list[Fact] = []
        if fetched is None:
            version = await stored.current_version(conn, self.tenant_id)
        else:
            types, since = fetched
            parameters = live_parameters(self.tenant_id, action.accounts, types=types, at=at, since=since)
            version, facts = await stored.version_and_facts(conn, parameters)
        if compiled is None or compiled.version != version:
            rules: tuple[Rule, ...] = ()
            if version:
                rules = validate_policy(await stored.document(conn, self.tenant_id, version))
            compiled = CompiledRules(version, rules)
            candidates = compiled.candidates(action)
            wanted = facts_wanted(candidates, action, at)
            if wanted is None:
                facts = []
            elif wanted != fetched:
                types, since = wanted
                parameters = live_parameters(self.tenant_id, action.accounts, types=types, at=at, since=since)
                facts = await stored.live_facts(conn, parameters)
        self._cache.put(self.tenant_id, compiled, confirmed_at=now)
        return decide(action, candidates, facts, at)
