"""Nudges: the Teams message each kind of outbox message becomes, written as of when it is sent.

A message is composed at sending time from the plan as it is then, so a nudge about a task done meanwhile is
dropped (None) instead of sent, and a week card shows the week as it stands.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.addressing import Undeliverable
from bot.artifacts import ArtifactLinks, artifacts_shown
from bot.cards import approval_card, member_week, message_card, plan_overview, task_card
from bot.cards.approval import actor_label, what_is_asked
from bot.cards.delegation import ArtifactShown, delegation_card
from bot.cards.digest import retrospective_card
from bot.cards.markdown import Markdown, inline_code, literal
from bot.cards.question import question_card
from bot.cards.sign_in import SIGNED_IN, START_PATH, sign_in_card, sign_in_ended_card
from bot.cards.wording import day_seen_from
from bot.operations.measurement import measured
from bot.prefetch import Facts, Prefetch
from bot.teams.channel import Outgoing, Posted
from bot.text import messages
from bot.text.gates import policy_reasons_text, request_reason_text
from bot.text.health import stored_reason_text
from bot.text.numbers import quantity
from bot.text.people import person_name
from planner.domain.approvals import ApprovalNotFound, ApprovalRequest, ApprovalStatus, NoApprovers
from planner.domain.delegations import Delegation, DelegationNotFound
from planner.domain.errors import PlanNotFound, TaskNotFound
from planner.domain.governance import Action, ActionKind, DecisionRecord, PolicyDecision, Verdict
from planner.domain.messages import APPROVED, Envelope, MessageKind
from planner.domain.model import Health, Plan, Task, Tier, iso_week_window
from planner.ports import Recommender
from planner.services.delegation import get_delegation
from planner.services.plans import Plans
from planner.services.tenants import Tenants

logger = logging.getLogger(__name__)


def _activity(text: str, cards: Sequence[dict[str, Any]]) -> Outgoing:
    return Outgoing(text=text, cards=tuple(cards))


class _Writer:
    """What composing one message needs: the tenant's plans and people, and the recipient's today; facts read
    for the message's whole chunk (see `bot.prefetch`) are taken from there."""

    def __init__(
        self,
        tenants: Tenants,
        envelope: Envelope,
        today: date,
        facts: Facts | None = None,
        recommender: Recommender | None = None,
        artifact_links: ArtifactLinks | None = None,
    ) -> None:
        self.store = tenants.store
        self.artifact_links = artifact_links
        self.services = tenants(envelope.tenant_id)
        self.recommender = recommender
        self.envelope = envelope
        self.payload = envelope.payload
        self.plans: Plans = self.services.plans
        self.directory = self.services.directory
        self.today = today
        self.facts = facts or Facts()

    async def artifacts_of(self, delegation: Delegation) -> list[ArtifactShown]:
        """The files kept with a finished delegation, each with a signed link when the bot can mint one."""
        return await artifacts_shown(self.store, self.artifact_links, delegation)

    async def name_of(self, user_id: str | None) -> str:
        if not user_id:
            return "nobody"
        key = (self.envelope.tenant_id, user_id)
        if key in self.facts.people:
            person = self.facts.people[key]
            return person_name(user_id, {user_id: person.name} if person is not None else None)
        return person_name(user_id, await self.directory.names({user_id}))

    async def task(self) -> Task:
        """The task the message is about. Raises TaskNotFound."""
        task_id = int(self.payload["task"])
        key = (self.envelope.tenant_id, task_id)
        if key in self.facts.tasks:
            task = self.facts.tasks[key]
            if task is None:
                raise TaskNotFound(task_id)
            return task
        return await self.plans.get_task(task_id)

    async def open_task(self) -> Task | None:
        try:
            task = await self.task()
        except TaskNotFound:
            return None
        return task if task.status.is_open else None

    async def task_message(self, task: Task, text: str) -> Outgoing:
        plan = self.facts.plans.get((self.envelope.tenant_id, task.plan_id)) or await self.plans.get_plan(task.plan_id)
        card = task_card(task, plan_title=plan.title, owner_name=await self.name_of(task.owner), today=self.today)
        return _activity(text, [card])

    async def overview(self, plan_id: int) -> dict[str, Any]:
        rollup = await self.plans.rollup(plan_id, as_of=self.today)
        owners = {rollup.plan.owner, *(c.plan.owner for c in rollup.children)}
        names = await self.directory.names(owners)
        return plan_overview(rollup, names={o: person_name(o, names) for o in owners}, today=self.today)

    async def active_masters(self, owner: str | None = None) -> list[Plan]:
        week = iso_week_window(self.payload["week"]) if "week" in self.payload else None
        masters = await self.plans.list_plans(Tier.MASTER)
        return [
            p
            for p in masters
            if (owner is None or p.owner == owner)
            and (p.window.includes(self.today) or (week is not None and p.window.start <= week.end))
            and p.window.end >= (week.start if week else self.today)
        ]

    async def week_of(self, person: str) -> tuple[list[Task], dict[int, str]]:
        tasks = sorted(await self.plans.tasks_of_owner(person), key=lambda t: (t.due_on, t.id))
        titles = {p.id: p.title for p in await self.plans.list_plans(Tier.TACTICAL, archived=True)}
        return tasks, titles


