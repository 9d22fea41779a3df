"""A policy rule in one line for the admin who reads the rules in force (`policy`, `cos policy show`): what it
answers, what it applies to and when, then the admin's own description."""

from __future__ import annotations

import json

from bot.text.gates import OPERATORS
from planner.domain.policy import Comparison, Effect, FactCondition, Rule, duration_text


def rule_text(rule: Rule) -> str:
    """`hubspot-discounts (allow: go within discount ≤ 15, else flag; agents hubspot; kinds delegation; actions
    offer_discount): HubSpot may offer discounts up to 15 % on its own.`"""
    scope = [
        "agents " + (", ".join(rule.agents) if rule.agents else "all"),
        "kinds " + (", ".join(k.value for k in rule.kinds) if rule.kinds else "all"),
    ]
    if rule.actions:
        scope.append("actions " + ", ".join(rule.actions))
    conditions = [comparison_text(c) for c in rule.when] + [fact_condition_text(c) for c in rule.facts]
    if conditions:
        scope.append("when " + " and ".join(conditions))
    if rule.effect is Effect.ALLOW:
        outcome = f"go within {', '.join(map(comparison_text, rule.limits))}, else {rule.verdict.value}"
    else:
        outcome = rule.verdict.value
    if rule.gates:
        outcome += " (gates " + ", ".join(g.value for g in rule.gates) + ")"
    return f"{rule.id} ({rule.effect.value}: {outcome}; {'; '.join(scope)}): {rule.description}"


def comparison_text(comparison: Comparison) -> str:
    """`discount ≤ 15`, `channel in ["email", "sms"]`, `direction = outbound`."""
    value = comparison.value
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return f"{comparison.path} {OPERATORS.get(comparison.op, comparison.op)} {shown}"


def fact_condition_text(condition: FactCondition) -> str:
    """`ticket_opened within 2d`, `no renewal_open`, `ticket_opened where severity = high`."""
    text = ("no " if condition.absent else "") + condition.type.value
    if condition.within is not None:
        text += f" within {duration_text(condition.within)}"
    if condition.match:
        text += " where " + ", ".join(map(comparison_text, condition.match))
    return text
