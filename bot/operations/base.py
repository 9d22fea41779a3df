"""One registry of operations, served to both the command grammar and the LLM's tool use.

An operation takes JSON-shaped arguments (what a tool call carries), checks them itself (so the grammar and the
LLM pass the same checks), runs against the planner, and returns a `Reply`.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot import messages
from bot.parsing import ParseError, parse_date, parse_ref
from planner.agents import AgentError
from planner.approvals import DEFAULT_EXPIRY, ApprovalRequest, Record
from planner.clock import Clock, utcnow
from planner.directory import Directory
from planner.drafts import Drafts
from planner.errors import PlannerError
from planner.measurement import Recommender
from planner.model import Plan, Tier
from planner.store import Store, TenantStore
from planner.vault import VaultError

if TYPE_CHECKING:
    from bot.delegating import Delegator

logger = logging.getLogger(__name__)


class BadArguments(ValueError):
    """Arguments an operation cannot use; the message says which and how to fix them."""


@dataclass(frozen=True, kw_only=True)
class Caller:
    """Who is asking, from where."""

    tenant_id: str
    user_id: str
    name: str
    time_zone: str | None = None
    conversation_kind: str = "personal"
    mentions: Mapping[str, str] = field(default_factory=dict)
    """Display names (case-folded) of the people @mentioned in the message, to their user ids."""
    is_admin: bool = False


@dataclass(frozen=True, kw_only=True)
class Reply:
    """What the bot answers: text, cards, and optionally a card that replaces the one acted on."""

    text: str = ""
    cards: tuple[dict[str, Any], ...] = ()
    card_update: dict[str, Any] | None = None
    ok: bool = True


ResumeHook = Callable[["Context", ApprovalRequest], Awaitable[str | None]]
"""Runs the action of an approval request just claimed for resumption; what it says is shown to the approver."""


class Context:
    """What an operation runs with: the tenant's store and directory, the caller, the caller's today."""

    def __init__(
        self,
        store: Store,
        caller: Caller,
        *,
        clock: Clock = utcnow,
        delegator: Delegator | None = None,
        resume: ResumeHook | None = None,
        record: Record | None = None,
        recommender: Recommender | None = None,
        approval_expiry: timedelta = DEFAULT_EXPIRY,
    ) -> None:
        self.store = store
        self.caller = caller
        self.delegator = delegator
        self.resume = resume
        """Runs an approved request's action (the bot's wiring plugs it in); None leaves it to the scheduler."""
        self.record = record
        """Where decisions are written (the decision log); None keeps them out of it."""
        self.approval_expiry = approval_expiry
        """How long an approval the bot asks for waits (COS_APPROVAL_EXPIRY_HOURS)."""
        self.recommender = recommender
        """Who writes KPI recommendations (Claude when a key is set); None: the rules."""
        self.plans: TenantStore = store.tenant(caller.tenant_id)
        self.directory = Directory(store, caller.tenant_id)
        self.drafts = Drafts(store, caller.tenant_id)
        self.clock = clock

    def now(self) -> datetime:
        return self.clock()

    @property
    def zone(self) -> ZoneInfo | None:
        if not self.caller.time_zone:
            return None
        try:
            return ZoneInfo(self.caller.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            return None

    @property
    def today(self) -> date:
        """Today where the caller is (UTC when their time zone is unknown)."""
        now = self.clock()
        zone = self.zone
        return now.astimezone(zone).date() if zone else now.date()

    # ---- argument helpers, shared by every operation -------------------------------------------------------

    def date_arg(self, args: Mapping[str, Any], name: str) -> date:
        """A required date argument. Raises BadArguments or ParseError."""
        found = self.optional_date_arg(args, name)
        if found is None:
            raise BadArguments(messages.missing(name))
        return found

    def optional_date_arg(self, args: Mapping[str, Any], name: str) -> date | None:
        value = args.get(name)
        if value in (None, ""):
            return None
        return parse_date(str(value), today=self.today)

    @staticmethod
    def text_arg(args: Mapping[str, Any], name: str) -> str:
        """A required, non-blank text argument, whitespace folded. Raises BadArguments."""
        found = Context.optional_text_arg(args, name)
        if found is None:
            raise BadArguments(messages.missing(name))
        return found

    @staticmethod
    def optional_text_arg(args: Mapping[str, Any], name: str) -> str | None:
        value = args.get(name)
        if value is None or not str(value).strip():
            return None
        return " ".join(str(value).split())

    async def plan_arg(
        self, args: Mapping[str, Any], name: str = "plan", *, tier: Tier | None = None, default_active: bool = True
    ) -> Plan:
        """The plan named in `args`, or, when none is named, the one plan of that tier active today."""
        value = args.get(name)
        if value not in (None, ""):
            return await self.plans.get_plan(parse_ref(value, "P", "a plan"), tier)
        if not default_active:
            raise BadArguments(messages.missing(name))
        candidates = [p for p in await self.plans.list_plans(tier) if p.window.includes(self.today)]
        if not candidates and tier is not None:
            candidates = await self.plans.list_plans(tier)
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise BadArguments(messages.no_plan_yet(tier))
        raise BadArguments(messages.which_plan(candidates))

    async def person_arg(self, who: str) -> tuple[str, str]:
        """(owner key, display name) for "me", an @mention, a known person's name, or a new name."""
        raw = " ".join(who.strip().split())
        if not raw:
            raise BadArguments(messages.missing("owner"))
        if raw.casefold() in ("me", "myself", "i"):
            return self.caller.user_id, self.caller.name
        name = raw.lstrip("@").strip()
        mentioned = self.caller.mentions.get(name.casefold())
        if mentioned:
            return mentioned, name
        known = await self.directory.people_named(name)
        if len(known) == 1:
            return known[0].user_id, known[0].name
        if len(known) > 1:
            raise BadArguments(messages.ambiguous_person(name, [p.name for p in known]))
        return name, name

    async def display_names(self, keys: Iterable[str | None]) -> dict[str, str]:
        """Display names of owner keys (user ids, or names typed for people the bot does not know yet)."""
        wanted = {k for k in keys if k} - {self.caller.user_id}
        names = await self.directory.names(wanted) if wanted else {}
        return {k: names.get(k, k) for k in wanted} | {self.caller.user_id: self.caller.name}