async def _deadline(w: _Writer) -> Outgoing | None:
    task = await w.open_task()
    if task is None:
        return None
    due = day_seen_from(task.due_on, w.today)
    title = literal(task.title)
    if w.envelope.kind == MessageKind.ESCALATION:
        text = (
            f"T{task.id} {title} was due {due} and is still open; "
            f"{literal(await w.name_of(task.owner))} has not answered the reminder."
        )
    elif w.envelope.kind == MessageKind.DEADLINE_SLIPPED:
        text = f"T{task.id} {title} was due {due} and is not done yet. Where is it?"
    else:
        text = f"Heads up: T{task.id} {title} is due {due}."
    return await w.task_message(task, text)


def _payload_day(value: object, today: date) -> str:
    """A day a message's payload carries as ISO text, as the cards write it (the text as it is if it is not one)."""
    try:
        day = date.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return day_seen_from(day, today)


async def _milestone(w: _Writer) -> Outgoing | None:
    try:
        task = await w.task()
    except TaskNotFound:
        return None
    if task.status.is_open:
        return None  # reopened since: nothing to celebrate
    text = f"Milestone reached: T{task.id} {literal(task.title)}, done by {literal(await w.name_of(task.owner))}."
    return await w.task_message(task, text)


async def _drift(w: _Writer) -> Outgoing | None:
    p = w.payload
    unit, name = str(p.get("unit") or ""), str(p.get("name") or "")
    actual = "no reading yet" if p.get("actual") is None else quantity(p["actual"], unit, name=name)
    expected, target = quantity(p["expected"], unit, name=name), quantity(p["target"], unit, name=name)
    plan_ref = f"P{p['plan']}"
    lines = [
        f"Plan: {plan_ref} {p['plan_title']}",
        f"Now: {actual} · expected by now: {expected} · target: {target}",
        stored_reason_text(p.get("why") or p.get("reason") or ""),
        Markdown(
            f"Record a new reading with {inline_code(f'record {name} VALUE')}, "
            f"or look at the plan with {inline_code(f'plan {plan_ref}')}."
        ),
    ]
    # A tick may hold drifts of one KPI in several plans: each says which plan it is about.
    text = f"{literal(p['name'])} is {p['health']} in {plan_ref} {literal(p['plan_title'])}: behind its pace to target."
    return _activity(text, [message_card(f"{p['name']} is drifting", lines)])


async def _health(w: _Writer) -> Outgoing | None:
    p = w.payload
    try:
        card = await w.overview(int(p["plan"]))
    except PlanNotFound:
        return None
    better = Health(p["after"]).rank < Health(p["before"]).rank
    text = f"P{p['plan']} {literal(p['title'])} is now {p['after']} (was {p['before']})."
    if not better and p.get("reasons"):
        text += " " + "; ".join(literal(stored_reason_text(reason)) for reason in p["reasons"]) + "."
    return _activity(text, [card])


