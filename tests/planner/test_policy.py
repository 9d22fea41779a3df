"""The policy engine on every backend: the three sorts of rule, the shared context they read, and loading rules."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from bot.text.errors import describe_plain
from bot.text.problems import describe_problem
from planner.domain.context import parse_events
from planner.domain.errors import TenantMismatch
from planner.domain.governance import Action, ActionKind, GateCategory, OverLimit, OverLimits, Verdict
from planner.domain.policy import PolicyInvalid, Rule, RuleCache, parse_duration
from planner.domain.problems import Problem, ProblemCode
from planner.services.context import ContextFacts
from planner.services.policy import PolicyEngine, PolicySets, parse_policy
from planner.store import Store
from planner.store.schema import events, policy_sets
from tests.conftest import Database, FakeClock

TENANT = "contoso"

RULES = """
rules:
  - id: hubspot-discounts
    description: HubSpot may offer discounts up to 15 % on its own; more needs a person.
    effect: allow
    agents: [hubspot]
    kinds: [delegation]
    actions: [offer_discount]
    limits:
      discount: {le: 15}
  - id: hubspot-discount-ceiling
    description: No discount above 40 %, whoever asks.
    effect: allow
    agents: "*"
    limits:
      discount: {le: 40}
    verdict: stop
  - id: renewal-touch
    description: Every touch of an account in renewal is checked by a person first.
    effect: require
    when:
      fact: renewal_open
  - id: no-winback-after-sales-contact
    description: No win-back email to a customer sales spoke to in the last day.
    effect: forbid
    actions: [send_winback_email]
    when:
      facts:
        - type: sales_contact
          within: 24h
  - id: outbound-after-ticket
    description: No outbound while the customer had a support ticket opened in the last 48 h.
    effect: forbid
    when:
      attributes:
        direction: outbound
      fact: ticket_opened
      within: 48h