Runner = Callable[[Context, Mapping[str, Any]], Awaitable[Reply]]


@dataclass(frozen=True, kw_only=True)
class Operation:
    name: str
    summary: str
    usage: tuple[str, ...]
    parameters: dict[str, Any]
    run: Runner
    human_only: bool = False
    """Only a person may run it (saving a draft): never offered to the LLM as a tool."""
    admin_only: bool = False
    """Only an admin (COS_ADMINS) may run it; never offered to the LLM either."""

    def tool(self) -> dict[str, Any]:
        """This operation as an Anthropic tool definition."""
        return {"name": self.name, "description": self.summary, "input_schema": self.parameters}


class UnknownOperation(LookupError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        super().__init__(f"There is no operation {name!r}.{hint}")


class Registry:
    """Operations by name."""

    def __init__(self, operations: Iterable[Operation]) -> None:
        self._operations = {op.name: op for op in operations}

    def __iter__(self) -> Iterator[Operation]:
        return iter(self._operations.values())

    def __contains__(self, name: object) -> bool:
        return name in self._operations

    def get(self, name: str) -> Operation:
        """Raises UnknownOperation, suggesting the closest name."""
        try:
            return self._operations[name]
        except KeyError:
            raise UnknownOperation(name, self._operations) from None

    async def run(self, name: str, context: Context, args: Mapping[str, Any]) -> Reply:
        """Run an operation; bad arguments and planner refusals become a helpful reply, never an exception."""
        operation = self.get(name)
        if operation.admin_only and not context.caller.is_admin:
            return Reply(text=messages.ADMINS_ONLY, ok=False)
        try:
            return await operation.run(context, args)
        except (BadArguments, ParseError, PlannerError, AgentError, VaultError) as error:
            return Reply(text=messages.refused(str(error), operation.usage), ok=False)
