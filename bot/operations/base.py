"""One registry of operations, served to both the command grammar and the LLM's tool use.

An operation takes JSON-shaped arguments (what a tool call carries), checks them itself (so the grammar and the
LLM pass the same checks), runs against the planner, and returns a `Reply`. It declares its action kind and its
approval gates, and `Registry.run` passes every call through the one policy gate (`bot/governance.py`) before it
runs: a typed command, a card click and a model's tool call of the same operation get the same verdict.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot import governance
from bot.cards.markdown import excerpt, literal
from bot.parsing import ParseError, parse_date, parse_ref
from bot.text import errors, messages
from bot.text.people import person_name
from planner.domain.approvals import DEFAULT_EXPIRY, ApprovalRequest
from planner.domain.errors import InvalidValue, PlannerError
from planner.domain.governance import OPERATION_KINDS, ActionKind, DecisionRecord, GateCategory
from planner.domain.model import Plan, Tier
from planner.domain.plans import plans_meant
from planner.ports import AgentError, Clock, Recommender, utcnow
from planner.services.approvals import Record
from planner.services.plans import Plans
from planner.services.tenants import Tenant, Tenants
from planner.store.vault import VaultError

if TYPE_CHECKING:
    from bot.delegating import Delegator

logger = logging.getLogger(__name__)

IN_TEAMS = "teams"
"""A person's own typed command or card click in Teams."""
ASSISTANT = "assistant"
"""The model's tool call, made for the person whose message it was answering."""


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
    via: str = IN_TEAMS
    """How the call came: `teams` (the person typed or clicked) or `assistant` (the model called it for them)."""
    model: str = ""
    """The model that made the call, when `via` is `assistant`."""

    @property
    def by_model(self) -> bool:
        return self.via == ASSISTANT

    @property
    def actor(self) -> str:
        """Who acts, for the policy gate and the decision log: the person, or `llm` for the model on their behalf."""
        return "llm" if self.by_model else self.user_id


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
    """What an operation runs with: the caller's tenant's services, the caller, the caller's today."""

    def __init__(
        self,
        tenants: Tenants,
        caller: Caller,
        *,
        clock: Clock = utcnow,
        delegator: Delegator | None = None,
        resume: ResumeHook | None = None,
        record: Record | None = None,
        recommender: Recommender | None = None,
        approval_expiry: timedelta = DEFAULT_EXPIRY,
        approval: ApprovalRequest | None = None,
    ) -> None:
        self.tenants = tenants
        self.store = tenants.store
        self.caller = caller
        self.services: Tenant = tenants(caller.tenant_id)
        self.delegator = delegator
        self.resume = resume
        """Runs an approved request's action (the bot's wiring plugs it in); None leaves it to the scheduler."""
        self._record = record
        self.record = record if record is None or not caller.by_model else _as_the_model(record, caller)
        """Where decisions are written (the decision log); None keeps them out of it. What the model does is
        written as the model's, on behalf of the person it acts for."""
        self.approval = approval
        """The approved request this call carries out (set only by the bot's resume hook): its approval answers the
        flag it was held for, for that operation with those arguments only."""
        self.approval_expiry = approval_expiry
        """How long an approval the bot asks for waits (COS_APPROVAL_EXPIRY_HOURS)."""
        self.recommender = recommender
        """Who writes KPI recommendations (Claude when a key is set); None: the rules."""
        self.plans: Plans = self.services.plans
        self.directory = self.services.directory
        self.drafts = self.services.drafts
        self.clock = clock

    def now(self) -> datetime:
        return self.clock()

    def acting_as(self, caller: Caller, *, approval: ApprovalRequest | None = None) -> Context:
        """The same wiring for another caller (the model for this person, or the person an approval was for)."""
        return Context(
            self.tenants,
            caller,
            clock=self.clock,
            delegator=self.delegator,
            resume=self.resume,
            record=self._record,
            recommender=self.recommender,
            approval_expiry=self.approval_expiry,
            approval=approval,
        )

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
        """The plan named in `args`, or, when none is named, the one plan of that tier a request naming none means
        (`plans_meant`: the one active today, or the only one)."""
        value = args.get(name)
        if value not in (None, ""):
            return await self.plans.get_plan(parse_ref(value, "P", "a plan"), tier)
        if not default_active:
            raise BadArguments(messages.missing(name))
        candidates = plans_meant(await self.plans.list_plans(tier), self.today)
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
            # Named as the directory knows that id, not as the mention was written (the sender can write anything).
            person = await self.directory.person(mentioned) or await self.directory.remember_person(mentioned, name)
            return mentioned, person.name
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
        return {k: person_name(k, names) for k in wanted} | {self.caller.user_id: self.caller.name}


