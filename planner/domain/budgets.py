"""Budgets, as marketing plans have them: a master plan's budget, its tactical plans' allocations of it, and spend.

A budget is money in one currency, kept in minor units (cents) so sums are exact. Like a KPI, it is defined once, on
the master plan; a tactical plan carries an *allocation* of it (a `Budget` row on the tactical plan, in the master's
currency), and the allocations together never exceed the master's budget. Spend is recorded like a reading, with the
day it was spent: it counts for the plan it was recorded on and for that plan's master plan, by its own day, so a
backdated spend lands where its day says.

Moving money between plans, or raising a plan's allocation, is a *budget shift* (it waits for the budget gate's
approvers); lowering an allocation, or recording spend, is not. A plan's first allocation, asked for by its master
plan's leader in person, is the plan being made, not a shift.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum

from planner.domain.errors import Expected, Field, InvalidValue, PlannerError
from planner.domain.model import Window
from planner.domain.problems import Problem, ProblemCode, parse_time, stated

MINOR_UNITS = 100
"""Cents per unit: every currency is kept to two decimals."""
LARGEST = 10**15
"""The largest amount accepted, in minor units (10 trillion): beyond any marketing budget, well inside a BIGINT."""
PACE_TOLERANCE = 0.10
"""How far spend may run from the share of the window gone (in points of the allocation) and still be on pace."""
_CURRENCY = re.compile(r"[A-Z]{3}")


class BudgetPace(StrEnum):
    """How spend compares with the share of the window gone."""

    NO_SPEND = "no_spend"
    ON_PACE = "on_pace"
    AHEAD = "ahead"
    """Spending faster than the window passes."""
    BEHIND = "behind"
    """Spending slower than the window passes."""
    OVER = "over"
    """More spent than allocated."""
    ENDED_WITHIN = "ended_within"
    """The window has ended and spend stayed within the allocation (final)."""
    ENDED_OVER = "ended_over"
    """The window has ended over the allocation (final)."""


@dataclass(frozen=True, kw_only=True)
class Budget:
    """A master plan's budget, or a tactical plan's allocation of its master's budget."""

    id: int
    tenant_id: str
    plan_id: int
    amount: int
    """In minor units."""
    currency: str
    version: int
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True, kw_only=True)
class Spend:
    """Money spent on a plan's behalf, on a day."""

    id: int
    tenant_id: str
    plan_id: int
    amount: int
    """In minor units."""
    currency: str
    spent_on: date
    at: datetime
    """When it was recorded."""
    source: str
    """`chat:<user>`, `event:<source>`."""
    actor: str


@dataclass(frozen=True, kw_only=True)
class BudgetStatus:
    """A plan's money as of a day: its budget (or allocation), what is spent by then, and the pace."""

    plan_id: int
    budget: Budget | None
    """None for a plan with spend but no allocation."""
    currency: str
    spent: int
    """Spent on this plan (a master plan: on it and its tactical plans) by the end of `as_of`, minor units."""
    allocated: int = 0
    """For a master plan: what its tactical plans are allocated, minor units."""
    window_gone: float
    """The share of the plan's window gone by the end of `as_of`, 0 to 1."""
    pace: BudgetPace

    @property
    def amount(self) -> int:
        return self.budget.amount if self.budget is not None else 0

    @property
    def spent_share(self) -> float | None:
        """Spent as a share of the budget, or None without one."""
        return self.spent / self.amount if self.amount else None


class OverAllocated(PlannerError, ValueError):
    """Allocations would exceed the master plan's budget; `headroom`: what is left to allocate (minor units)."""

    def __init__(self, *, master_id: int, plan_id: int, asked: int, headroom: int, currency: str) -> None:
        self.master_id = master_id
        self.plan_id = plan_id
        self.asked = asked
        self.headroom = headroom
        self.currency = currency
        super().__init__(
            f"allocating {asked} (minor units, {currency}) to plan {plan_id} exceeds master plan {master_id}'s "
            f"budget; headroom {headroom}"
        )


class BudgetBelowAllocations(PlannerError, ValueError):
    """A master plan's new budget would be less than its tactical plans are allocated already."""

    def __init__(self, *, master_id: int, asked: int, allocated: int, currency: str) -> None:
        self.master_id = master_id
        self.asked = asked
        self.allocated = allocated
        self.currency = currency
        super().__init__(f"budget {asked} {currency} of plan {master_id} is below its allocations {allocated}")


class NoBudget(PlannerError, LookupError):
    """The master plan of `plan_id` has no budget yet (or a plan to move money from has no allocation)."""

    def __init__(self, plan_id: int, master_id: int) -> None:
        self.plan_id = plan_id
        self.master_id = master_id
        super().__init__(f"master plan {master_id} (of plan {plan_id}) has no budget")