async def _week_plan(w: _Writer) -> Outgoing | None:
    tasks, titles = await w.week_of(w.envelope.recipient)
    week = w.payload["week"]
    window = iso_week_window(week)
    if not [t for t in tasks if t.due_on <= window.end]:
        return None  # nothing due this week: no message is better than an empty one
    card = member_week(
        person_name=await w.name_of(w.envelope.recipient), iso_week=week, tasks=tasks, today=w.today, plan_titles=titles
    )
    return _activity(f"Good morning! Here is your week ({week}).", [card])


async def _week_review(w: _Writer) -> Outgoing | None:
    tasks, titles = await w.week_of(w.envelope.recipient)
    week = w.payload["week"]
    open_this_week = [t for t in tasks if t.due_on <= iso_week_window(week).end]
    if not open_this_week:
        return None
    card = member_week(
        person_name=await w.name_of(w.envelope.recipient), iso_week=week, tasks=tasks, today=w.today, plan_titles=titles
    )
    text = (
        f"The week is ending: {len(open_this_week)} of your tasks "
        f"{'is' if len(open_this_week) == 1 else 'are'} still open. "
        "Mark what is done, or tell me what is in the way."
    )
    return _activity(text, [card])


async def _week_summary(w: _Writer) -> Outgoing | None:
    masters = await w.active_masters()
    if not masters:
        return None
    window = iso_week_window(w.payload["week"])
    lines = []
    for master in masters:
        rollup = await w.plans.rollup(master.id, as_of=w.today)
        lines.append(
            f"P{master.id} {literal(master.title)}: {rollup.health.value}, {round(rollup.progress * 100)} % done"
        )
    due = [t for t in await w.plans.tasks_due(window.start, window.end) if t.status.is_open]
    people = {t.owner for t in due if t.owner}
    text = f"Week {w.payload['week']}: {len(due)} task(s) due this week for {len(people)} people. " + " · ".join(lines)
    return _activity(text, [await w.overview(masters[0].id)])


async def _digest(w: _Writer) -> Outgoing | None:
    masters = await w.active_masters(owner=w.envelope.recipient)
    if not masters:
        return None
    window = iso_week_window(w.payload["week"])
    cards, lines = [], []
    for master in masters:
        rollup = await w.plans.rollup(master.id, as_of=w.today)
        tasks = await w.plans.tasks_due(window.start, window.end, open_only=False)
        done = sum(1 for t in tasks if t.master_id == master.id and not t.status.is_open)
        slipped = sum(1 for t in tasks if t.master_id == master.id and t.is_overdue(w.today))
        drifting = [literal(m.metric.name) for m in rollup.metrics if m.health.needs_attention]
        line = f"P{master.id} {literal(master.title)}: {rollup.health.value}; this week {done} done, {slipped} slipped"
        if drifting:
            line += "; behind pace: " + ", ".join(drifting)
        lines.append(line)
        # The figures, the chart and the recommendations (logged in the decision log) of bot/operations/measurement.
        _report, card = await measured(w.services, master.id, w.today, recommender=w.recommender)
        cards.append(card)
    return _activity(f"Your digest for {w.payload['week']}:\n" + "\n".join(f"- {line}" for line in lines), cards)


