"""The words a person reads when the planner, an agent or the vault refuses: bot/text/errors.py."""

from __future__ import annotations

import importlib
import pkgutil
import string
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

import planner
from bot.cards.markdown import WORD_JOINER, literal_prose
from bot.text.errors import EXPECTED, FIELDS, SAID, describe, describe_plain, rendered_classes
from bot.text.problems import HINT_SOURCES, PROBLEMS, describe_problem, template_fields
from planner.domain.approvals import (
    AlreadyDecided,
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalStatus,
    NoApprovers,
    NotAnApprover,
    NotAPerson,
    NotAuthenticated,
    SelfApproval,
    UnknownGateCategory,
)
from planner.domain.budgets import (
    BudgetBelowAllocations,
    CurrencyMismatch,
    InvalidSpendEvent,
    NoBudget,
    NotEnoughAllocated,
    OverAllocated,
)
from planner.domain.context import ContextSourceExists, ContextSourceNotFound, ReplayedContextEvent, StaleContextEvent
from planner.domain.decisions import CheckpointFlaw, CheckpointUnreadable, DecisionNotFound, NoDecisionKeys
from planner.domain.delegations import (
    AdapterBroke,
    AgentDeclined,
    DelegationGaveUp,
    DelegationNotFound,
    DelegationNotRetryable,
    DelegationStatus,
    StoppedMidCall,
    TaskDoneFirst,
)
from planner.domain.drafts import DraftAlreadyDecided, DraftNotFound
from planner.domain.errors import (
    Dated,
    Expected,
    Field,
    InvalidValue,
    InvalidWindow,
    MetricNotFound,
    NothingToUndo,
    PlannerError,
    PlanNotFound,
    StaleEdit,
    StaleUndo,
    TaskNotFound,
    TenantMismatch,
    UndoNeedsLeader,
    WindowConflict,
)
from planner.domain.ingestion import UnitMismatch
from planner.domain.model import Direction, Metric
from planner.domain.policy import PolicyInvalid
from planner.domain.problems import Problem, ProblemCode
from planner.governance.gated_agent import DelegationHeld, DelegationStopped, StopCause
from planner.ports import (
    AgentError,
    AgentNotReached,
    AgentTimeout,
    AgentUnavailable,
    QuestionCancelled,
    RehearsalUnsupported,
    SamplingDeclined,
    UnknownCapability,
)
from planner.services.budgets import ReplayedSpendEvent, StaleSpendEvent
from planner.services.decisions import CheckpointInvalid, CheckpointRefused
from planner.services.ingestion import FeedNotFound, ReplayedMetricEvent, StaleMetricEvent
from planner.services.playbooks import PlaybookNotFound
from planner.services.registry import AdapterDisabled, AdapterExists, AdapterNotFound, UnknownAdapterKind
from planner.services.tools import InputInvalid, ToolHeld
from planner.store.vault import BadSecretKey, NoSecretKey, UndecryptableSecret, VaultError

_ADVICE = (
    "List the plans",
    "Show the plan",
    "Show the task",
    "Known ",
    "Did you mean",
    "Choose ",
    "Reload it",
    "try again",
    "Type `",
    "An admin",
    "press Approve",
    "Give every event",
    "Send events",
    "rotate its secret",
    "lists them",
    "lists the latest",
    "Move it aside",
    "Run `",
    "set COS_SECRET_KEYS",
    "send it in",
    "wait for its answer",
    "has to ask again",
    "nothing more to do",
)
"""What a person is told to do: the bot's words, never in a planner error's own message."""


def _planner_error_classes() -> set[type[BaseException]]:
    for module in pkgutil.walk_packages(planner.__path__, "planner."):
        importlib.import_module(module.name)
    found: set[type[BaseException]] = set()
    pending: list[type[BaseException]] = [PlannerError, AgentError, VaultError]
    while pending:
        cls = pending.pop()
        if cls.__module__.startswith("planner.") and cls not in found:
            found.add(cls)
            pending.extend(cls.__subclasses__())
    return found


