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