"""


def action(
    *,
    agent: str | None = "hubspot",
    kind: ActionKind = ActionKind.DELEGATION,
    name: str = "offer_discount",
    accounts: tuple[str, ...] = (),
    tenant_id: str = TENANT,
    categories: tuple[GateCategory, ...] = (),
    **attributes: Any,
) -> Action:
    return Action(
        tenant_id=tenant_id,
        kind=kind,
        actor=f"agent:{agent}" if agent else "bot",
        agent=agent,
        name=name,
        subject="task:12",
        accounts=accounts,
        attributes=attributes,
        categories=categories,
    )


async def loaded(store: Store, text: str = RULES) -> PolicyEngine:
    await PolicySets(store, TENANT).load(text, actor="aad-admin")
    return PolicyEngine(store, TENANT)


async def facts(store: Store, clock: FakeClock, *raw: dict[str, Any], source: str = "crm") -> None:
    stamped = [{"at": clock.now.isoformat(), **r} for r in raw]
    await ContextFacts(store, TENANT).post(source, parse_events(stamped))


# ---- the three sorts -----------------------------------------------------------------------------------------------


async def test_an_agent_may_act_on_its_own_within_its_limits_and_needs_a_person_beyond(store: Store) -> None:
    engine = await loaded(store)
    within = await engine.evaluate(action(discount=10))
    assert within.verdict is Verdict.GO
    assert [m.rule_id for m in within.matched] == ["hubspot-discounts", "hubspot-discount-ceiling"]
    over = await engine.evaluate(action(discount="20%"))
    assert over.verdict is Verdict.FLAG
    assert over.matched[0].rule_id == "hubspot-discounts"
    assert over.reasons[0] == OverLimits(  # the bot words it (bot/text/gates.py)
        description="HubSpot may offer discounts up to 15 % on its own; more needs a person.",
        over=(OverLimit(path="discount", actual="20%", operator="le", limit=15),),
    )
    way_over = await engine.evaluate(action(discount=45))
    assert way_over.verdict is Verdict.STOP
    assert [(m.rule_id, m.verdict) for m in way_over.matched] == [
        ("hubspot-discount-ceiling", Verdict.STOP),
        ("hubspot-discounts", Verdict.FLAG),
    ]
    # Nothing to exceed: an action without a discount is within the limits.
    assert (await engine.evaluate(action(name="draft_email"))).verdict is Verdict.GO


async def test_a_rule_for_one_agent_leaves_the_others_alone_and_star_covers_every_agent(store: Store) -> None:
    engine = await loaded(store)
    other = await engine.evaluate(action(agent="agentforce", discount=20))
    assert other.verdict is Verdict.GO
    assert [m.rule_id for m in other.matched] == ["hubspot-discount-ceiling"]
    assert (await engine.evaluate(action(agent="agentforce", discount=41))).verdict is Verdict.STOP
    # Agent names compare without regard to case, as the registry keeps them.
    assert (await engine.evaluate(action(agent="HubSpot", discount=20))).verdict is Verdict.FLAG
    # `*` also covers actions that go through no agent.
    assert (await engine.evaluate(action(agent=None, kind=ActionKind.NUDGE, discount=50))).verdict is Verdict.STOP


async def test_every_touch_of_an_account_in_renewal_is_flagged(store: Store, clock: FakeClock) -> None:
    engine = await loaded(store)
    await facts(store, clock, {"id": "r1", "type": "renewal_open", "account": "acct-renewal"})
    touch = action(agent="agentforce", kind=ActionKind.NUDGE, name="send_email", accounts=("acct-calm", "acct-renewal"))
    decision = await engine.evaluate(touch)
    assert decision.verdict is Verdict.FLAG
    assert decision.reasons == ["Every touch of an account in renewal is checked by a person first."]
    [reference] = decision.facts
    assert reference.startswith("fact:")
    assert reference.endswith(":renewal_open:acct-renewal")
    calm = await engine.evaluate(action(agent="agentforce", name="send_email", accounts=("acct-calm",)))
    assert (calm.verdict, calm.facts) == (Verdict.GO, ())


async def test_no_winback_email_to_a_customer_sales_spoke_to_in_the_last_day(store: Store, clock: FakeClock) -> None:
    engine = await loaded(store)
    earlier = (clock.now - timedelta(hours=20)).isoformat()
    await facts(store, clock, {"id": "s1", "type": "sales_contact", "account": "acct-a", "observed_at": earlier})
    winback = action(agent="agentforce", name="send_winback_email", accounts=("acct-a",))
    decision = await engine.evaluate(winback)
    assert decision.verdict is Verdict.STOP
    assert decision.reasons == ["No win-back email to a customer sales spoke to in the last day."]
    assert (
        await engine.evaluate(action(agent="agentforce", name="send_newsletter", accounts=("acct-a",)))
    ).verdict is Verdict.GO
    clock.advance(hours=5)  # the contact is now 25 hours old
    assert (await engine.evaluate(winback)).verdict is Verdict.GO


async def test_outbound_stops_while_a_ticket_is_open_and_goes_again_once_it_is_closed(
    store: Store, clock: FakeClock
) -> None:
    engine = await loaded(store)
    await facts(
        store, clock, {"id": "t1", "type": "ticket_opened", "account": "acct-a", "attributes": {"ticket_id": "9"}}
    )
    outbound = action(agent="agentforce", name="send_email", accounts=("acct-a",), direction="Outbound")
    assert (await engine.evaluate(outbound)).verdict is Verdict.STOP
    inbound = action(agent="agentforce", name="send_email", accounts=("acct-a",), direction="inbound")
    assert (await engine.evaluate(inbound)).verdict is Verdict.GO
    clock.advance(hours=2)
    await facts(
        store, clock, {"id": "t2", "type": "ticket_closed", "account": "acct-a", "attributes": {"ticket_id": "9"}}
    )
    assert (await engine.evaluate(outbound)).verdict is Verdict.GO
    # As of an hour before it was closed, it was open.
    assert (await engine.evaluate(outbound, at=clock.now - timedelta(hours=1))).verdict is Verdict.STOP


async def test_expired_facts_are_ignored(store: Store, clock: FakeClock) -> None:
    engine = await loaded(store)
    await facts(store, clock, {"id": "r1", "type": "renewal_open", "account": "acct-a", "ttl_hours": 1})
    touch = action(agent="agentforce", name="send_email", accounts=("acct-a",))
    assert (await engine.evaluate(touch)).verdict is Verdict.FLAG
    clock.advance(hours=1)
    assert (await engine.evaluate(touch)).verdict is Verdict.GO


async def test_the_strictest_verdict_wins_and_every_matching_rule_is_listed(store: Store, clock: FakeClock) -> None:
    engine = await loaded(store)
    await facts(
        store,
        clock,
        {"id": "r1", "type": "renewal_open", "account": "acct-a"},
        {"id": "t1", "type": "ticket_opened", "account": "acct-a"},
    )
    decision = await engine.evaluate(action(accounts=("acct-a",), discount=20, direction="outbound"))
    assert decision.verdict is Verdict.STOP
    assert [(m.rule_id, m.verdict) for m in decision.matched] == [
        ("outbound-after-ticket", Verdict.STOP),
        ("hubspot-discounts", Verdict.FLAG),
        ("renewal-touch", Verdict.FLAG),
        ("hubspot-discount-ceiling", Verdict.GO),
    ]
    assert sorted(ref.split(":")[2] for ref in decision.facts) == ["renewal_open", "ticket_opened"]


async def test_actions_in_an_approval_gate_are_flagged_whatever_the_rules_say(store: Store) -> None:
    engine = PolicyEngine(store, TENANT)  # no rules at all
    plan_change = action(
        agent=None, kind=ActionKind.PLAN_CHANGE, name="change_target", categories=(GateCategory.STRATEGY,)
    )
    decision = await engine.evaluate(plan_change)
    assert decision.verdict is Verdict.FLAG
    assert [m.rule_id for m in decision.matched] == ["gate:strategy"]
    assert decision.reasons == [GateCategory.STRATEGY]  # the bot words it (bot/text/gates.py)
    assert (await engine.evaluate(action(agent=None, kind=ActionKind.PLAN_CHANGE))).verdict is Verdict.GO
    engine = await loaded(store)
    stopped = await engine.evaluate(action(discount=50, categories=(GateCategory.BUDGET, GateCategory.AUDIENCE)))
    assert stopped.verdict is Verdict.STOP
    assert {m.rule_id for m in stopped.matched} >= {"gate:budget", "gate:audience"}


async def test_a_rule_about_tool_calls_is_about_every_operation_whoever_asks_and_not_about_agents(
    store: Store,
) -> None:
    rules = {
        "rules": [
            {
                "id": "no-task-blocking",
                "description": "Only people block tasks",
                "effect": "forbid",
                "kinds": ["tool_call"],
                "actions": ["set_task_status"],
            }
        ]
    }
    await PolicySets(store, TENANT).load(rules, actor="aad-admin")
    engine = PolicyEngine(store, TENANT)
    for kind in (ActionKind.READ, ActionKind.PLAN_CHANGE, ActionKind.SETTING):
        for actor in ("aad-writer", "llm"):
            stopped = replace(action(agent=None, kind=kind, name="set_task_status"), actor=actor)
            assert (await engine.evaluate(stopped)).verdict is Verdict.STOP
        shown = await engine.evaluate(action(agent=None, kind=kind, name="show_plan"))
        assert shown.verdict is Verdict.GO
        assert not shown.matched
    delegation = action(agent="hubspot", kind=ActionKind.DELEGATION, name="set_task_status")
    assert (await engine.evaluate(delegation)).verdict is Verdict.GO


async def test_an_action_of_another_tenant_is_refused(store: Store) -> None:
    with pytest.raises(TenantMismatch):
        await PolicyEngine(store, TENANT).evaluate(action(tenant_id="fabrikam"))


# ---- loading -------------------------------------------------------------------------------------------------------


async def test_a_new_load_applies_to_every_agents_next_evaluation_at_once(
    store: Store, clock: FakeClock, database: Database
) -> None:
    first = await PolicySets(store, TENANT).load(RULES, actor="aad-admin")
    assert (first.version, len(first.rules)) == (1, 5)
    replica = Store(database.engine(), clock=clock)  # another process, with its own cache
    try:
        here, there = PolicyEngine(store, TENANT), PolicyEngine(replica, TENANT)
        exact = PolicyEngine(store, TENANT, cache=RuleCache(), recheck=timedelta(0))
        for engine in (here, there, exact):
            assert (await engine.evaluate(action(agent="agentforce", discount=41))).verdict is Verdict.STOP
        stricter = {
            "rules": [
                {
                    "id": "no-discounts",
                    "description": "No agent offers discounts this quarter.",
                    "effect": "forbid",
                    "actions": ["offer_discount"],
                }
            ]
        }
        second = await PolicySets(replica, TENANT).load(json.dumps(stricter), actor="aad-admin")
        assert second.version == 2

        async def stopped_for_every_agent(engine: PolicyEngine) -> bool:
            for agent in ("hubspot", "agentforce"):
                decision = await engine.evaluate(action(agent=agent, discount=1))
                if [m.rule_id for m in decision.matched] != ["no-discounts"] or decision.verdict is not Verdict.STOP:
                    return False
            return True

        # The process that loaded the rules, and an engine that confirms them every time, apply them at once.
        assert await stopped_for_every_agent(there)
        assert await stopped_for_every_agent(exact)
        # Another process within a second.
        assert not await stopped_for_every_agent(here)
        clock.advance(seconds=1)
        assert await stopped_for_every_agent(here)
    finally:
        await replica.close()
    active = await PolicySets(store, TENANT).active()
    assert active is not None
    assert (active.version, active.source) == (2, json.dumps(stricter))
    async with store.engine.connect() as conn:
        kinds = (await conn.execute(select(events.c.kind, events.c.subject_id).order_by(events.c.id))).all()
    assert [tuple(k) for k in kinds] == [("policy.loaded", 1), ("policy.loaded", 2)]


async def test_evaluation_asks_the_database_one_question_at_most(
    store: Store, clock: FakeClock, database: Database
) -> None:
    engine = await loaded(store)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", count)
    try:
        await engine.evaluate(action(discount=10))
        assert statements == []  # the rules were just loaded here: nothing to confirm yet
        clock.advance(seconds=1)
        await engine.evaluate(action(discount=10))
        assert len(statements) == 1
        assert "max(policy_sets.version)" in statements[0]
        statements.clear()
        # Rules that ask about facts: the version and the facts of the action's accounts, in the same query.
        await engine.evaluate(action(agent="agentforce", name="send_email", accounts=("acct-a", "acct-b")))
        assert len(statements) == 1
        assert "max(policy_sets.version)" in statements[0]
        assert "context_facts.account IN" in statements[0]
        # A version loaded elsewhere is read and compiled, and its facts read when it asks about others.
        replica = Store(database.engine(), clock=clock)
        try:
            await PolicySets(replica, TENANT).load(RULES.replace("renewal_open", "purchase"), actor="aad-admin")
        finally:
            await replica.close()
        statements.clear()
        await engine.evaluate(action(agent="agentforce", name="send_email", accounts=("acct-a",)))
        assert len(statements) == 3
        assert "policy_sets.document" in statements[1]
        assert "context_facts.account IN" in statements[2]
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", count)


async def test_loads_at_the_same_time_each_get_their_own_version(store: Store) -> None:
    sets = PolicySets(store, TENANT)
    results = await asyncio.gather(*(sets.load(RULES, actor=f"aad-admin-{n}") for n in range(3)))
    assert sorted(r.version for r in results) == [1, 2, 3]
    async with store.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(policy_sets))).scalar() == 3


async def test_a_stored_rule_set_reads_back_as_loaded(store: Store) -> None:
    loaded_set = await PolicySets(store, TENANT).load(RULES, actor="aad-admin")
    active = await PolicySets(store, TENANT).active()
    assert active is not None
    assert active.rules == loaded_set.rules
    assert active.source == RULES
    assert await PolicySets(store, TENANT).version() == 1
    assert await PolicySets(store, "fabrikam").active() is None


async def test_a_bad_document_is_refused_whole_with_every_problem_and_its_path(store: Store) -> None:
    bad = """