def test_every_planner_error_class_has_words_of_its_own_in_bot_text() -> None:
    missing = {f"{cls.__module__}.{cls.__qualname__}" for cls in _planner_error_classes() - rendered_classes()}
    assert not missing, f"no renderer in bot/text/errors.py for {sorted(missing)}: a person would read developer text"


_DUE = Dated(kind="due date", ref=12)
_TACTICAL_2 = Dated(kind="plan", tier="tactical", ref=2)
_APRIL_1, _APRIL_30 = date(2026, 4, 1), date(2026, 4, 30)


def _metric(name: str, unit: str) -> Metric:
    return Metric(
        id=1, tenant_id="t1", plan_id=2, name=name, unit=unit, direction=Direction.UP, baseline=0, target=5, tolerance=0
    )


def _one_of_each() -> list[BaseException]:
    metric = _metric("SQLs", "")
    when = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    return [
        PlanNotFound(4, "tactical"),
        TaskNotFound(12),
        TaskDoneFirst(5, 12),
        NothingToUndo(12, 10),
        StaleUndo("plan", 2, None),
        UndoNeedsLeader(1),
        MetricNotFound("SQL", 2, ("SQLs", "MQLs")),
        WindowConflict(_DUE, date(2026, 5, 1), date(2026, 5, 1), _TACTICAL_2, date(2026, 3, 1), date(2026, 4, 30)),
        InvalidWindow(date(2026, 5, 1), date(2026, 4, 1)),
        InvalidValue(Field.TIME, "25:00", Expected.TIME_OF_DAY),
        TenantMismatch("a", "b"),
        StaleEdit("Task", 12, 3, 4),
        ApprovalNotFound(3),
        NoApprovers(["legal"]),
        UnknownGateCategory("budgte"),
        NotAuthenticated(3, "llm"),
        NotAPerson(3, "llm"),
        SelfApproval(3, "u1"),
        NotAnApprover(3, "u2", ["legal"]),
        ApprovalExpired(3, "u2", when),
        AlreadyDecided(3, "u2", ApprovalStatus.RESUMED, "u3"),
        StaleContextEvent(["e1"], when),
        StaleMetricEvent(["e1"], when),
        ReplayedContextEvent("crm", ["e1"]),
        ReplayedMetricEvent("crm", ["e1"]),
        ContextSourceNotFound("cmr", ["crm", "helpdesk"]),
        ContextSourceExists("crm"),
        DecisionNotFound(17),
        NoDecisionKeys("t1"),
        CheckpointInvalid(Path("checkpoints.json"), CheckpointFlaw.SIGNATURE_FAILS),
        CheckpointRefused(Path("checkpoints.json"), [Problem(ProblemCode.LOG_SHORTER, "t1", end=2, reached=3)]),
        DelegationNotFound(5),
        DelegationGaveUp(5, 5, "connection refused"),
        StoppedMidCall(),
        AgentDeclined(DelegationStatus.FAILED, None),
        AdapterBroke("mcp", KeyError("session")),
        DelegationNotRetryable(5, DelegationStatus.RUNNING, "retried"),
        DraftNotFound(3),
        DraftAlreadyDecided(3, "saved"),
        UnitMismatch(metric, "EUR"),
        PolicyInvalid([Problem(ProblemCode.EFFECT, "rules[1].effect", value="alow", known=("allow", "forbid"))]),
        FeedNotFound(7),
        PlaybookNotFound("webinar", ["launch"]),
        UnknownAdapterKind("mpc", ["browser", "mcp"]),
        AdapterNotFound("hubspt", ["adobe", "hubspot"]),
        AdapterExists("hubspot", "mcp"),
        AdapterDisabled("hubspot"),
        NoSecretKey(),
        BadSecretKey(2),
        OverAllocated(master_id=1, plan_id=3, asked=6_000_000, headroom=5_000_000, currency="USD"),
        BudgetBelowAllocations(master_id=1, asked=100, allocated=200, currency="USD"),
        NoBudget(2, 1),
        CurrencyMismatch(plan_id=2, given="EUR", expected="USD"),
        NotEnoughAllocated(plan_id=2, asked=300, allocated=200, currency="USD"),
        InvalidSpendEvent([Problem(ProblemCode.POSITIVE_AMOUNT, "event.amount")]),
        StaleSpendEvent(["s1"], when, sent="sent_at"),
        ReplayedSpendEvent("finance", ["s1"]),
        AgentUnavailable("hubspot", "connection refused"),
        AgentNotReached("hubspot", "connection refused"),
        AgentTimeout("hubspot", 30),
        QuestionCancelled("browser"),
        SamplingDeclined("sampling is off"),
        RehearsalUnsupported("hubspot", "mcp"),
        CheckpointUnreadable(CheckpointFlaw.KEY_NOT_CONFIGURED, key="0a1b2c3d4e5f6a7b"),
        DelegationHeld("a budget change needs finance", 4),
        UndecryptableSecret(),
    ]


