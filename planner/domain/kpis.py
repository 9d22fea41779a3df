"""One KPI across tiers: a KPI is defined once, on the master plan; a tactical plan carries a *share* of it.

A share is a metric of a tactical plan linked to the master's KPI of the same name (`Metric.kpi_id`): its own target
(set at derivation or by the leader), the KPI's readings. A reading is always of the KPI, wherever it was recorded,
and counts for every plan whose window holds its date:
- the master plan counts each reading as it reads, up to the end of its window;
- a share counts only the readings inside its plan's window. A KPI going up (SQLs, pipeline) is counted as its gain
  since the window opened: the reading less the last one before the window (the KPI's baseline when there is none),
  so a month's share of 500 SQLs is judged on the SQLs won that month. A KPI going down (cost per lead) is a level
  and counts as it reads.

A backdated reading therefore lands in the plans whose windows hold its own date, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date

from planner.domain.model import Direction, Metric, MetricReading, Plan


def kpi_id_of(metric: Metric) -> int:
    """The id of the KPI a metric's readings are stored on: its master KPI's for a share, its own otherwise."""
    return metric.kpi_id if metric.kpi_id is not None else metric.id


def counts_gain(kpi: Metric) -> bool:
    """Whether a share of this KPI is judged on the gain inside its window (a KPI going up) or on the level."""
    return kpi.direction is Direction.UP and kpi.target >= kpi.baseline


def share_of(kpis: Iterable[Metric], name: str) -> Metric | None:
    """The KPI among `kpis` (a master plan's) that a metric called `name` on one of its tactical plans is a share of."""
    wanted = name.strip().casefold()
    return next((k for k in kpis if k.kpi_id is None and k.name.casefold() == wanted), None)


def as_counted(
    metric: Metric, plan: Plan, readings: Sequence[MetricReading], kpi: Metric | None = None
) -> tuple[MetricReading, ...]:
    """The KPI's readings (oldest first) as `plan` counts them for `metric`; see the module docstring.

    `kpi` is the master's KPI when `metric` is a share of it (its baseline opens the first window).
    """
    window = plan.window
    if metric.kpi_id is None or kpi is None:
        return tuple(r for r in readings if r.at.date() <= window.end)
    inside = [r for r in readings if window.includes(r.at.date())]
    if not counts_gain(kpi):
        return tuple(inside)
    before = [r for r in readings if r.at.date() < window.start]
    opening = before[-1].value if before else kpi.baseline
    return tuple(replace(r, value=r.value - opening) for r in inside)


def latest_counted(
    metric: Metric, plan: Plan, readings: Sequence[MetricReading], as_of: date, kpi: Metric | None = None
) -> MetricReading | None:
    """The last reading `plan` counts for `metric` by the end of `as_of`, or None."""
    window = plan.window
    share = metric.kpi_id is not None and kpi is not None
    last_day = min(as_of, window.end)
    # Readings are oldest first: the last one counted is found from the end, without counting the others.
    latest = next((r for r in reversed(readings) if r.at.date() <= last_day), None)
    if latest is None or not share:
        return latest
    if latest.at.date() < window.start:
        return None
    assert kpi is not None
    if not counts_gain(kpi):
        return latest
    opening = next((r.value for r in reversed(readings) if r.at.date() < window.start), kpi.baseline)
    return replace(latest, value=latest.value - opening)
