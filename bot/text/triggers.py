"""When the bot follows up, in words: the `triggers` command's lines."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from planner.domain.triggers import SETTINGS, TRIGGERS, TriggerRules

MEANINGS: Mapping[str, str] = MappingProxyType(
    {
        "lead": "days of warning before a deadline",
        "quiet-from": "start of quiet hours",
        "quiet-until": "end of quiet hours",
        "time-zone": "time zone of people whose zone is unknown",
        "budget": "nudges per person per day",
        "escalate-after": "hours before an unanswered slip goes to the plan owner",
        "monday-hour": "hour Monday's week plan arrives",
        "friday-hour": "hour Friday's review and digest arrive",
    }
)
"""What each setting a tenant may change means, by its name in Teams."""


def describe(rules: TriggerRules) -> list[str]:
    """The rules as lines a person reads in Teams."""
    lines = [f"{trigger.replace('_', ' ')}: {'on' if rules.fires(trigger) else 'off'}" for trigger in TRIGGERS]
    lines += [f"{s.name} = {s.show(getattr(rules, s.field))} ({MEANINGS[s.name]})" for s in SETTINGS]
    return lines


_REFS: Mapping[str, str] = MappingProxyType({"task": "T", "plan": "P", "approval": "A", "delegation": "D"})


def firing_label(key: str) -> str:
    """A firing key (trigger, subject, window) as an operator reads it: `deadline_slipped:task:1:2026-02-10` is
    `deadline slipped (T1, 2026-02-10)`; `metric_drift:metric:1:at risk:none=None` is `metric drift (metric 1, at
    risk, no reading)`."""
    kind, *parts = key.split(":")
    if kind in _REFS and parts and parts[0].isdigit():
        parts = [kind, *parts]  # `approval:1:decided`: the request itself is its subject
    said: list[str] = []
    while parts:
        part = parts.pop(0)
        if part in _REFS and parts and parts[0].isdigit():
            said.append(f"{_REFS[part]}{parts.pop(0)}")
        elif part == "metric" and parts and parts[0].isdigit():
            said.append(f"metric {parts.pop(0)}")
        elif "=" in part:
            day, _, _value = part.partition("=")
            said.append("no reading" if day == "none" else f"the reading of {day}")
        else:
            said.append(part.replace("->", " to ").replace("_", " "))
    words = kind.replace("_", " ")
    return f"{words} ({', '.join(said)})" if said else words