@pytest.mark.parametrize("error", _one_of_each(), ids=lambda error: type(error).__name__)
def test_a_planner_errors_own_message_states_the_fact_and_leaves_advice_to_the_bot(error: BaseException) -> None:
    message = str(error)
    assert message
    assert not [advice for advice in _ADVICE if advice in message], message


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (PlanNotFound(4, "tactical"), "No tactical plan with id 4. List the plans to see their ids."),
        (PlanNotFound(4), "No plan with id 4. List the plans to see their ids."),
        (
            OverAllocated(master_id=1, plan_id=3, asked=6_000_000, headroom=5_000_050, currency="USD"),
            "Allocating $60,000 to P3 would take more than master plan P1's budget: $50,000.50 is left to "
            "allocate. Allocate at most that, lower another plan's allocation, or raise the budget.",
        ),
        (TaskNotFound(12), "No task with id 12. Show the plan to see its tasks' ids."),
        (TaskDoneFirst(5, 12), "Not run: its task T12 was done first, so it was no longer needed."),
        (
            NothingToUndo(None, 10),
            "There is nothing of yours from the last 10 minutes to undo: `undo` takes back your last edit of a task "
            "or plan, an archive or a deletion, only that soon. Make the change again instead.",
        ),
        (
            NothingToUndo(12, 10),
            "There is no deletion of task T12 from the last 10 minutes to undo; a deleted task can be brought back "
            "only that soon. Add it again instead.",
        ),
        (
            StaleUndo("task", 12, "aad-member"),
            "T12 has changed since your edit (someone else changed it), so undoing would overwrite that: nothing was "
            "undone. `why T12` shows what changed; edit it again if it still needs fixing.",
        ),
        (MetricNotFound("SQL", 2, ("MQLs", "SQLs")), "No metric 'SQL' on plan 2. Known metrics: MQLs, SQLs."),
        (
            WindowConflict(_DUE, date(2026, 5, 1), date(2026, 5, 1), _TACTICAL_2, date(2026, 3, 1), date(2026, 4, 30)),
            "The due date of task 12 (Fri 1 May 2026) ends Fri 1 May 2026, after tactical plan 2 ends "
            "Thu 30 Apr 2026. Choose dates within 1 Mar \u2013 30 Apr 2026.",
        ),
        (
            WindowConflict(
                Dated(kind="plan", tier="tactical"),
                date(2026, 12, 14),
                date(2027, 1, 15),
                Dated(kind="plan", tier="master", ref=1),
                date(2026, 12, 1),
                date(2026, 12, 31),
            ),
            "The tactical plan (14 Dec 2026 \u2013 15 Jan 2027) ends Fri 15 Jan 2027, after master plan 1 ends "
            "Thu 31 Dec 2026. Choose dates within 1 Dec \u2013 31 Dec 2026.",
        ),
        (
            InvalidWindow(date(2026, 5, 1), date(2026, 4, 1)),
            "The window ends Wed 1 Apr 2026, before it starts Fri 1 May 2026.",
        ),
        (
            InvalidValue(Field.SPEND_DATE, "2026-12-09", Expected.DAY_ON_OR_BEFORE, day=date(2026, 12, 7)),
            "spend date: '2026-12-09' is not valid; expected a day on or before Mon 7 Dec 2026.",
        ),
        (
            StaleEdit("Task", 12, 3, 4),
            "Task 12 changed while you were editing it (you had version 3, it is now at "
            "version 4). Reload it and try again.",
        ),
        (
            NoApprovers(["legal"]),
            "Nobody but the requester holds the legal approver role, so nobody could approve this. "
            "An admin assigns one with `approvers add legal <@person>`.",
        ),
        (AlreadyDecided(3, "u2", ApprovalStatus.RESUMED, "u3"), "A3 was already approved: nothing more to do."),
        (
            DelegationNotRetryable(5, DelegationStatus.SUCCEEDED, "retried"),
            "Delegation D5 cannot be retried: it succeeded already.",
        ),
        (
            UnknownAdapterKind("mpc", ["mcp", "browser"]),
            "There is no adapter kind 'mpc'. Did you mean 'mcp'? Known kinds: browser, mcp.",
        ),
        (
            AdapterNotFound("hubspot", []),
            "There is no adapter named 'hubspot'. No adapters are registered yet.",
        ),
        (
            ContextSourceNotFound("cmr", ["helpdesk", "crm"]),
            "There is no context source named 'cmr'. Did you mean 'crm'? Known sources: crm, helpdesk.",
        ),
        (
            UnitMismatch(_metric("Cost per lead", "%"), "EUR"),
            "Cost per lead is counted in %, not 'EUR': send it in %.",
        ),
        (
            PolicyInvalid(
                [
                    Problem(ProblemCode.DESCRIPTION, "rules[1].description"),
                    Problem(ProblemCode.EFFECT, "rules[2].effect", value="alow", known=("allow", "forbid")),
                ]
            ),
            "The rules were not loaded: 2 problem(s).\n- rules[1].description: missing: say why, in the words people "
            "will read\n- rules[2].effect: \"alow\" is not an effect (did you mean 'allow'?); use allow, forbid",
        ),
        (
            DelegationStopped(StopCause.NO_APPROVERS, ("budget",), problem=NoApprovers(["finance"])),
            "It needs a person's approval (budget), but nobody but the requester holds the finance approver role, "
            "so nobody could approve this. An admin assigns one with `approvers add finance <@person>`.",
        ),
        (AgentTimeout("hubspot", 30), "agent 'hubspot' is unavailable: no answer within 30 s"),
        (StoppedMidCall(), "the bot stopped while the agent had it: whether the agent did it is not known"),
        (AgentDeclined(DelegationStatus.FAILED, None), "the agent declined without saying why"),
        (AgentDeclined(DelegationStatus.FAILED, "no such list"), "no such list"),
        (
            AgentDeclined(DelegationStatus.RUNNING, None),
            "the agent answered with status 'running', which is not a result",
        ),
        (AdapterBroke("mcp", KeyError("session")), "the mcp adapter failed unexpectedly: KeyError: 'session'"),
        (
            DelegationGaveUp(5, 5, "connection refused"),
            "connection refused; gave up after 5 attempts (retry D5 to try again)",
        ),
        (
            UnknownCapability("hubspot", "draft", ["search", "create"]),
            "agent 'hubspot' cannot 'draft'; it can: create, search",
        ),
        (
            InvalidValue(Field.NUDGES, "lots", Expected.WHOLE_NUMBER_FROM, low=1, high=100),
            "nudges: 'lots' is not valid; expected a whole number from 1 to 100.",
        ),
        (
            InvalidValue(Field.CADENCE, "weekly", Expected.ONE_OF, choices=("monthly", "fortnightly", "quarterly")),
            "cadence: 'weekly' is not valid; expected one of monthly, fortnightly, quarterly.",
        ),
        (
            InvalidValue(
                Field.SPEND_DATE,
                "2026-05-02",
                Expected.DAY_IN_WINDOW,
                plan=3,
                start=date(2026, 4, 1),
                end=date(2026, 4, 30),
            ),
            "spend date: '2026-05-02' is not valid; expected a day inside P3's window, 1 Apr \u2013 30 Apr 2026.",
        ),
        (
            InvalidValue(Field.METRIC, "SQLs", Expected.PLAN_ID_TOO, plans=(1, 4)),
            "metric: 'SQLs' is not valid; expected the plan too, as in `in P1`: P1, P4 each have a KPI of that name.",
        ),
        (
            InvalidValue(Field.TARGET, 5, Expected.AT_LEAST_BASELINE, baseline=10.0, metric="SQLs"),
            "target of SQLs: 5 is not valid; expected at least the baseline 10 for a metric going up.",
        ),
        (
            InvalidValue(Field.TARGET, 1e6, Expected.AT_LEAST_BASELINE, baseline=1.5e6, metric="MQLs"),
            "target of MQLs: 1,000,000 is not valid; expected at least the baseline 1,500,000 for a metric going up.",
        ),
        (
            InvalidValue(Field.DATA_FIELD, True, Expected.FINITE_NUMBER, path="totals.sqls"),
            "field totals.sqls of the agent's data: True is not valid; expected a finite number.",
        ),
        (
            InvalidValue(Field.SPEND_TO_DATE, 4000, Expected.NO_LESS_THAN_RECORDED, path="spend", recorded=5000.5),
            "spend to date (spend of the agent's data): 4,000 is not valid; expected no less than the 5,000.50 "
            "recorded from it.",
        ),
        (
            InvalidValue(Field.AMOUNT, "2e13", Expected.AMOUNT_BELOW, most=10**13),
            "amount: '2e13' is not valid; expected an amount below 10,000,000,000,000.",
        ),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else "",
)
def test_a_person_reads_what_went_wrong_and_what_to_do(error: BaseException, said: str) -> None:
    assert describe_plain(error) == said


