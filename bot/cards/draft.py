"""A proposal waiting for the leader (a plan, tactical plans, a week's tasks): its items, then Save or Discard.

The same card is updated in place once decided, as `saved` or `discarded`, without buttons.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from bot.cards.actions import VERB_CONFIRM_DRAFT, VERB_DISCARD_DRAFT, execute
from bot.cards.elements import Element, adaptive_card, container, fact_set, heading, largest_fitting, text_block
from bot.cards.wording import RANGE_DASH, day_label, moment_label, number, window_label
from bot.text.numbers import quantity
from bot.text.people import person_name

MAX_DRAFT_ITEMS = 30
"""Items shown at most (fewer when long values would break Teams' size limit); the rest are counted, not shown."""


class DraftState(enum.StrEnum):
    """Where a draft stands: waiting for the leader, saved into the plan, or thrown away."""

    PENDING = "pending"
    SAVED = "saved"
    DISCARDED = "discarded"


class UnknownDraftState(ValueError):
    """A draft card asked for in a state it has no layout for."""

    def __init__(self, state: str) -> None:
        super().__init__(f"unknown draft state {state!r}: use one of {', '.join(s.value for s in DraftState)}")
        self.state = state


def _as_date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _value_text(value: object) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, datetime):
        return moment_label(value)
    day = _as_date(value)
    if day is not None:
        return day_label(day, with_year=True)
    if isinstance(value, int | float):
        return number(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{key}: {_value_text(inner)}" for key, inner in value.items())
    if isinstance(value, Sequence) and not isinstance(value, str):
        return ", ".join(_value_text(inner) for inner in value)
    return str(value)


def _kpi_text(kpi: object) -> str:
    if not isinstance(kpi, Mapping):
        return _value_text(kpi)
    target = kpi.get("target")
    unit = str(kpi.get("unit") or "")
    name = str(kpi.get("name") or "KPI")
    if isinstance(target, int | float) and not isinstance(target, bool):
        # A prorated share of 500 SQLs is 172 SQLs, not 172.2: the unit decides how it is rounded.
        return f"{name} {quantity(target, unit, name=name)}"
    return " ".join(part for part in (name, _value_text(target) if target is not None else "", unit) if part)


def _window_text(start: object, end: object) -> str:
    first, last = _as_date(start), _as_date(end)
    if first is not None and last is not None and first <= last:
        return window_label(first, last)
    return f"{_value_text(start) if start else '?'} {RANGE_DASH} {_value_text(end) if end else '?'}"


def _is_blank(value: object) -> bool:
    return value is None or value == "" or (isinstance(value, Sequence | Mapping) and not value)


def _item(position: int, item: Mapping[str, object], names: Mapping[str, str]) -> Element:
    facts: list[tuple[str, str]] = []
    start, end = item.get("start"), item.get("end")
    if not _is_blank(start) or not _is_blank(end):
        facts.append(("Window", _window_text(start, end)))
    if not _is_blank(item.get("owner")):
        facts.append(("Owner", person_name(str(item["owner"]), names)))
    if not _is_blank(item.get("due")):
        facts.append(("Due", _value_text(item["due"])))
    kpis = item.get("kpis")
    if not _is_blank(kpis):
        kpi_list = kpis if isinstance(kpis, Sequence) and not isinstance(kpis, str) else [kpis]
        facts.append(("KPIs", "; ".join(_kpi_text(kpi) for kpi in kpi_list)))
    for key, value in item.items():
        if key in {"title", "start", "end", "owner", "due", "kpis"} or _is_blank(value):
            continue
        facts.append((key.replace("_", " ").capitalize(), _value_text(value)))
    title = str(item.get("title") or f"Item {position}")
    items: list[Element] = [text_block(f"{position}. {title}", weight="bolder")]
    if facts:
        items.append(fact_set(facts))
    return container(items, separator=True, spacing="medium")


def draft_card(
    *,
    draft_id: int,
    title: str,
    items: Sequence[Mapping[str, object]],
    state: str,
    note: str | None = None,
    names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A proposal with one block per item; `pending` offers Save and Discard, `saved`/`discarded` say so.

    Owners are named from `names` (owner key to display name), never shown by their user id."""
    try:
        decided = DraftState(state)
    except ValueError:
        raise UnknownDraftState(state) from None
    body: list[Element] = [heading(title)]
    if decided is DraftState.PENDING:
        body.append(
            text_block(f"Draft {draft_id}: nothing is saved until you press Save.", subtle=True, spacing="none")
        )
    elif decided is DraftState.SAVED:
        body.append(text_block("Saved.", weight="bolder", color="good", spacing="none"))
    else:
        body.append(text_block("Discarded.", weight="bolder", subtle=True, spacing="none"))
    if note:
        body.append(text_block(note, color="accent"))
    if not items:
        body.append(text_block("This draft has no items.", subtle=True))
    actions: list[Element] = []
    if decided is DraftState.PENDING:
        data: dict[str, object] = {"draft": draft_id}
        actions = [
            execute("Save", VERB_CONFIRM_DRAFT, data, style="positive"),
            execute("Discard", VERB_DISCARD_DRAFT, data, style="destructive"),
        ]

    def build(shown: int) -> Element:
        blocks = list(body)
        blocks.extend(_item(position, item, names or {}) for position, item in enumerate(items[:shown], start=1))
        hidden = len(items) - shown
        if hidden > 0:
            more = f"and {hidden} more {'item' if hidden == 1 else 'items'}"
            pending = decided is DraftState.PENDING
            blocks.append(text_block(f"{more}, not shown; Save keeps all of them." if pending else more, subtle=True))
        return adaptive_card(blocks, actions)

    return largest_fitting(build, min(len(items), MAX_DRAFT_ITEMS))
