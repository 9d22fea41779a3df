"""Everything the bot says in words, in one place (cards have their own wording in bot/cards/)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.cards.markdown import Markdown, excerpt, inline_code, literal, literal_prose, markdown
from planner.domain.model import Plan, Tier

HELP = """Here is what I understand (ids: P for plans, T for tasks; dates as 2026-03-31, 31 March, friday…):

**Plans**
- `new plan <north star> from <date> to <date> [kpi <name> <target> [unit] [from <baseline>] [tolerance 10%]]…`
- `tactical <title> from <date> to <date> [in P1] [owner <who>] [kpi …]`
- `derive tactical [P1] [monthly|fortnightly|quarterly]`: a proposal to save or discard
- `week [P2] [2026-W07]`: derive this week's plan from a tactical plan
- `plan [P1]`: the plan tree with progress and health · `plans`: every plan
- `set target <KPI> <value> [in P1]` · `edit master [P1] [north star <text>] [from <date>] [to <date>]`
  `[constraint <text>]…`: a change of strategy, the plan leader's own or held for their approval

**Tasks**
- `add task <title> [to P2] due <date> [for <who>] [milestone]`
- `assign T12 to <who>` · `start T12` · `done T12` · `block T12 <reason>` · `reopen T12`
- `snooze T12 [2 days|4 hours]` · `task T12` · `my tasks`

**Metrics**
- `record <metric> <value> [on <date>] [in P1]`
- `how are we doing [P1]`: figures, a chart, forecasts and what to do next
- `retro [P2]`: a tactical plan's retrospective · `save playbook P2 as <name>` · `playbooks`
- `use playbook <name> for <title> from <date> [in P1]`: a new tactical plan from a playbook

**Drafts**
- `save draft 3` · `discard draft 3`

**Delegation**
- `delegate T12 to <adapter> <capability> [{"input": "as JSON"}]` · `delegations [T12]`
- admins: `adapters` · `adapter add <mcp|browser> <name> <config JSON>` · `adapter test|enable|disable|remove <name>`

**Follow-up**
- `triggers`: when I nudge, and for whom · `triggers set lead 2` · `triggers off weekly` · `triggers reset`
- `outbox` (admins): messages waiting, and the ones Teams refused · `outbox replay 12 13` or `outbox replay all`

**Governance**
- `approvals`: what waits for your approval · `approve A3 [note]` · `reject A3 [because …]` (or the card's buttons)
- `approvers`: who approves what · admins: `approvers add <role> <@person>` · `approvers remove <role> <@person>`
- admins: `approvers map <strategy|audience|budget|regulated_claim|brand_creative|personal_data|flagged> <role>`
- `why T12` · `why D5` · `why decision 17`: the decisions behind it, in plain words · `decisions [T12]`: the log
- admins: `policy`: the rules agents work under · `policy load <rules as JSON>` (YAML files: `cos policy load`)

`help <command>` shows one command. With an Anthropic key configured you can also just write what you want."""

WELCOME_TEXT = "Hi, I'm your chief of staff. Type `help` to see what I can do."
EMPTY_MESSAGE = "I didn't get any text. Type `help` to see what I can do."
BUSY = "Working on it…"
LLM_UNAVAILABLE = (
    "I couldn't reach the language model just now ({reason}), so I read your message as a command instead."
)
LLM_NOT_UNDERSTOOD = "I couldn't turn that into a plan operation. Type `help` for the commands I understand."
FAILED = "Sorry, something went wrong on my side while doing that. Nothing was changed. Please try again."
STALE_CARD = "This task changed since the card was sent; here it is as it is now."
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


def unknown_command(word: str, suggestion: str | None) -> str:
    hint = f" Did you mean `{suggestion}`?" if suggestion else ""
    return f"I don't know the command {inline_code(word)}.{hint} Type `help` to see what I understand."


def usage_of(usage: Sequence[str]) -> str:
    return "\n".join(f"`{line}`" for line in usage)


def refused(reason: str, usage: Sequence[str]) -> str:
    return f"{reason}\n\nUsage:\n{usage_of(usage)}" if usage else reason


def missing(name: str) -> str:
    return f"I need the {name.replace('_', ' ')}."


def no_plan_yet(tier: Tier | None) -> str:
    if tier is Tier.TACTICAL:
        return "There is no tactical plan yet: add one with `tactical <title> from <date> to <date>`."
    if tier is Tier.WEEKLY:
        return "There is no weekly plan yet: derive one with `week`."
    return "There is no plan yet: start with `new plan <north star> from <date> to <date> kpi <name> <target>`."


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
        f"({plan.window.start.isoformat()} to {plan.window.end.isoformat()})."
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
DECISIONS_HINT = "Ask `why decision <number>` to have one explained."


def no_decisions_about(what: str) -> str:
    return f"I have no decision logged about {literal(excerpt(what))}."


def decision_explained(seq: int, explanation: str) -> str:
    return markdown("**Decision {}.** {}", seq, explanation)


def decision_line(*, seq: int, when: str, actor: str, verdict: str, subject: str, rationale: str) -> Markdown:
    reason = rationale if len(rationale) <= 140 else rationale[:139] + "…"
    line = markdown("#{} · {} · {}: {} · {}", seq, when, actor, verdict, subject)
    return Markdown(line + (markdown(" · {}", reason) if reason else ""))


NO_POLICY = (
    "No policy rules are loaded: agents act on their own, except where a person must approve (strategy, audiences, "
    "budget, regulated claims, brand-critical creative, personal data). Load rules with `policy load <JSON>`, or "
    "`cos policy load rules.yaml --tenant <tenant id>` from a shell."
)


def policy_summary(version: int, rules: int, loaded_by: str, when: str) -> Markdown:
    return markdown(
        "Version {}: {} rule(s), loaded by {} on {}. The strictest matching rule wins.", version, rules, loaded_by, when
    )


def more_rules(count: int) -> str:
    return f"…and {count} more: `cos policy show --tenant <tenant id>` prints them all."


def policy_loaded(version: int, rules: int) -> str:
    return f"Policy version {version} is in force: {rules} rule(s). Every agent's next action is checked against it."


def operation_stopped(operation: str, reasons: str) -> str:
    return f"I won't do that ({operation.replace('_', ' ')}): {literal(reasons)}."


def operation_held(reasons: str, approval: str) -> str:
    return f"That needs approval first ({literal(reasons)}): I asked for it as {approval}."


def operation_unapprovable(reasons: str, problem: str) -> str:
    return f"That needs a person's approval first ({literal(reasons)}), but {literal_prose(problem)}"


def approved_and_run(approval: str, outcome: str) -> str:
    return f"{approval} was approved, and what it held has now run: {outcome}"


def nothing_to_change() -> str:
    return "What should change? `set target SQLs 600`, or `edit master north star <text>` (or from/to/constraint)."


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


HELD_MESSAGE_RELEASED = "The message goes out at the next delivery, within a minute."
HELD_MESSAGE_GONE = "That message was released already."