def test_a_name_someone_typed_is_shown_as_text_in_chat_and_as_typed_in_a_terminal() -> None:
    error = PlaybookNotFound("[launch](https://evil.example)", ["**webinar**"])

    assert describe_plain(error) == (
        "There is no playbook named '[launch](https://evil.example)'; saved playbooks: **webinar**."
    )
    said = describe(error)
    assert f"]{WORD_JOINER}(" in said
    assert "\\*\\*webinar\\*\\*" in said


def test_the_commands_the_bot_suggests_stay_commands_in_chat() -> None:
    said = describe(ApprovalNotFound(3))

    assert said == "No approval request with id A3. Type `approvals` to see the ones waiting for you."


def test_an_error_from_outside_the_planner_is_shown_as_it_says() -> None:
    assert describe_plain(ValueError("not a number")) == "not a number"
    assert describe(ValueError("a *starred* word")) == "a \\*starred\\* word"


@pytest.mark.parametrize("error", _one_of_each(), ids=lambda error: type(error).__name__)
def test_a_reply_in_chat_has_the_same_words_as_the_terminal(error: BaseException) -> None:
    assert describe(error) == literal_prose(describe_plain(error))


def test_every_error_said_by_a_template_is_said_with_its_fields_filled_in() -> None:
    said = {type(error): describe_plain(error) for error in _one_of_each()}
    assert set(SAID) <= set(said)
    assert [text for cls, text in said.items() if cls in SAID and ("{" in text or "}" in text)] == []


