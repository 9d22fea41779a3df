"""Everything the bot says in words, in one place (cards have their own wording in bot/cards/)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

from bot.cards.markdown import Markdown, excerpt, inline_code, literal, markdown
from bot.cards.wording import day_label, window_label
from bot.text.numbers import money_in_cents
from planner.domain.messages import MessageKind
from planner.domain.model import Event, Plan, Tier

HELP = """Here is what I understand. Ids: P for plans, T for tasks; dates as 2026-03-31, 31 March, friday or \
tomorrow. Every example works as written; a word in CAPITALS is yours to fill in.

**Plans**
- `new plan 500 SQLs by 31 March from 2026-01-01 to 2026-03-31 kpi SQLs 500`: the master plan; add \
`kpi pipeline 2m USD from 100k tolerance 10%` or `constraint no paid social` as often as you need
- `tactical Spring launch from 2026-02-02 to 2026-03-13 in P1 owner me kpi SQLs 200`: a tactical plan
- `derive tactical P1 monthly`: tactical plans proposed, to save or discard (or `fortnightly`, `quarterly`)
- `week P2`: this week's plan from a tactical plan (`week P2 2026-W07` for another week)
- `plan`: the plan tree with progress and health · `plan P2`: one plan · `plans`: every plan
- `set target SQLs 600 in P1` · `edit master P1 north star 600 SQLs by 31 March` (or `from DATE`, `to DATE`, \
`constraint TEXT`): a change of strategy, the plan leader's own or held for their approval
- `edit P2 title TEXT` · `edit P2 owner WHO` · `edit P2 from 2026-01-05 to 2026-04-30`: fix a tactical or weekly \
plan · `archive P2`: put it away, kept for history (`unarchive P2`; `plans all` lists archived plans too)

**Tasks**
- `add task Draft the launch brief due friday owner WHO`: a title may hold any words; quotes are welcome: \
`add task "Plan for Q1 webinar" to P2 due 2026-03-20 owner me milestone`
- `assign T12 to WHO` · `start T12` · `done T12` · `block T12 waiting for legal` · `reopen T12`
- `snooze T12 2 days` · `task T12` · `my tasks`
- `edit T12 title TEXT` · `edit T12 due DATE` · `edit T12 owner WHO` (or `nobody`) · `edit T12 milestone yes` \
(or `no`) · `move T12 to P3` · or the task card's Edit button
- `delete T12`: gone, with an Undo button · `undo`: takes back your last edit, archive or deletion, within 10 \
minutes (an edited card has an Undo button too; `undo T12` brings back that deleted task)

**Metrics**
- `record SQLs 140` (or `record SQLs 140 on 2026-02-15 in P2`)
- `how are we doing`: figures, a chart, forecasts and what to do next (`how are we doing P2` for one plan)
- `retro P2`: a tactical plan's retrospective · `save playbook P2 as product launch` · `playbooks`
- `use playbook product launch for May launch from 2026-05-04 in P1`: a new tactical plan from a playbook

**Budgets**
- `budget P1 250k USD`: the master plan's budget (a change of strategy) · `allocate 60k USD to P2`: a tactical \
plan's share of it (raising one waits for the budget approvers) · `move 10k USD from P2 to P3`: a budget shift
- `spend 12k USD on P2` · `spend P2 12,500 USD on 2026-02-10`: money spent, today or on a past day

**Drafts**
- `save draft 3` · `discard draft 3`

**Delegation**
- `delegate T12 to hubspot draft_email {"topic": "spring launch"}` · `delegations T12`
- admins: `adapters` · `adapter add mcp NAME CONFIG` (or `a2a`, `browser`; CONFIG as JSON) · `adapter test hubspot` \
(or `enable`, `disable`, `remove`) · `adapter tools hubspot`

**Follow-up**
- `triggers`: when I nudge, and for whom · `triggers set lead 2` · `triggers off weekly` · `triggers reset`
- `outbox` (admins): messages waiting, and the ones Teams refused · `outbox replay 12 13` or `outbox replay all`