async def _delegation(w: _Writer) -> Outgoing | None:
    try:
        delegation = await get_delegation(w.store, w.envelope.tenant_id, int(w.payload["delegation"]))
    except DelegationNotFound:
        return None
    adapter = literal(delegation.adapter)
    ref = f"T{delegation.task_id} (D{delegation.id}, {adapter} {literal(delegation.capability)})"
    if w.envelope.kind == MessageKind.DELEGATION_DEFERRED:
        text = f"{ref} is waiting: {adapter} is not answering. I'll run it as soon as it is back."
    elif w.envelope.kind == MessageKind.DELEGATION_HELD:
        if delegation.status.value != "held":
            return None  # decided before this went out: the result follows
        text = f"{ref} waits for a person's approval before {adapter} may act. I'll run it once approved."
    elif w.envelope.kind == MessageKind.DELEGATION_OVERDUE:
        due = _payload_day(w.payload.get("due_on"), w.today)
        text = f"{ref} produced nothing yet and the task was due {due}. Do it another way?"
    elif delegation.status.value == "succeeded":
        text = f"{ref} is back. Check it and mark the task done when it is."
    elif delegation.status.value == "unknown":
        text = (
            f"{ref}: I can't tell whether {adapter} did it: no answer came back, and I won't send it "
            f"again by myself in case it did. Check on their side, then `retry D{delegation.id}` or "
            f"`cancel D{delegation.id}`."
        )
    elif delegation.status.value == "cancelled":
        text = f"{ref} was cancelled: nothing more will be sent to {adapter}."
    else:
        text = f"{ref} failed. Delegate again, or take it on yourself."
    try:
        title: str | None = (await w.plans.get_task(delegation.task_id)).title
    except TaskNotFound:
        title = None
    artifacts = await w.artifacts_of(delegation)
    overdue = w.envelope.kind == MessageKind.DELEGATION_OVERDUE
    live = None if overdue else _live_card_of(delegation, w.envelope.recipient)
    if live is not None:
        # The card the owner followed it in, updated in place: one activity, its words in the card (see bot.progress).
        lead = messages.delegation_result_lead(delegation.status.value, delegation.adapter, delegation.id)
        card = delegation_card(delegation, artifacts, title=title, lead=lead)
        return Outgoing(cards=(card,), updates=live, summary=lead)  # a new message should Teams refuse the update
    return _activity(text, [delegation_card(delegation, artifacts, title=title)])


def _live_card_of(delegation: Delegation, recipient: str) -> Posted | None:
    """The card `recipient` followed the delegation in, which its outcome updates in place; None when they followed
    it in none (or what was kept of it no longer reads)."""
    card = delegation.live_card
    if card is None or card.get("recipient") != recipient:
        return None
    try:
        return Posted.from_stored(card)
    except ValueError:
        logger.warning("where the live card of D%s lies does not read: the outcome goes as a message", delegation.id)
        return None


async def _text(w: _Writer) -> Outgoing | None:
    return Outgoing(text=str(w.payload["text"]))


async def _question(w: _Writer) -> Outgoing | None:
    """An agent's question: a short line (what a notification shows) and the question's card; as text alone when
    queued by a release that kept only the text."""
    agent, asked, minutes = (w.payload.get(key) for key in ("agent", "asked", "minutes"))
    if not (isinstance(agent, str) and isinstance(asked, str) and isinstance(minutes, int)):
        return await _text(w)
    return _activity(messages.question_asked(agent, minutes), [question_card(agent, asked, minutes)])


async def _notice(w: _Writer) -> Outgoing | None:
    """A notice, with the cards of an answer finished after its turn (an admin's, once they signed in)."""
    cards = w.payload.get("cards")
    return _activity(str(w.payload["text"]), cards if isinstance(cards, list) else [])


async def _sign_in(w: _Writer) -> Outgoing | None:
    """The sign-in card: what asks and why, and the button that opens the vendor's sign-in page through the bot's
    link, signed now (with the artifact links' key) and valid for as long as the sign-in waits."""
    agent, minutes = str(w.payload["agent"]), int(w.payload["minutes"])
    sign_in = w.payload.get("sign_in")
    path = START_PATH.format(sign_in=int(sign_in)) if isinstance(sign_in, int) else None
    until = w.store.clock() + timedelta(minutes=minutes)
    link = w.artifact_links.signed(path, until=until) if path and w.artifact_links is not None else None
    if link is None:
        raise Undeliverable("a sign-in card links to the bot: it needs the bot's public URL and secret keys")
    # One activity, its words in the card, so that it updates in place once the sign-in ends (see bot.progress).
    return Outgoing(cards=(sign_in_card(agent, link, minutes),), summary=messages.sign_in_for(agent, minutes))