@pytest.mark.parametrize("expected", list(Expected), ids=lambda member: member.name)
def test_every_form_a_field_may_expect_is_worded_from_exactly_its_details(expected: Expected) -> None:
    template = EXPECTED[expected]
    fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    assert fields == set(expected.details)
    said = describe_plain(InvalidValue(Field.VALUE, "x", expected, **dict.fromkeys(expected.details, 987)))
    assert said.startswith("value: 'x' is not valid; expected ")
    assert said.count("987") == len(expected.details)


@pytest.mark.parametrize("field", list(Field), ids=lambda member: member.name)
def test_every_field_is_worded_from_exactly_its_details(field: Field) -> None:
    template = FIELDS[field]
    fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    assert fields == set(field.details)
    said = describe_plain(InvalidValue(field, "x", Expected.TEXT, **dict.fromkeys(field.details, "SQLs")))
    assert said.endswith(": 'x' is not valid; expected some text.")
    assert said.count("SQLs") == len(field.details)
    assert "_" not in said


def test_a_phrase_the_bot_suggests_stays_code_and_a_choice_stays_text_in_chat() -> None:
    kinds = ("*personal*", "group")
    said = describe(InvalidValue(Field.CONVERSATION_KIND, "[x](https://evil.example)", Expected.ONE_OF, choices=kinds))
    assert "\\*personal\\*" in said
    assert f"]{WORD_JOINER}(" in said
    assert "`agent:<adapter>`" in describe(InvalidValue(Field.REQUESTER, " ", Expected.REQUESTER))