def version_arg(args: Mapping[str, Any]) -> int | None:
    """The version of the object a card showed (its buttons and forms send it); None when not given."""
    value = args.get("version")
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadArguments("version must be a whole number.") from None


def error_text(error: Exception) -> str:
    """What an error says, as a reply shows it. The bot's own (BadArguments, ParseError) are written as replies and
    quote people's words literally already; the planner's, the agents' and the vault's are rendered by bot/text."""
    return str(error) if isinstance(error, BadArguments | ParseError) else errors.describe(error)


def _as_the_model(record: Record, caller: Caller) -> Record:
    """`record`, writing what is done in the person's name as the model's, on their behalf."""

    async def as_the_model(entry: DecisionRecord) -> object:
        if entry.actor == caller.user_id:
            behalf = {"on_behalf_of": caller.user_id} | ({"model": caller.model} if caller.model else {})
            entry = replace(entry, actor=caller.actor, data={**entry.data, **behalf})
        return await record(entry)

    return as_the_model


Runner = Callable[[Context, Mapping[str, Any]], Awaitable[Reply]]
Masters = Callable[[Context, Mapping[str, Any]], Awaitable[Sequence[Plan]]]
"""The master plans whose goals or targets a call would change (none: it changes no strategy)."""
Shifts = Callable[[Context, Mapping[str, Any]], Awaitable[Sequence[Plan]]]
"""The plans a budget shift moves money between, the one it raises first (none: the call shifts no money)."""


@dataclass(frozen=True, kw_only=True)
class Operation:
    name: str
    summary: str
    usage: tuple[str, ...]
    parameters: dict[str, Any]
    run: Runner
    kind: ActionKind
    """What sort of action it is for the policy rules: `read`, `plan_change` or `setting`."""
    categories: tuple[GateCategory, ...] = ()
    """The approval gates it falls under. A strategy change is held unless the leader of the master plans it
    changes (`masters`) asks in person; the other gates hold it always."""
    masters: Masters | None = None
    """For a strategy change: the master plans whose goals or targets this call changes."""
    shifts: Shifts | None = None
    """For an operation under the budget gate that shifts money only sometimes (raising an allocation, not lowering
    it): the plans this call moves money between, the one it raises first; the gate holds the call only when there
    are some. Without it, every call is a budget shift."""
    holdable: bool = True
    """False only for the decisions on approvals: a flag on them would need an approval for every approval, so
    it is logged and they go ahead (a stop still stops them)."""
    human_only: bool = False
    """Only a person may run it (saving a draft): never offered to the LLM as a tool."""
    admin_only: bool = False
    """Only an admin (COS_ADMINS) may run it; never offered to the LLM either."""

    def __post_init__(self) -> None:
        if self.kind not in OPERATION_KINDS:
            raise ValueError(f"{self.name}: an operation's kind is one of {', '.join(OPERATION_KINDS)}")
        if GateCategory.STRATEGY in self.categories and self.masters is None:
            raise ValueError(f"{self.name}: a strategy change says which master plans it changes (`masters`)")

    def tool(self) -> dict[str, Any]:
        """This operation as an Anthropic tool definition."""
        return {"name": self.name, "description": self.summary, "input_schema": self.parameters}


class UnknownOperation(LookupError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        super().__init__(f"There is no operation {literal(repr(excerpt(name)))}.{hint}")


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
        """Run an operation once the policy gate lets it go (held or stopped, the reply says so and why); bad
        arguments and planner refusals become a helpful reply, never an exception."""
        operation = self.get(name)
        if operation.admin_only and not context.caller.is_admin:
            return Reply(text=messages.admins_only(context.caller.user_id), ok=False)
        try:
            held = await governance.check(operation, context, args)
            if held is not None:
                return Reply(text=held.text, ok=not held.stopped)
            return await operation.run(context, args)
        except (BadArguments, ParseError, InvalidValue) as error:  # not a value the command takes: show its forms
            return Reply(text=messages.refused(error_text(error), operation.usage), ok=False)
        except (PlannerError, AgentError, VaultError) as error:  # well written, refused for a reason: only the reason
            return Reply(text=error_text(error), ok=False)
