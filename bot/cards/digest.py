"""The measurement cards: "how are we doing?" and the leader's weekly digest (figures, a chart, what to do next),
and a tactical plan's retrospective.

It shows the chart first, because people would rather look than read, then the KPIs with their forecast and the
recommended next step, then productivity and precision in two small tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bot.cards.elements import (
    CARD_BUDGET_BYTES,
    Element,
    adaptive_card,
    bullet_list,
    container,
    fact_set,
    folded,
    heading,
    largest_fitting,
    serialized_size,
    subheading,
    text_block,
)
from bot.cards.markdown import markdown
from bot.cards.wording import day_label, plan_ref, window_label
from bot.text.numbers import plain, quantity
from bot.text.retrospectives import why_slipped
from planner.domain.measurement import NO_AGENT, MeasurementReport, Outcomes, series_names
from planner.services.playbooks import Retrospective

NO_VALUE = "\u2013"
"""Shown for a figure that has nothing to divide yet."""
KPIS_UNFOLDED = 2
"""KPIs shown before "Show more KPIs": the card stays within a Teams screen."""
MIN_KPIS = 3
"""The chart gives way rather than leave fewer KPIs than this on the card."""
MAX_AGENTS = 6
MAX_POLICIES = 6
MAX_LAUNCHES = 6
MAX_SLIPPED = 10


def percent(value: float | None) -> str:
    """A share as a whole percentage, or a dash when there is nothing to divide."""
    return NO_VALUE if value is None else f"{round(value * 100)} %"


def amount(value: float | None, unit: str = "", *, name: str = "") -> str:
    """A KPI value with its unit, as people read it (see `bot.text.numbers`), or a dash when there is none."""
    return NO_VALUE if value is None else quantity(value, unit, name=name)


def _agent(name: str) -> str:
    return name if name != NO_AGENT else "people and the bot"


def _outcomes(name: str, outcomes: Outcomes) -> str:
    return (
        f"{name}: {outcomes.decided} decided · approved {percent(outcomes.rate('approved'))}, "
        f"edited {percent(outcomes.rate('edited'))}, rejected {percent(outcomes.rate('rejected'))}, "
        f"expired {percent(outcomes.rate('expired'))}"
    )


def chart_image(url: str, alt_text: str) -> Element:
    return {"type": "Image", "url": url, "altText": alt_text, "size": "stretch"}


def measurement_card(report: MeasurementReport, *, chart_url: str | None, title: str | None = None) -> dict[str, Any]:
    """The card for `report`, within Teams' size: with the chart and as many KPIs as fit (at least MIN_KPIS when
    there are that many, else the chart gives way and the card says so)."""
    master = report.facts.master
    head: list[Element] = [
        heading(title or f"How {plan_ref(master.id)} {master.title} is doing"),
        text_block(
            f"As of {day_label(report.as_of, with_year=True)} · {window_label(master.window.start, master.window.end)}",
            subtle=True,
            spacing="none",
        ),
    ]
    tail = [*_productivity_section(report), *_precision_section(report)]
    total = len(report.forecasts)

    def build(chart: list[Element]) -> Callable[[int], dict[str, Any]]:
        def card(shown: int) -> dict[str, Any]:
            kpis = _kpi_section(report, shown)
            return adaptive_card(
                [
                    *head,
                    *chart,
                    *kpis[: 1 + KPIS_UNFOLDED],
                    *folded("more-kpis", kpis[1 + KPIS_UNFOLDED :], more="Show more KPIs", less="Show fewer KPIs"),
                    *folded("more-figures", tail, more="Show productivity and precision", less="Hide them"),
                ]
            )

        return card

    if chart_url is not None:
        chart = [chart_image(chart_url, "Tasks burn-up, and each KPI against its target pace")]
        card = largest_fitting(build(chart), total)
        if len(of_kpis(card)) >= min(total, MIN_KPIS) and serialized_size(card) <= CARD_BUDGET_BYTES:
            return card
        note = "The chart is too large to send in a message."
    else:
        note = "No chart this time."
    return largest_fitting(build([text_block(note, subtle=True)]), total)


def of_kpis(card: dict[str, Any]) -> list[Element]:
    """The KPI blocks of a measurement card, those folded behind "Show more" too."""
    found: list[Element] = []
    for item in card["body"]:
        if item.get("type") != "Container":
            continue
        if item.get("id", "").startswith("kpi-"):
            found.append(item)
        elif item.get("id") == "more-kpis":
            found.extend(inner for inner in item["items"] if inner.get("id", "").startswith("kpi-"))
    return found


def _kpi_section(report: MeasurementReport, shown: int) -> list[Element]:
    if not report.forecasts:
        return [subheading("KPIs"), text_block("No KPI is tracked on this plan yet.", subtle=True)]
    advice = {r.metric.id: r for r in report.recommendations}
    names = series_names(report.facts.series)
    items: list[Element] = [subheading("KPIs")]
    rows = list(zip(names, report.forecasts, report.precision.attainment, strict=True))
    for name, item, attained in rows[:shown]:
        unit = item.metric.unit

        def said(value: float | None, unit: str = unit, name: str = name) -> str:
            return amount(value, unit, name=name)

        facts = [
            ("Now", f"{said(item.actual)} of {said(item.metric.target)}"),
            ("Against target", percent(attained.against_target)),
            ("Against pace", f"{percent(attained.against_pace)} (expected {said(attained.expected)})"),
            ("At the end", f"{said(item.projected)} by {day_label(item.plan.window.end)}"),
        ]
        block: list[Element] = [text_block(name, weight="bolder"), fact_set(facts)]
        recommendation = advice.get(item.metric.id)
        if recommendation is not None:
            block.append(text_block(f"Next: {recommendation.action}", color="accent", spacing="small"))
            block.append(text_block(recommendation.rationale, subtle=True, spacing="none"))
        kpi = container(block, spacing="medium")
        kpi["id"] = f"kpi-{item.metric.id}"
        items.append(kpi)
    if shown < len(rows):
        hidden = ", ".join(name for name, _, _ in rows[shown:])[:500]
        items.append(
            text_block(f"{len(rows) - shown} more KPI(s), not shown to fit in a message: {hidden}", subtle=True)
        )
    return items


def _productivity_section(report: MeasurementReport) -> list[Element]:
    figures = report.productivity
    agents = ", ".join(f"{agent} {count}" for agent, count in figures.delegations_completed.items()) or "none"
    facts = [
        ("On time", f"{percent(figures.on_time_rate)} ({figures.on_time} of {figures.judged})"),
        ("Cycle time", NO_VALUE if figures.cycle_time_days is None else f"{plain(figures.cycle_time_days)} days"),
        ("Throughput", NO_VALUE if figures.throughput is None else f"{plain(figures.throughput)} tasks a week"),
        ("Carried over", str(figures.carried_over)),
        ("Delegations done", f"{figures.delegations_completed_total} ({agents})"),
    ]
    launches = [
        f"{plan_ref(launch.plan_id)} {launch.title}: "
        + (
            f"launched in {launch.days} days"
            if launch.days is not None
            else (
                f"{launch.milestones_done} of {launch.milestones} milestones done"
                if launch.milestones
                else "no milestone"
            )
        )
        for launch in figures.launches[:MAX_LAUNCHES]
    ]
    section: list[Element] = [subheading("Productivity", separator=True), fact_set(facts)]
    if launches:
        section.append(text_block("Time to launch", weight="bolder", spacing="small"))
        section.append(bullet_list(launches))
    return section


def _lines(title: str, lines: Sequence[str]) -> list[Element]:
    return [text_block(title, weight="bolder", spacing="small"), bullet_list(lines)] if lines else []


def _precision_section(report: MeasurementReport) -> list[Element]:
    figures = report.precision
    delegation_lines = [
        f"{agent}: {percent(record.success_rate)} of {record.succeeded + record.failed} succeeded"
        for agent, record in list(figures.delegations.items())[:MAX_AGENTS]
    ]
    agent_lines = [_outcomes(_agent(a), o) for a, o in list(figures.by_agent.items())[:MAX_AGENTS]]
    section: list[Element] = [
        subheading("Precision", separator=True),
        fact_set([("Delegation success", percent(figures.delegation_success_rate))]),
        *_lines("Delegations by agent", delegation_lines),
        *_lines("Approvals by agent", agent_lines),
        *_lines("Approvals by policy", [_outcomes(p, o) for p, o in list(figures.by_policy.items())[:MAX_POLICIES]]),
    ]
    return section


def retrospective_card(retro: Retrospective) -> dict[str, Any]:
    """A tactical plan's retrospective: KPIs against targets, what slipped and why, agents and policies."""
    plan = retro.plan
    results = [
        (
            r["name"],
            f"{amount(r['result'], r['unit'], name=r['name'])} of "
            f"{amount(r['target'], r['unit'], name=r['name'])} ({percent(r['attainment'])})",
        )
        for r in retro.results
    ]
    slipped = [f"T{s['task']} {s['title']} (due {s['due']}): {why_slipped(s)}" for s in retro.slipped[:MAX_SLIPPED]]
    if len(retro.slipped) > MAX_SLIPPED:
        slipped.append(f"and {len(retro.slipped) - MAX_SLIPPED} more")
    agents = [
        f"{agent} {'helped' if r['succeeded'] >= r['failed'] else 'got in the way'}: "
        f"{r['succeeded']} done, {r['failed']} failed"
        for agent, r in list(retro.agents.items())[:MAX_AGENTS]
    ]
    policies = [f"{rule}: stopped or held {n} action(s)" for rule, n in list(retro.policies.items())[:MAX_POLICIES]]
    body: list[Element] = [
        heading(f"Retrospective: {plan_ref(plan.id)} {plan.title}"),
        text_block(window_label(plan.window.start, plan.window.end), subtle=True, spacing="none"),
        subheading("Targets against results"),
        fact_set(results) if results else text_block("No KPI was tracked on this plan.", subtle=True),
        subheading("What slipped", separator=True),
        bullet_list(slipped) if slipped else text_block("Nothing slipped.", subtle=True),
        *_lines("Agents", agents),
        *_lines("Policies in the way", policies),
        text_block(
            markdown("Keep what worked for the next plan: `save playbook {} as <name>`.", plan_ref(plan.id)),
            subtle=True,
            separator=True,
        ),
    ]
    return adaptive_card(body)