@pytest.mark.parametrize("code", list(ProblemCode), ids=lambda code: code.name)
def test_every_kind_of_problem_is_worded_from_exactly_its_details(code: ProblemCode) -> None:
    fields = template_fields(PROBLEMS[code]) - {"s"}  # `{s}`: a plural's ending, from the limit
    assert fields - {"hint"} <= set(code.details)
    unused = set(code.details) - fields
    assert unused <= ({"known", *HINT_SOURCES} if "hint" in fields else set())
    said = describe_problem(Problem(code, "rules[0].x", **dict.fromkeys(code.details, 987)))
    assert said.startswith("rules[0].x: ")
    assert said.count("987") == len(code.details) - len(unused)


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            InvalidValue(Field.APPROVER, "agent:crm", Expected.PERSON_ID),
            "approver: 'agent:crm' is not valid; expected a person's user id (an agent or the bot cannot approve).",
        ),
        (
            InvalidValue(Field.REQUESTER, " ", Expected.REQUESTER),
            "requester: ' ' is not valid; expected who asks: a user id, `agent:<adapter>`, `llm` or `bot`.",
        ),
        (
            InvalidValue(Field.RESUME, {"x": 1}, Expected.JSON_OBJECT),
            "what to do once approved: {'x': 1} is not valid; expected an object of plain JSON values (text, numbers, "
            "lists…).",
        ),
        (
            InvalidValue(Field.ACTION_ATTRIBUTES, {"at": "?"}, Expected.JSON_OBJECT),
            "the action's attributes: {'at': '?'} is not valid; expected an object of plain JSON values (text, "
            "numbers, lists…).",
        ),
        (
            InvalidValue(Field.ADAPTER_CONFIG, "when", Expected.JSON_OBJECT),
            "adapter configuration: 'when' is not valid; expected an object of plain JSON values (text, numbers, "
            "lists…).",
        ),
        (
            InvalidValue(Field.DECISION_KEYS, "none", Expected.SOME_KEY),
            "decision log keys: 'none' is not valid; expected at least one key.",
        ),
        (
            InvalidValue(Field.DECISION_DATA, '{"a":…', Expected.JSON_AT_MOST_BYTES, limit=65536),
            "the data of a decision: '{\"a\":…' is not valid; expected at most 65,536 bytes of JSON: keep references.",
        ),
        (
            InvalidValue(Field.DECISION_ACTOR, "", Expected.TEXT_AT_MOST, limit=200),
            "who decided: '' is not valid; expected some text of at most 200 characters.",
        ),
        (
            InvalidValue(Field.DECISION_ACTION, "", Expected.TEXT_AT_MOST, limit=100),
            "what was decided: '' is not valid; expected some text of at most 100 characters.",
        ),
        (
            InvalidValue(Field.DECISION_SUBJECT, " ", Expected.TEXT_AT_MOST, limit=200),
            "what a decision is about: ' ' is not valid; expected some text of at most 200 characters.",
        ),
        (
            InvalidValue(Field.DECISION_VERDICT, "", Expected.TEXT_AT_MOST, limit=32),
            "a decision's verdict: '' is not valid; expected some text of at most 32 characters.",
        ),
        (
            InvalidValue(Field.DECISION_TIME, "2026-01-05 09:00", Expected.TIME_WITH_ZONE),
            "when a decision was made: '2026-01-05 09:00' is not valid; expected a time with its time zone.",
        ),
    ],
    ids=lambda value: value.field.name if isinstance(value, InvalidValue) else "",
)
def test_the_fields_of_approval_requests_and_decisions_are_named_in_words(error: InvalidValue, said: str) -> None:
    assert describe_plain(error) == said