**Governance**
- `approvals`: what waits for your approval · `approve A3 looks good` · `reject A3 because the budget is spent` \
(or the card's buttons)
- `approvers`: who approves what · admins: `approvers add legal @PERSON` · `approvers remove legal @PERSON` · \
`approvers map budget finance`
- `why T12` · `why D5` · `why decision 17`: the decisions behind it, in plain words · `decisions T12`: the log
- admins: `policy`: the rules agents work under · `policy load RULES` (RULES as JSON; YAML files: `cos policy load`)

**You**
- `whoami`: your user id (what an admin lists in COS_ADMINS), name, tenant, and whether you are an admin

`help add task` shows one command. With an Anthropic key configured you can also just write what you want."""

WELCOME_TEXT = "Hi, I'm your chief of staff. Type `help` to see what I can do."
EMPTY_MESSAGE = "I didn't get any text. Type `help` to see what I can do."
BUSY = "Working on it…"
LLM_UNAVAILABLE = (
    "I couldn't reach the language model just now ({reason}), so I read your message as a command instead."
)
LLM_NOT_UNDERSTOOD = "I couldn't turn that into a plan operation. Type `help` for the commands I understand."
FAILED = "Sorry, something went wrong on my side while doing that. Nothing was changed. Please try again."
STALE_CARD = "This task changed since the card was sent; here it is as it is now."
STALE_PLAN_CARD = "This plan changed since the card was sent; nothing was saved. Here it is as it is now."
ANSWER_PASSED_ON = "Thanks, I've passed it on."
QUESTION_CANCELLED = "Cancelled: the agent that asked will stop and say so."
NO_QUESTION_WAITING = "Nothing is waiting for a code from you just now, so I didn't pass that on or keep it."
QUESTION_EXPIRED = "Too late, sorry: that question expired. The agent will ask again if it still needs it."
ADMINS_ONLY = (
    "Only an admin of this bot can do that. Admins are listed by their Microsoft Entra object id in COS_ADMINS."
)
LEADERS_ONLY = "Only an admin or the owner of a master plan can change when I follow up."
CARD_ACTION_REFUSED = "That card is out of date or was not meant for you: {reason}"
ALREADY_DONE = "Done already: that was taken care of the first time."
APPROVAL_REFUSED = "Sorry, I can't take that decision from you, and nothing was changed. {reason}"
NOTHING_TO_APPROVE = "Nothing is waiting for your approval."


def question_for(agent: str, question: str, minutes: int) -> str:
    return (
        f"{literal(agent)} is asking: {literal(question)}\n\nReply here with the answer within {minutes} minutes, "
        "or say `cancel`. I pass it on once and don't keep it."
    )


def question_asked(agent: str, minutes: int) -> str:
    """Above the card of an agent's question: what a notification of it shows."""
    return f"{literal(agent)} needs an answer from you to go on: reply within {minutes} minutes."


def delegation_following(agent: str) -> str:
    """Under the title of a delegation's live card while it runs (plain: the card shows it literally)."""
    return f"Under way: this card shows what {agent} reports as it goes, and where it ends."


def delegation_stopped() -> str:
    """Under the title of that card when the run stopped without an end (held for an approval, deferred)."""
    return "It stopped here for now: you'll hear when it moves on."


def delegation_result_lead(status: str, agent: str, delegation_id: int) -> str:
    """Under the title of that card once the result is in (plain: the card shows it literally)."""
    return {
        "succeeded": "It is back: check it, and mark the task done when it is.",
        "unknown": f"No answer came back, and I won't send it again by myself in case {agent} did it: check on their "
        f'side, then say "retry D{delegation_id}" or "cancel D{delegation_id}".',
        "cancelled": f"Cancelled: nothing more will be sent to {agent}.",
        "deferred": f"{agent} is not answering: I'll run it as soon as it is back.",
        "held": f"It waits for a person's approval before {agent} may act: I'll run it once approved.",
    }.get(status, "It failed: delegate it again, or take it on yourself.")


def sign_in_for(agent: str, minutes: int) -> str:
    """What a notification of the sign-in card says (plain: the card is the message)."""
    return f"{agent} works as you: sign in to it within {minutes} minutes and I'll carry on with what you asked."


def signed_in_to(agent: str, *, plain: bool = False) -> str:
    """Once a person signed in, when their sign-in card cannot be updated to say so (`plain`: what a notification
    of the updated card says, should it go as a new message)."""
    return f"You're signed in to {agent if plain else literal(agent)}. I'm carrying on with what you asked."


FINISHING_AFTER_SIGN_IN = "I've sent you a sign-in card; I'll finish once you're signed in."
SIGNED_IN_PAGE = "You are signed in. You can close this page and go back to Teams: I'm carrying on."
SIGN_IN_LINK_SPENT = (
    "This sign-in link is not valid any more: it was used already, or it expired. "
    "Go back to Teams; I'll send a new one if it's still needed."
)


def unknown_command(word: str, suggestion: str | None) -> str:
    """The answer to text that is no command, on a bot without a language model (with one, the model reads it)."""
    hint = f" Did you mean {inline_code(suggestion, limit=160)}?" if suggestion else ""
    return (
        f"I don't know the command {inline_code(word)}.{hint} Type `help` to see what I understand: without an "
        "Anthropic key (ANTHROPIC_API_KEY) I read commands, not free text."
    )


_PLACEHOLDER = re.compile(r"<(@?)([^<>|]+)>")


def placeholders_in_capitals(line: str) -> str:
    """`<date>` as `DATE`: Teams shows angle brackets in a message as `&lt;date&gt;`."""
    return (
        _PLACEHOLDER.sub(lambda m: m.group(1) + "-".join(m.group(2).upper().split()), line)
        .replace("<", "")
        .replace(">", "")
    )


def usage_of(usage: Sequence[str]) -> str:
    """Usage lines as code, side by side: Teams joins lines that one line break separates."""
    return " · ".join(f"`{placeholders_in_capitals(line)}`" for line in usage)


def refused(reason: str, usage: Sequence[str]) -> str:
    """A command not written as it is used: why, then how it is (the forms the reason does not show already)."""
    rest = [line for line in usage if f"`{placeholders_in_capitals(line)}`" not in reason]
    return f"{reason}\n\nUsage:\n{usage_of(rest)}" if rest else reason


def cannot_read_two_ways(operation: str) -> str:
    return f"I only weigh two readings of a task to add, not of {literal(excerpt(operation))}."


def readings_question(name: str) -> str:
    return f"Is {excerpt(name)} the task's owner, or part of its title? I changed nothing yet."


def reading_with_owner(title: str, owner: str) -> str:
    return f"“{excerpt(title, 50)}”, owned by {excerpt(owner, 30)}"


def reading_as_title(title: str) -> str:
    return f"“{excerpt(title, 70)}”, no owner yet"


def read_as_title(name: str) -> str:
    return (
        f"(I kept “for {literal(name)}” in the title: nobody called {literal(name)} has talked to me yet. To make "
        f"them the owner, @mention them or say `owner NAME`.)"
    )


def missing(name: str) -> str:
    return f"I need the {name.replace('_', ' ')}."


def no_plan_yet(tier: Tier | None) -> str:
    if tier is Tier.TACTICAL:
        return "There is no tactical plan yet: add one with `tactical TITLE from DATE to DATE`."
    if tier is Tier.WEEKLY:
        return "There is no weekly plan yet: derive one with `week`."
    return "There is no plan yet: start with `new plan NORTH-STAR from DATE to DATE kpi NAME TARGET`."


def which_plan(candidates: Sequence[Plan]) -> str:
    listed = ", ".join(f"P{p.id} ({literal(excerpt(p.title))})" for p in candidates[:8])
    more = f" and {len(candidates) - 8} more" if len(candidates) > 8 else ""
    return f"Which plan? Name it by id: {listed}{more}."


def ambiguous_person(name: str, names: Sequence[str]) -> str:
    listed = ", ".join(literal(n) for n in names)
    return f"More than one person is called {literal(excerpt(name))}: {listed}. @mention the one you mean."


def plan_created(plan: Plan, kpis: int) -> str:
    what = "Master plan" if plan.tier is Tier.MASTER else "Tactical plan"
    kpi_text = f" with {kpis} KPI{'s' if kpis != 1 else ''}" if kpis else ""
    return (
        f"{what} P{plan.id} created{kpi_text}: {literal(plan.title)} "
        f"({window_label(plan.window.start, plan.window.end)})."
    )


def unknown_owner_note(name: str) -> str:
    return f" I don't know {literal(excerpt(name))} yet: @mention them so their tasks reach them in Teams."


WHY_WHAT = (
    "Why what? Name it: `why T12` (a task), `why D5` (a delegation), `why P3` (a plan), `why A3` (an approval "
    "request) or `why decision 17`."
)
NO_DECISIONS = "No decision has been logged yet."
NO_DECISION_MATCHES = (
    "I found no recent decision that fits that question. Name what you mean: `why T12`, `why D5` or "
    "`why decision 17`; `decisions` lists the latest ones."
)
DECISIONS_HINT = "Ask `why decision NUMBER` to have one explained."


def no_decisions_about(what: str) -> str:
    return f"I have no decision logged about {literal(excerpt(what))}."


def decision_explained(seq: int, explanation: str) -> str:
    return markdown("**Decision {}.** {}", seq, explanation)


def change_explained(explanation: str) -> str:
    return markdown("**Change.** {}", explanation)


def decision_line(*, seq: int, when: str, actor: str, verdict: str, subject: str, rationale: str) -> Markdown:
    reason = rationale if len(rationale) <= 140 else rationale[:139] + "…"
    line = markdown("#{} · {} · {}: {} · {}", seq, when, actor, verdict, subject)
    return Markdown(line + (markdown(" · {}", reason) if reason else ""))


NO_POLICY = (
    "No policy rules are loaded: agents act on their own, except where a person must approve (strategy, audiences, "
    "budget, regulated claims, brand-critical creative, personal data). Load rules with `policy load JSON`, or "
    "`cos policy load rules.yaml --tenant TENANT-ID` from a shell."
)


def policy_summary(version: int, rules: int, loaded_by: str, when: str) -> Markdown:
    return markdown(
        "Version {}: {} rule(s), loaded by {} on {}. The strictest matching rule wins.", version, rules, loaded_by, when
    )


def more_rules(count: int) -> str:
    return f"…and {count} more: `cos policy show --tenant TENANT-ID` prints them all."


def policy_loaded(version: int, rules: int) -> str:
    return f"Policy version {version} is in force: {rules} rule(s). Every agent's next action is checked against it."


def operation_stopped(operation: str, reasons: str) -> str:
    return f"I won't do that ({operation.replace('_', ' ')}): {literal(reasons)}."


def operation_held(reasons: str, approval: str) -> str:
    return f"That needs approval first ({literal(reasons)}): I asked for it as {approval}."


def operation_unapprovable(reasons: str, problem: str) -> str:
    """`problem`: why nobody can approve it: the bot's words for the error (bot/text/errors.py), or text to show as
    it was written."""
    return f"That needs a person's approval first ({literal(reasons)}), but {sentence_within(literal(problem))}"


def sentence_within(text: str) -> str:
    """A sentence continued inside another: its first letter in lower case (`…, but nobody …`), unless it starts a
    name or a reference (`A3`)."""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def approved_and_run(approval: str, outcome: str) -> str:
    return f"{approval} was approved, and what it held has now run: {outcome}"


def nothing_to_change() -> str:
    return "What should change? `set target SQLs 600`, or `edit master north star TEXT` (or from/to/constraint)."


def nothing_to_change_in_task(task_id: int) -> str:
    return (
        f"T{task_id} already reads that way: nothing changed. Say what to change: `edit T{task_id} title TEXT`, "
        f"`edit T{task_id} due DATE`, `edit T{task_id} owner WHO`, `edit T{task_id} milestone yes` or "
        f"`move T{task_id} to P3`."
    )


def nothing_to_change_in_plan(plan_id: int) -> str:
    return (
        f"P{plan_id} already reads that way: nothing changed. Say what to change: `edit P{plan_id} title TEXT`, "
        f"`edit P{plan_id} owner WHO` or `edit P{plan_id} from DATE to DATE`."
    )


def task_edited(task_id: int, changes: Sequence[str]) -> str:
    """`changes`: the bot's words, values already literal."""
    return f"T{task_id} edited: {'; '.join(changes)}. `why T{task_id}` shows what it was."


def task_deleted(task_id: int, title: str, minutes: int) -> str:
    return (
        f"T{task_id} deleted: “{literal(excerpt(title))}”. Changed your mind? Press Undo or type `undo` within "
        f"{minutes} minutes."
    )


def delegations_cancelled_with_task(refs: Sequence[str]) -> str:
    return f" Cancelled {', '.join(refs)}: no agent is needed for a deleted task."


def edit_undone(ref: str, restored: Sequence[str]) -> str:
    """`restored`: what the undo put back, the bot's words with values already literal."""
    return f"Undone: {ref} is as it was before your change ({'; '.join(restored)}). `why {ref}` shows both."


def task_restored(task_id: int, was_id: int) -> str:
    if task_id == was_id:
        return f"T{task_id} is back, as it was before it was deleted."
    return (
        f"T{was_id} is back as T{task_id}: its old id was taken meanwhile, so it has a new one. "
        "Its delegations stay cancelled."
    )


def master_plan_by_strategy(plan_id: int) -> str:
    return (
        f"P{plan_id} is a master plan: its goals change through the strategy gate. "
        f"`edit master P{plan_id} north star TEXT` (or `from DATE`, `to DATE`, `constraint TEXT`), "
        f"`set target SQLs 600 in P{plan_id}`."
    )


def plan_edited(plan_id: int, changes: Sequence[str]) -> str:
    return f"P{plan_id} edited: {'; '.join(changes)}. `why P{plan_id}` shows what it was."


def plan_archived(plan_id: int, archived: bool) -> str:
    if archived:
        return (
            f"P{plan_id} archived: it is kept with its history but left out of `plans` and of the plan you mean when "
            f"you name none. `plans all` lists it; `unarchive P{plan_id}` brings it back."
        )
    return f"P{plan_id} is back in use."


def no_such_kpi(name: str, plan_id: int, known: str) -> str:
    return (
        f"P{plan_id} has no KPI {literal(repr(excerpt(name)))} (its KPIs: {literal(known)}). "
        "Targets change by the KPI's name."
    )


def master_plan_changed(plan_id: int, changed: list[str]) -> str:
    return f"P{plan_id} changed: {', '.join(changed)}."


def admins_only(user_id: str) -> str:
    """The refusal of an admin command, saying how its caller would become an admin."""
    shown = user_id.replace("`", "")[:200]
    return (
        f"{ADMINS_ONLY} Your id is `{shown}`. Running the bot locally? Start it with "
        f"`cos serve --local-admin {shown}` (or set COS_LOCAL_ADMIN) to make that id its admin."
    )


def too_long(limit: int) -> str:
    return (
        f"That message is longer than I read ({limit:,} characters), so I did nothing with it. Say it in fewer words, "
        "or split it; a long rule set loads from a file with `cos policy load`."
    )


HELD_MESSAGE_RELEASED = (
    "The message goes out at the next delivery, within a minute; in the recipient's quiet hours, or once their day's "
    "messages are used up, on their next morning."
)
HELD_MESSAGE_GONE = "That message was released already."


KIND_LABELS: dict[str, str] = {
    MessageKind.DEADLINE_APPROACHING: "A task is due soon",
    MessageKind.DEADLINE_SLIPPED: "A task is past due",
    MessageKind.ESCALATION: "A task slipped and its owner has not answered",
    MessageKind.MILESTONE_COMPLETED: "A milestone is done",
    MessageKind.METRIC_DRIFT: "A KPI is behind its pace",
    MessageKind.PLAN_HEALTH: "A plan's health changed",
    MessageKind.WEEK_PLAN: "Your week",
    MessageKind.WEEK_SUMMARY: "The week's plans",
    MessageKind.WEEK_REVIEW: "Your week's review",
    MessageKind.DIGEST: "The week's digest",
    MessageKind.DELEGATION_RESULT: "A delegation ended",
    MessageKind.DELEGATION_DEFERRED: "A delegation waits for its agent",
    MessageKind.DELEGATION_HELD: "A delegation waits for an approval",
    MessageKind.DELEGATION_UNKNOWN: "A delegation's outcome is unknown",
    MessageKind.DELEGATION_OVERDUE: "A delegation is overdue",
    MessageKind.RETROSPECTIVE: "A plan's retrospective",
}
"""How a summary card names a message that has no text of its own (only a card)."""


def who_you_are(*, name: str, user_id: str, tenant_id: str, is_admin: bool) -> Markdown:
    """`whoami`: the id an admin lists in COS_ADMINS, with the caller's name, tenant and admin standing."""
    admin = (
        "yes"
        if is_admin
        else "no. An admin makes you one by adding your user id to COS_ADMINS (a bot run locally: "
        "`cos serve --local-admin <your user id>`)"
    )
    return Markdown(
        f"You are {literal(excerpt(name, 200))}.\n\n"
        f"- User id: {inline_code(user_id, 200)}: the id an admin lists in COS_ADMINS\n"
        f"- Tenant: {inline_code(tenant_id, 200)}\n"
        f"- Admin of this bot: {admin}"
    )


# ---- budgets ---------------------------------------------------------------------------------------------------


def budget_set(plan_id: int, amount: int, currency: str) -> str:
    return (
        f"P{plan_id}'s budget is {money_in_cents(amount, currency)}. Allocate it to tactical plans with "
        f"`allocate 60k {currency} to P2`."
    )


def allocated(
    plan_id: int,
    amount: int,
    before: int | None,
    headroom: int,
    currency: str,
    master_id: int,
    line: str | None,
) -> str:
    was = f" (was {money_in_cents(before, currency)})" if before is not None and before != amount else ""
    status = f" {line}." if line else ""
    return (
        f"P{plan_id} is allocated {money_in_cents(amount, currency)}{was}; {money_in_cents(headroom, currency)} of "
        f"P{master_id}'s budget is left to allocate.{status}"
    )


def budget_moved(*, amount: int, currency: str, source: int, source_now: int, target: int, target_now: int) -> str:
    return (
        f"Moved {money_in_cents(amount, currency)} from P{source} to P{target}: P{source} is allocated "
        f"{money_in_cents(source_now, currency)}, P{target} {money_in_cents(target_now, currency)}."
    )


def spend_recorded(plan_id: int, amount: int, currency: str, on: date | None, line: str | None) -> str:
    day = f" on {day_label(on, with_year=True)}" if on is not None else ""
    status = f" {line}." if line else ""
    return f"Recorded {money_in_cents(amount, currency)} spent on P{plan_id}{day}.{status}"


def _amount_of(snapshot: dict[str, object] | None) -> str | None:
    if not snapshot:
        return None
    amount, currency = snapshot.get("amount"), snapshot.get("currency")
    return money_in_cents(amount, str(currency)) if isinstance(amount, int) else None


def budget_event(event: Event, actor: str) -> str:
    """One budget change or spend of a plan, as `why P2` lists it."""
    when = f"{event.at:%Y-%m-%d %H:%M} UTC"
    before, after = _amount_of(event.before), _amount_of(event.after)
    who = literal(excerpt(actor))
    if event.kind == "spend.recorded":
        day = (event.after or {}).get("spent_on", "")
        return f"{when}: {who} recorded {after} spent on {day}."
    if event.kind == "budget.set":
        return f"{when}: {who} set the budget to {after}" + (f" (was {before})." if before else ".")
    verb = "moved money: the allocation is now" if event.kind == "budget.moved" else "set the allocation to"
    return f"{when}: {who} {verb} {after}" + (f" (was {before})." if before else ".")


def budget_history(lines: Sequence[str]) -> str:
    return "**Budget changes, latest first.**\n\n" + "\n".join(f"- {line}" for line in lines)


def week_ends_today(start: date, end: date) -> Markdown:
    """Above the week card on a Sunday: the week shown is the one ending today, and how to see the next."""
    ask = inline_code("what's due next week")
    return Markdown(f"This week, {literal(window_label(start, end))}, ends today. For the week ahead, ask {ask}.")