rules:
  - id: fine
    description: A rule with nothing wrong.
    effect: forbid
  - id: fine
    description: ""
    effect: alow
    agents: hubspot
    kinds: [delegate]
  - id: over
    description: Limits need numbers.
    effect: allow
    limits: {discount: {le: fifteen}, channel: {within: email}}
    verdict: go
  - id: ticket
    description: Two days of tickets.
    effect: forbid
    whne: {}
    when:
      fact: ticket_open
      within: two days
  - id: nothing
    description: No conditions on facts.
    effect: require
    limits: {discount: {le: 5}}
    when: {facts: [{type: purchase, absent: maybe, match: {amount: {in: 5}}}]}
"""
    with pytest.raises(PolicyInvalid) as refused:
        await PolicySets(store, TENANT).load(bad, actor="aad-admin")
    problems = refused.value.problems
    assert (problems[1].code, problems[1].path, problems[1].details["value"]) == (
        ProblemCode.EFFECT,
        "rules[1].effect",
        "alow",
    )
    assert [describe_problem(problem) for problem in problems] == [
        "rules[1].description: missing: say why, in the words people will read",
        "rules[1].effect: \"alow\" is not an effect (did you mean 'allow'?); use allow, require, forbid",
        "rules[1].kinds[0]: \"delegate\" is not an action kind (did you mean 'delegation'?); kinds: delegation, "
        "tool_call, nudge, plan_change, read, setting, sampling",
        'rules[1].id: "fine" is already the id of rules[0]',
        'rules[2].verdict: "go" is not a verdict; use flag, stop',
        'rules[2].limits.discount.le: "fifteen" is not a number; le compares numbers',
        "rules[2].limits.channel.within: \"within\" is not a comparison (did you mean 'in'?); use eq, ne, lt, le, gt, "
        "ge, in, contains",
        "rules[3].whne: not a field here (did you mean 'when'?); fields: id, description, effect, agents, kinds, "
        "actions, when, limits, verdict, gates",
        "rules[3].when.fact: \"ticket_open\" is not a fact type (did you mean 'ticket_opened'?); types: "
        "renewal_open, renewal_closed, ticket_opened, ticket_closed, sales_contact, purchase, page_visit, "
        "content_read",
        'rules[3].when.within: "two days" is not a duration like 48h',
        "rules[4].when.facts[0].match.amount.in: 5 is not a list of values, like [email, sms]",
        'rules[4].when.facts[0].absent: "maybe" is not true or false',
        "rules[4].limits: only an allow rule has limits; a require rule says `when`",
    ]
    assert describe_plain(refused.value).startswith("The rules were not loaded: 13 problem(s).\n- rules[1].description")
    assert await PolicySets(store, TENANT).active() is None


def test_a_document_that_is_not_yaml_says_where() -> None:
    with pytest.raises(PolicyInvalid) as refused:
        parse_policy("rules:\n  - id: x\n   description: [unclosed\n")
    assert describe_plain(refused.value).startswith(
        "The rules were not loaded: 1 problem(s).\n- document: not valid YAML or JSON at line 3, column 4: "
    )
    with pytest.raises(PolicyInvalid) as refused:
        parse_policy("- just a list")
    assert refused.value.problems == [Problem(ProblemCode.POLICY_DOCUMENT, "rules")]
    with pytest.raises(PolicyInvalid) as refused:
        parse_policy('{"rules": [{"id": "a", "description": "d", "effect": "allow"}]}')
    assert describe_problem(refused.value.problems[0]) == (
        "rules[0].limits: missing: an allow rule says its limits, like {discount: {le: 15}}"
    )


def test_rules_read_back_from_their_stored_form() -> None:
    rules = parse_policy(RULES)
    again = parse_policy(json.dumps({"rules": [r.to_json() for r in rules]}))
    assert again == rules
    assert all(isinstance(r, Rule) for r in rules)
    assert rules[0].to_json()["limits"] == {"discount": {"le": 15}}
    assert rules[2].to_json()["agents"] == "*"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("48h", timedelta(hours=48)),
        ("30m", timedelta(minutes=30)),
        ("7 days", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration("two days") is None


async def test_a_caller_can_evaluate_on_its_own_connection(store: Store, clock: FakeClock) -> None:
    engine = await loaded(store)
    await facts(store, clock, {"id": "r1", "type": "renewal_open", "account": "acct-a"})
    touch = action(agent="agentforce", name="send_email", accounts=("acct-a",))
    async with store.engine.connect() as conn:
        decision = await engine.evaluate(touch, conn=conn)
    assert decision == await engine.evaluate(touch)
    assert decision.verdict is Verdict.FLAG


async def test_a_rule_that_flags_puts_the_action_under_its_gates_and_only_then(store: Store) -> None:
    rules = {
        "rules": [
            {
                "id": "big-discounts",
                "description": "A discount above 15 % is a budget shift",
                "effect": "require",
                "when": {"attributes": {"discount": {"gt": 15}}},
                "gates": ["budget"],
            }
        ]
    }
    await PolicySets(store, TENANT).load(rules, actor="aad-admin")
    engine = PolicyEngine(store, TENANT)
    over = await engine.evaluate(action(discount=20))
    assert (over.verdict, over.gates) == (Verdict.FLAG, (GateCategory.BUDGET,))
    assert (await engine.evaluate(action(discount=10))).gates == ()
    # A gate the action is under already is not added twice.
    assert (await engine.evaluate(action(discount=20, categories=(GateCategory.BUDGET,)))).gates == ()
    with pytest.raises(PolicyInvalid) as refused:
        await PolicySets(store, TENANT).load(
            {"rules": [{**rules["rules"][0], "gates": ["budgets"]}]}, actor="aad-admin"
        )
    assert [describe_problem(problem) for problem in refused.value.problems] == [
        "rules[0].gates[0]: \"budgets\" is not an approval gate (did you mean 'budget'?); use strategy, audience, "
        "budget, regulated_claim, brand_creative, personal_data"
    ]