def _input(code: ProblemCode, path: str = "input.percent", **details: object) -> InputInvalid:
    return InputInvalid("vendor", "offer_discount", Problem(code, path, **details))


_DOES_NOT_FIT = "The input for vendor's offer_discount does not fit what the tool takes: "
_SHOWS = " `adapter tools vendor` shows what each tool takes."


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (_input(ProblemCode.MISSING), "input.percent: missing."),
        (
            _input(ProblemCode.NOT_A_FIELD, "input.percnt", name="percnt", known=("account", "percent")),
            "input.percnt: not a field here (did you mean 'percent'?); fields: account, percent.",
        ),
        (_input(ProblemCode.FIELD_NOT_TAKEN, "input.note"), "input.note: not a field the tool takes."),
        (
            _input(ProblemCode.NOT_OF_TYPE, value="ten", types=("number",)),
            'input.percent: expected a number, not "ten".',
        ),
        (
            _input(ProblemCode.NOT_OF_TYPE, value=2.5, types=("integer", "null")),
            "input.percent: expected a whole number or null, not 2.5.",
        ),
        (
            _input(ProblemCode.NOT_OF_TYPE, value=[1], types=("string", "boolean", "object", "array")),
            "input.percent: expected text or true or false or an object or a list, not [1].",
        ),
        (
            _input(ProblemCode.NOT_ONE_OF, "input.channel", value="emial", known=("email", "sms")),
            "input.channel: \"emial\" is not one of the choices (did you mean 'email'?); choose email, sms.",
        ),
        (
            _input(ProblemCode.NOT_CONSTANT, "input.plan", value="gold", expected="basic"),
            'input.plan: expected "basic", not "gold".',
        ),
        (
            _input(ProblemCode.BELOW_MINIMUM, value=-1, limit=0),
            "input.percent: -1 is below the minimum, 0.",
        ),
        (
            _input(ProblemCode.ABOVE_MAXIMUM, value=25000, limit=10000),
            "input.percent: 25000 is above the maximum, 10,000.",
        ),
        (_input(ProblemCode.NOT_ABOVE, value=0, limit=0), "input.percent: expected more than 0, not 0."),
        (_input(ProblemCode.NOT_BELOW, value=100, limit=100), "input.percent: expected less than 100, not 100."),
        (_input(ProblemCode.NOT_A_MULTIPLE, value=7, limit=5), "input.percent: 7 is not a multiple of 5."),
        (_input(ProblemCode.TEXT_AT_LEAST, "input.account", limit=1), "input.account: at least 1 character."),
        (_input(ProblemCode.TEXT_AT_LEAST, "input.account", limit=3), "input.account: at least 3 characters."),
        (_input(ProblemCode.TEXT_AT_MOST, "input.account", limit=40), "input.account: at most 40 characters."),
        (
            _input(ProblemCode.PATTERN, "input.region", value="eu-west", pattern="^[A-Z]{2}$"),
            'input.region: "eu-west" does not match the pattern ^[A-Z]{2}$.',
        ),
        (
            _input(ProblemCode.FORMAT, "input.day", value="someday", format="date"),
            'input.day: "someday" is not in the date format.',
        ),
        (
            _input(ProblemCode.ITEMS_AT_LEAST, "input.tags", limit=1),
            "input.tags: expected a list of at least 1 item.",
        ),
        (
            _input(ProblemCode.ITEMS_AT_MOST, "input.tags", limit=3),
            "input.tags: expected a list of at most 3 items.",
        ),
        (_input(ProblemCode.ITEMS_REPEAT, "input.tags"), "input.tags: expected a list whose items all differ."),
        (
            _input(ProblemCode.SCHEMA_SAYS, keyword="not", message="3 should not be valid under {'type': 'integer'}"),
            "input.percent: 3 should not be valid under {'type': 'integer'} (the schema's not).",
        ),
    ],
    ids=lambda value: value.problem.code.name if isinstance(value, InputInvalid) else "",
)
def test_a_delegation_s_input_its_tool_refuses_is_named_with_what_the_schema_asks(
    error: InputInvalid, said: str
) -> None:
    assert describe_plain(error) == _DOES_NOT_FIT + said + _SHOWS


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            _input(
                ProblemCode.SCHEMA_UNREADABLE,
                "inputSchema",
                reason="'objet' is not valid under any of the schemas",
            ),
            "vendor's tool offer_discount cannot be called: the server's input schema for the tool cannot be read "
            "('objet' is not valid under any of the schemas). Its server has to fix the tool's definition.",
        ),
        (
            _input(ProblemCode.SCHEMA_UNUSABLE, "inputSchema", reason="Unresolvable: https://schemas.example/a.json"),
            "vendor's tool offer_discount cannot be called: the server's input schema for the tool cannot be used "
            "(Unresolvable: https://schemas.example/a.json). Its server has to fix the tool's definition.",
        ),
    ],
    ids=["unreadable", "unusable"],
)
def test_a_tool_whose_schema_is_broken_is_named_as_the_server_s_problem(error: InputInvalid, said: str) -> None:
    assert describe_plain(error) == said