class CurrencyMismatch(PlannerError, ValueError):
    """Money given in another currency than the master plan's budget."""

    def __init__(self, *, plan_id: int, given: str, expected: str) -> None:
        self.plan_id = plan_id
        self.given = given
        self.expected = expected
        super().__init__(f"plan {plan_id}'s budget is in {expected}, not {given}")


class NotEnoughAllocated(PlannerError, ValueError):
    """Moving more money out of a plan than it is allocated."""

    def __init__(self, *, plan_id: int, asked: int, allocated: int, currency: str) -> None:
        self.plan_id = plan_id
        self.asked = asked
        self.allocated = allocated
        self.currency = currency
        super().__init__(f"plan {plan_id} is allocated {allocated} {currency}, less than {asked}")


def currency_of(text: str) -> str:
    """An ISO 4217-shaped currency code (`usd` → `USD`). Raises InvalidValue."""
    code = text.strip().upper()
    if not _CURRENCY.fullmatch(code):
        raise InvalidValue(Field.CURRENCY, text, Expected.CURRENCY_CODE)
    return code


def minor_units(value: float | int | str | Decimal, field: Field = Field.AMOUNT, *, allow_zero: bool = True) -> int:
    """An amount in minor units (cents), rounded half up to the cent. Raises InvalidValue for a negative, non-finite
    or absurdly large amount (and zero unless `allow_zero`)."""
    try:
        exact = Decimal(str(value))
    except InvalidOperation:
        raise InvalidValue(field, value, Expected.AMOUNT) from None
    if not exact.is_finite() or exact < 0 or (exact == 0 and not allow_zero):
        raise InvalidValue(field, value, Expected.AMOUNT_ZERO_OR_MORE if allow_zero else Expected.POSITIVE_AMOUNT)
    cents = int((exact * MINOR_UNITS).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if cents > LARGEST:
        raise InvalidValue(field, value, Expected.AMOUNT_BELOW, most=LARGEST // MINOR_UNITS)
    return cents


def require_currency(plan_id: int, given: str | None, expected: str) -> str:
    """The budget's currency, when `given` is none or the same. Raises CurrencyMismatch."""
    if given is not None and given != expected:
        raise CurrencyMismatch(plan_id=plan_id, given=given, expected=expected)
    return expected


def headroom(budget: Budget, allocations: Iterable[Budget], *, leaving_out: int | None = None) -> int:
    """What is left of the master's `budget` to allocate, counting every allocation but plan `leaving_out`'s."""
    taken = sum(a.amount for a in allocations if a.plan_id != leaving_out)
    return budget.amount - taken


def require_allocation(master: Budget, allocations: Sequence[Budget], *, plan_id: int, amount: int) -> None:
    """Allocating `amount` to plan `plan_id` keeps the allocations within the master's budget. Raises OverAllocated."""
    left = headroom(master, allocations, leaving_out=plan_id)
    if amount > left:
        raise OverAllocated(
            master_id=master.plan_id, plan_id=plan_id, asked=amount, headroom=max(left, 0), currency=master.currency
        )


def require_budget_covers(master_id: int, amount: int, currency: str, allocations: Sequence[Budget]) -> None:
    """A master plan's new budget covers what is allocated already. Raises BudgetBelowAllocations."""
    allocated = sum(a.amount for a in allocations)
    if amount < allocated:
        raise BudgetBelowAllocations(master_id=master_id, asked=amount, allocated=allocated, currency=currency)


def require_spend_day(plan_id: int, window: Window, spent_on: date, today: date) -> None:
    """Spend is of a day already come, inside its plan's window. Raises InvalidValue."""
    if spent_on > today:
        raise InvalidValue(Field.SPEND_DATE, spent_on.isoformat(), Expected.DAY_ON_OR_BEFORE, day=today)
    if not window.includes(spent_on):
        raise InvalidValue(
            Field.SPEND_DATE,
            spent_on.isoformat(),
            Expected.DAY_IN_WINDOW,
            plan=plan_id,
            start=window.start,
            end=window.end,
        )


def is_shift(current: Budget | None, amount: int, *, by_leader_in_person: bool) -> bool:
    """Whether setting a tactical plan's allocation to `amount` is a budget shift: raising it is; so is a first
    allocation unless the master plan's leader asks in person; lowering it is not."""
    if current is None:
        return amount > 0 and not by_leader_in_person
    return amount > current.amount


def spent_by(spends: Iterable[Spend], as_of: date) -> int:
    """What `spends` add up to by the end of `as_of` (each counted at its own day), minor units."""
    return sum(s.amount for s in spends if s.spent_on <= as_of)


def window_gone(window: Window, as_of: date) -> float:
    """The share of `window` gone by the end of `as_of`, 0 to 1."""
    days = (window.end - window.start).days + 1
    gone = (as_of - window.start).days + 1
    return min(max(gone / days, 0.0), 1.0)


def pace_of(amount: int, spent: int, window: Window, as_of: date) -> BudgetPace:
    """How `spent` of `amount` compares with the share of `window` gone by `as_of`."""
    if as_of > window.end:
        return BudgetPace.ENDED_OVER if spent > amount else BudgetPace.ENDED_WITHIN
    if spent > amount:
        return BudgetPace.OVER
    if spent == 0:
        return BudgetPace.NO_SPEND
    share = spent / amount if amount else 1.0
    gone = window_gone(window, as_of)
    if share > gone + PACE_TOLERANCE:
        return BudgetPace.AHEAD
    if share < gone - PACE_TOLERANCE:
        return BudgetPace.BEHIND
    return BudgetPace.ON_PACE


def status_of(
    *,
    plan_id: int,
    window: Window,
    budget: Budget | None,
    currency: str,
    spends: Iterable[Spend],
    as_of: date,
    allocated: int = 0,
) -> BudgetStatus:
    """A plan's budget status as of the end of `as_of`."""
    spent = spent_by(spends, as_of)
    amount = budget.amount if budget is not None else 0
    return BudgetStatus(
        plan_id=plan_id,
        budget=budget,
        currency=currency,
        spent=spent,
        allocated=allocated,
        window_gone=window_gone(window, as_of),
        pace=pace_of(amount, spent, window, as_of),
    )


MAX_SPEND_EVENTS = 100
MAX_EVENT_ID = 200
_SPEND_FIELDS = ("id", "sent_at", "plan", "amount", "currency", "on")


@dataclass(frozen=True, kw_only=True)
class SpendEvent:
    """One spend posted by a connected system: `{"id", "sent_at", "plan", "amount", "currency", "on"}`."""

    id: str
    sent_at: datetime
    plan: int
    amount: int
    """In minor units."""
    currency: str
    spent_on: date


class InvalidSpendEvent(PlannerError, ValueError):
    """A posted body that is not a list of well-formed spend events; `problems` names each bad field."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("invalid spend event: " + stated(self.problems))


def parse_spend_events(payload: object) -> list[SpendEvent]:
    """Spend events from a posted JSON body (one object or a list). Raises InvalidSpendEvent naming every bad field."""
    raw = payload if isinstance(payload, list) else [payload]
    if not raw:
        raise InvalidSpendEvent([Problem(ProblemCode.NO_EVENTS, "body")])
    if len(raw) > MAX_SPEND_EVENTS:
        raise InvalidSpendEvent([Problem(ProblemCode.TOO_MANY_EVENTS, "body", count=len(raw), most=MAX_SPEND_EVENTS)])
    problems: list[Problem] = []
    parsed: list[SpendEvent] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        path = f"[{index}]" if isinstance(payload, list) else "event"
        if not isinstance(item, dict):
            problems.append(Problem(ProblemCode.NOT_AN_OBJECT, path, fields=_SPEND_FIELDS))
            continue
        for key in item:
            if key not in _SPEND_FIELDS:
                problems.append(Problem(ProblemCode.NOT_A_FIELD, f"{path}.{key}", name=str(key), known=_SPEND_FIELDS))
        event_id, plan, amount, currency, on = (item.get(k) for k in ("id", "plan", "amount", "currency", "on"))
        if not isinstance(event_id, str) or not 0 < len(event_id.strip()) <= MAX_EVENT_ID:
            problems.append(Problem(ProblemCode.EVENT_ID, f"{path}.id", limit=MAX_EVENT_ID))
        elif event_id.strip() in seen:
            problems.append(Problem(ProblemCode.GIVEN_TWICE, f"{path}.id", value=event_id))
        else:
            seen.add(event_id.strip())
        sent_at = parse_time(item.get("sent_at"), f"{path}.sent_at", problems)
        if not isinstance(plan, int) or isinstance(plan, bool) or plan <= 0:
            problems.append(Problem(ProblemCode.PLAN_ID, f"{path}.plan"))
        cents: int | None = None
        if isinstance(amount, int | float) and not isinstance(amount, bool):
            try:
                cents = minor_units(amount, allow_zero=False)
            except InvalidValue:
                cents = None
        if cents is None:
            problems.append(Problem(ProblemCode.POSITIVE_AMOUNT, f"{path}.amount"))
        code: str | None = None
        if isinstance(currency, str):
            try:
                code = currency_of(currency)
            except InvalidValue:
                code = None
        if code is None:
            problems.append(Problem(ProblemCode.CURRENCY_CODE, f"{path}.currency"))
        spent_on: date | None = None
        if isinstance(on, str):
            try:
                spent_on = date.fromisoformat(on)
            except ValueError:
                spent_on = None
        if spent_on is None:
            problems.append(Problem(ProblemCode.SPEND_DAY, f"{path}.on"))
        if not problems and sent_at and cents and code and spent_on and isinstance(plan, int):
            parsed.append(
                SpendEvent(
                    id=str(event_id).strip(), sent_at=sent_at, plan=plan, amount=cents, currency=code, spent_on=spent_on
                )
            )
    if problems:
        raise InvalidSpendEvent(problems)
    return parsed
