"""A retrospective and a playbook in words: why a task slipped, what a playbook learned about a KPI's target."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any


def why_slipped(slipped: Mapping[str, Any]) -> str:
    """`done 3 day(s) late`, or `still open`, with the reason it was blocked (a retrospective's slipped task)."""
    done = slipped.get("done")
    if done:
        late = (date.fromisoformat(done) - date.fromisoformat(slipped["due"])).days
        why = f"done {late} day(s) late"
    else:
        why = "still open"
    return f"{why} (blocked: {slipped['blocked']})" if slipped.get("blocked") else why


def learned(metric: Mapping[str, Any]) -> str:
    """How a playbook set a KPI's next target from the share of the way the plan reached."""
    reached = metric.get("reached")
    if reached is None:
        return "no reading: target kept"
    return f"reached {round(reached * 100)} % of the way last time: target scaled by {metric['scale']:g}"
