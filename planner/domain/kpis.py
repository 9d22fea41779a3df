"""One KPI across tiers: a KPI is defined once, on the master plan; a tactical plan carries a *share* of it.

A share is a metric of a tactical plan linked to the master's KPI of the same name (`Metric.kpi_id`): its own target
(set at derivation or by the leader), the KPI's readings. A reading is always of the KPI, wherever it was recorded,
and counts for every plan whose window holds its date:
- the master plan counts each reading as it reads, up to the end of its window;
- a share counts only the readings inside its plan's window. A KPI going up (SQLs, pipeline) is a running total,
  counted as its gain since the window opened: the reading less the KPI's value when the window opened, so a month's
  share of 500 SQLs is judged on the SQLs won that month, never on the quarter's total. A KPI going down (cost per
  lead) is a level and counts as it reads.

A running total is known only where it was read: its value at a moment between two readings (the KPI's baseline on
the first day of its master plan counts as one) is taken on the straight line between them, as the pace is. So a
month that opens between a reading of 20 on 12 January and one of 190 on 2 February opens at about 182, not at 20
(that month did not win the SQLs of late January), nor at the baseline; and a month whose window has ended, read
again after it, is judged at its last day on that same line (it won what it won up to its end, not to its last
reading inside). With no reading after a moment, the last one before stands.

A backdated reading therefore lands in the plans whose windows hold its own date, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

from planner.domain.model import Direction, Metric, MetricReading, Plan, Window


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
    metric: Metric,
    plan: Plan,
    readings: Sequence[MetricReading],
    kpi: Metric | None = None,
    *,
    opened: date | None = None,
) -> tuple[MetricReading, ...]:
    """The KPI's readings (oldest first) as `plan` counts them for `metric`; see the module docstring.

    `kpi` is the master's KPI when `metric` is a share of it, `opened` the first day of its master plan (where its
    baseline holds; without it, at the share's window's start). A share of a running total whose window has ended
    and was read after it ends with its value at the window's last moment."""
    window = plan.window
    if metric.kpi_id is None or kpi is None:
        return tuple(r for r in readings if r.at.date() <= window.end)
    inside = [r for r in readings if window.includes(r.at.date())]
    if not counts_gain(kpi):
        return tuple(inside)
    start = _first_moment(window.start)
    origin = (_first_moment(opened) if opened is not None else start, kpi.baseline)
    opening = value_at(start, readings, origin)
    counted = [replace(r, value=r.value - opening) for r in inside]
    closing = _closing(window, readings, origin)
    if closing is not None:
        counted.append(replace(closing, value=closing.value - opening))
    return tuple(counted)


def latest_counted(
    metric: Metric,
    plan: Plan,
    readings: Sequence[MetricReading],
    as_of: date,
    kpi: Metric | None = None,
    *,
    opened: date | None = None,
) -> MetricReading | None:
    """The last reading `plan` counts for `metric` by the end of `as_of`, or None (`as_counted` of the readings
    taken by then, its last)."""
    window = plan.window
    last_day = min(as_of, window.end)
    # Readings are oldest first: the last one counted is found from the end, without counting the others.
    latest = next((r for r in reversed(readings) if r.at.date() <= last_day), None)
    if metric.kpi_id is None or kpi is None:
        return latest
    if not counts_gain(kpi):
        return latest if latest is not None and latest.at.date() >= window.start else None
    known = [r for r in readings if r.at.date() <= as_of]
    start = _first_moment(window.start)
    origin = (_first_moment(opened) if opened is not None else start, kpi.baseline)
    counted = _closing(window, known, origin)
    if counted is None:
        if latest is None or latest.at.date() < window.start:
            return None
        counted = latest
    return replace(counted, value=counted.value - value_at(start, known, origin))


def value_at(moment: datetime, readings: Sequence[MetricReading], origin: tuple[datetime, float]) -> float:
    """A running total's value at `moment`: on the straight line between the last reading before it (else `origin`,
    the KPI's baseline when it starts) and the first at or after it; the last before when none is after."""
    before_at, before = origin
    after: MetricReading | None = None
    for reading in readings:  # oldest first
        if reading.at >= moment:
            after = reading
            break
        before_at, before = reading.at, reading.value
    if after is None or before_at >= moment:
        return before
    span = (after.at - before_at).total_seconds()
    return before + (after.value - before) * (moment - before_at).total_seconds() / span


def _first_moment(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _closing(window: Window, readings: Sequence[MetricReading], origin: tuple[datetime, float]) -> MetricReading | None:
    """For a window read again after it ended: the total at its last moment, as a reading of its last day."""
    end = _first_moment(window.end + timedelta(days=1))
    after = next((r for r in readings if r.at >= end), None)
    if after is None:
        return None
    return replace(after, at=end - timedelta(microseconds=1), value=value_at(end, readings, origin))