def test_a_long_value_a_schema_refused_is_cut_short() -> None:
    said = describe_plain(_input(ProblemCode.NOT_OF_TYPE, value="x" * 500, types=("number",)))
    assert said.endswith('input.percent: expected a number, not "' + "x" * 78 + "…." + _SHOWS)


def test_a_checkpoint_that_cannot_be_trusted_says_why_and_what_to_do() -> None:
    flaw = CheckpointFlaw.KEY_NOT_CONFIGURED
    assert describe_plain(CheckpointInvalid(Path("checkpoints.json"), flaw, key="0a1b2c3d4e5f6a7b")) == (
        "The decision log checkpoint checkpoints.json cannot be trusted: it was signed with key 0a1b2c3d4e5f6a7b, "
        "which is not configured. Move it aside as evidence (do not delete it), run `cos decisions verify "
        "--checkpoints FILE` with a copy you trust if you keep one, then `cos decisions checkpoint` to start a new one."
    )
    assert describe_plain(CheckpointUnreadable(CheckpointFlaw.SIGNATURE_FAILS)) == (
        "The decision log checkpoint cannot be trusted: its signature does not match its content: it was edited."
    )


@pytest.mark.parametrize("stored", ["description, inputSchema", "changed: description, inputSchema"])
def test_a_held_tool_names_the_fields_its_server_changed(stored: str) -> None:
    assert describe_plain(ToolHeld("vendor", "draft_email", stored)) == (
        "vendor's tool 'draft_email' is held: its server changed its definition since an admin enabled it (changed: "
        "description, inputSchema). An admin reads it again (`adapter tools vendor`) and enables it if it is still "
        "wanted (`adapter enable vendor draft_email`)."
    )
