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
from planner.domain.decisions import CheckpointUnreadable, DecisionNotFound, NoDecisionKeys
from planner.domain.delegations import (
    AdapterBroke,
    AgentDeclined,
    DelegationGaveUp,
    DelegationNotFound,
    DelegationNotRetryable,
    DelegationStatus,
    StoppedMidCall,
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
        CheckpointInvalid(Path("checkpoints.json"), "its signature does not match"),
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
        CheckpointUnreadable("its signature does not match"),
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
            "The due date of task 12 (2026-05-01 to 2026-05-01) ends 2026-05-01, after tactical plan 2 ends "
            "2026-04-30. Choose dates between 2026-03-01 and 2026-04-30.",
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
            "spend date: '2026-05-02' is not valid; expected a day inside P3's window, 2026-04-01 to 2026-04-30.",
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
    said = describe_plain(InvalidValue("field", "x", expected, **dict.fromkeys(expected.details, 987)))
    assert said.startswith("field: 'x' is not valid; expected ")
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
    assert "`agent:<adapter>`" in describe(InvalidValue("requester", " ", Expected.REQUESTER))


@pytest.mark.parametrize("code", list(ProblemCode), ids=lambda code: code.name)
def test_every_kind_of_problem_is_worded_from_exactly_its_details(code: ProblemCode) -> None:
    fields = template_fields(PROBLEMS[code])
    assert fields - {"hint"} <= set(code.details)
    unused = set(code.details) - fields
    assert unused <= ({"known", *HINT_SOURCES} if "hint" in fields else set())
    said = describe_problem(Problem(code, "rules[0].x", **dict.fromkeys(code.details, 987)))
    assert said.startswith("rules[0].x: ")
    assert said.count("987") == len(code.details) - len(unused)