async def _sign_in_ended(w: _Writer) -> Outgoing | None:
    """The sign-in card updated in place to say how the sign-in ended, without its button; where the card lies
    nowhere known (Teams gave its message no id), a short line once signed in, and nothing otherwise (what they
    asked for tells them how it ended)."""
    agent, outcome, card = str(w.payload["agent"]), str(w.payload["outcome"]), w.payload.get("card")
    try:
        posted = Posted.from_stored(card) if isinstance(card, dict) else None
    except ValueError:
        logger.warning("where a sign-in card lies does not read: how the sign-in ended goes as a message")
        posted = None
    if posted is not None:
        summary = messages.signed_in_to(agent, plain=True) if outcome == SIGNED_IN else None
        return Outgoing(cards=(sign_in_ended_card(agent, outcome),), updates=posted, summary=summary)
    if outcome == SIGNED_IN:
        return Outgoing(text=messages.signed_in_to(agent))
    return None


async def _approval(w: _Writer) -> Outgoing | None:
    """The approval card to an approver, or the outcome to the person who asked."""
    try:
        request = await w.services.approvals.get(int(w.payload["approval"]))
    except ApprovalNotFound:
        return None
    asking = w.envelope.kind == MessageKind.APPROVAL_REQUEST
    if asking and (request.status is not ApprovalStatus.PENDING or w.store.clock() >= request.expires_at):
        return None  # decided or expired before the card went out: nothing to ask any more
    recipient = request.action.attributes.get("recipient")
    people = (request.requester, request.decided_by, recipient if isinstance(recipient, str) else None)
    names = await w.directory.names({u for u in people if u})
    person = await w.directory.person(w.envelope.recipient)
    try:
        zone = ZoneInfo(person.time_zone) if person and person.time_zone else None
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    requester = actor_label(request.requester, names)
    decider = names.get(request.decided_by or "")
    card = approval_card(request, requester_name=requester, decider_name=decider, zone=zone, names=names)
    if asking:
        why = literal(request_reason_text(request))
        text = f"{literal(requester)} asks for your approval ({what_is_asked(request)}): {why}"
    elif request.status is ApprovalStatus.EXPIRED:
        text = f"{request.ref} expired before anyone decided: the action was not taken. Ask again if it still matters."
    else:
        outcome = "approved" if request.approved else "rejected"
        text = f"{request.ref} was {outcome} by {literal(decider or request.decided_by or 'nobody')}."
    return _activity(text, [card])


async def _retrospective(w: _Writer) -> Outgoing | None:
    try:
        retro = await w.services.playbooks.retrospective(int(w.payload["plan"]))
    except PlanNotFound:
        return None
    text = (
        f"P{retro.plan.id} {literal(retro.plan.title)} has ended. "
        "Here is how it went, and what to keep for the next one."
    )
    return _activity(text, [retrospective_card(retro)])


COMPOSERS: dict[MessageKind, Callable[[_Writer], Awaitable[Outgoing | None]]] = {
    MessageKind.DEADLINE_APPROACHING: _deadline,
    MessageKind.DEADLINE_SLIPPED: _deadline,
    MessageKind.ESCALATION: _deadline,
    MessageKind.MILESTONE_COMPLETED: _milestone,
    MessageKind.METRIC_DRIFT: _drift,
    MessageKind.PLAN_HEALTH: _health,
    MessageKind.WEEK_PLAN: _week_plan,
    MessageKind.WEEK_REVIEW: _week_review,
    MessageKind.WEEK_SUMMARY: _week_summary,
    MessageKind.DIGEST: _digest,
    MessageKind.DELEGATION_RESULT: _delegation,
    MessageKind.DELEGATION_DEFERRED: _delegation,
    MessageKind.DELEGATION_HELD: _delegation,
    MessageKind.DELEGATION_UNKNOWN: _delegation,
    MessageKind.DELEGATION_OVERDUE: _delegation,
    MessageKind.APPROVAL_REQUEST: _approval,
    MessageKind.APPROVAL_DECIDED: _approval,
    MessageKind.RETROSPECTIVE: _retrospective,
    MessageKind.QUESTION: _question,
    MessageKind.NOTICE: _notice,
    MessageKind.SIGN_IN: _sign_in,
    MessageKind.SIGN_IN_ENDED: _sign_in_ended,
}
"""How each kind of message is written when it is sent: one composer for every MessageKind (a test checks)."""


async def compose(
    tenants: Tenants,
    envelope: Envelope,
    prefetch: Prefetch | None = None,
    *,
    recommender: Recommender | None = None,
    artifact_links: ArtifactLinks | None = None,
) -> Outgoing | None:
    """The message to send, or None when it no longer applies (the task was done meanwhile).

    With `prefetch`, the facts read for the message's chunk of its batch are used instead of reading them again;
    `recommender` writes the digest's recommendations (the rules when None).
    """
    kind = MessageKind.of(envelope.kind)
    composer = COMPOSERS.get(kind) if isinstance(kind, MessageKind) else None
    if composer is None:
        raise Undeliverable(f"no way to write a {envelope.kind!r} message")
    facts = await prefetch.facts(envelope) if prefetch is not None else None
    now = tenants.store.clock()
    key = (envelope.tenant_id, envelope.recipient)
    if facts is not None and key in facts.people:
        person = facts.people[key]
    else:
        person = await tenants(envelope.tenant_id).directory.person(envelope.recipient)
    try:
        zone = ZoneInfo(person.time_zone) if person and person.time_zone else None
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    today = now.astimezone(zone).date() if zone else now.date()
    if not envelope.payload.get(APPROVED) and not await _policy_allows(tenants, envelope):
        return None
    return await composer(_Writer(tenants, envelope, today, facts, recommender, artifact_links))


class HeldForApproval(Exception):
    """A policy flagged the message: it waits for a person's approval (`hold_for_approval`) instead of going out."""

    def __init__(self, action: Action, decision: PolicyDecision) -> None:
        self.action = action
        self.decision = decision
        super().__init__(policy_reasons_text(decision.reasons, none="a policy asks a person to look first"))


async def hold_for_approval(tenants: Tenants, envelope: Envelope, held: HeldForApproval) -> ApprovalRequest | None:
    """Ask the approvers of the flagged gate about a held message (approving it sends it); None when nobody may
    approve it, and the message then stays held, unsent."""
    services = tenants(envelope.tenant_id)
    name = (await services.directory.names({envelope.recipient})).get(envelope.recipient)
    about = f" about T{envelope.payload['task']}" if "task" in envelope.payload else ""
    try:
        return await services.approvals.request(
            held.action,
            requester="bot",
            reason=f"the {envelope.kind.replace('_', ' ')} message to {name or envelope.recipient}{about} waits for "
            f"a person to look first: {held}",
            resume={"outbox": envelope.id},
            policy=held.decision,
        )
    except NoApprovers as error:
        logger.warning("a held %s message has nobody to approve it: %s", envelope.kind, error)
        return None


async def _policy_allows(tenants: Tenants, envelope: Envelope) -> bool:
    """Every outbound nudge passes the policy engine and only a go is sent: a stopped one is dropped, a flagged one
    is held for a person's approval (HeldForApproval); either is logged."""
    subject = f"task:{envelope.payload['task']}" if "task" in envelope.payload else f"outbox:{envelope.id}"
    action = Action(
        tenant_id=envelope.tenant_id,
        kind=ActionKind.NUDGE,
        actor="bot",
        name=envelope.kind,
        subject=subject,
        attributes={"recipient": envelope.recipient, **envelope.payload},
    )
    services = tenants(envelope.tenant_id)
    decision = await services.policy.evaluate(action)
    if decision.verdict is Verdict.GO:
        return True
    stopped = decision.verdict is Verdict.STOP
    reasons = policy_reasons_text(decision.reasons, none="")
    await services.decisions.record(
        DecisionRecord(
            tenant_id=envelope.tenant_id,
            actor="policy",
            action=f"nudge.{'stopped' if stopped else 'held'}",
            subject=subject,
            verdict=decision.verdict.value,
            rationale=f"the {envelope.kind.replace('_', ' ')} message to {envelope.recipient} "
            f"{'was not sent' if stopped else 'waits for a person to approve it'}: {reasons}",
            data={"outbox": envelope.id, "kind": envelope.kind, "recipient": envelope.recipient},
            rules=tuple(m.rule_id for m in decision.matched),
        )
    )
    if stopped:
        return False
    raise HeldForApproval(action, decision)
