"""What the outbox carries: the kinds of proactive messages, a message to queue, a claimed one, a dead letter, and
the states a stored message moves through (pending, sending, then sent, held or dead)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

PENDING, SENDING, SENT, DEAD, HELD = "pending", "sending", "sent", "dead", "held"
FOLDED = "folded"
"""Delivered inside another message of the same pass to the same person (one summary card for several)."""
DROPPED = "dropped"
"""Not sent, as no longer needed when its turn came (the approval it asked for was decided meanwhile): it counts
against nobody's day."""
APPROVED = "approved"
"""The payload key a held message gets when its approval let it through: the gate asked once, a person said yes."""


class MessageKind(StrEnum):
    """What an outbox message is, which decides how it is written when it is sent (`bot.nudges.COMPOSERS` has one
    composer per kind). The values are stored in the outbox table: never change one, only add."""

    DEADLINE_APPROACHING = "deadline_approaching"
    """To a task's owner, `approaching_days` before it is due."""
    DEADLINE_SLIPPED = "deadline_slipped"
    """To a task's owner, once it is past due and still open."""
    ESCALATION = "escalation"
    """To the plan's owner, when a slipped task's owner left the reminder unanswered for `escalate_after`."""
    MILESTONE_COMPLETED = "milestone_completed"
    """To the master plan's owner, when someone else finished a milestone."""
    METRIC_DRIFT = "metric_drift"
    """To a plan's owner, when a metric falls behind its pace to target (in the hourly sweep)."""
    PLAN_HEALTH = "plan_health"
    """To a plan's owner (and its master's), when the plan's health changes (in the hourly sweep)."""
    WEEK_PLAN = "week_plan"
    """To each member on Monday morning: their week; dropped when nothing is due that week."""
    WEEK_SUMMARY = "week_summary"
    """To each channel the bot is in on Monday morning: the week's plans and what is due."""
    WEEK_REVIEW = "week_review"
    """To each member on Friday afternoon: what is still open this week; dropped when nothing is."""
    DIGEST = "digest"
    """To each leader on Friday afternoon: their master plans' week, figures and recommendations."""
    DELEGATION_RESULT = "delegation_result"
    """To a task's owner (or who delegated it): how its delegation ended."""
    DELEGATION_DEFERRED = "delegation_deferred"
    """To a task's owner: its delegation waits for an agent that is down."""
    DELEGATION_HELD = "delegation_held"
    """To a task's owner: its delegation waits for an approval; dropped once decided (the result follows)."""
    DELEGATION_UNKNOWN = "delegation_unknown"
    """To a task's owner: the agent may or may not have done it, so a person retries or cancels it."""
    DELEGATION_OVERDUE = "delegation_overdue"
    """To a task's owner, instead of a slip nudge: its delegation produced nothing by the due date."""
    APPROVAL_REQUEST = "approval_request"
    """To each approver: the approval card; dropped when decided or expired before it went out."""
    APPROVAL_DECIDED = "approval_decided"
    """To the person who asked: the outcome (approved, rejected, expired)."""
    RETROSPECTIVE = "retrospective"
    """To a tactical plan's owner and its master plan's owner, once the plan has ended."""
    QUESTION = "question"
    """To the person a delegation acts for: an agent's question (a 2FA code), `payload.text`, answered by reply."""
    NOTICE = "notice"
    """To one person: a plain message (`payload.text`), such as how an approved action went."""
    SIGN_IN = "sign_in"
    """To the person a delegation acts for: a card whose button opens a vendor's sign-in page (through the bot's
    link to the sign-in `payload.sign_in`), for an agent that acts as them (`payload.agent`), within
    `payload.minutes`."""
    SIGN_IN_ENDED = "sign_in_ended"
    """To the same person once that sign-in ended (`payload.outcome`: signed in, refused, expired): the sign-in card
    updated in place, without its button (`payload.card`: where it lies); a short message when it lies nowhere
    known."""

    @classmethod
    def of(cls, stored: str) -> MessageKind | str:
        """The kind a stored row names; the text itself when this release has no such kind (a message queued by
        a newer release), which sending then refuses as undeliverable instead of failing the whole claim."""
        try:
            return cls(stored)
        except ValueError:
            return stored


WAITED_FOR = frozenset(
    {
        MessageKind.QUESTION,
        MessageKind.APPROVAL_REQUEST,
        MessageKind.APPROVAL_DECIDED,
        MessageKind.NOTICE,
        MessageKind.SIGN_IN,
        MessageKind.SIGN_IN_ENDED,
    }
)
"""Kinds someone is waiting for (an agent's question, an approval to give, how their own request went): they go as
they are, never folded into a summary or put off to the next day, though they count against the day's budget."""


@dataclass(frozen=True, kw_only=True)
class Message:
    """A message to write: to whom (a user id or a conversation id), what kind, and what (JSON).

    Raises ValueError when `kind` is not a MessageKind: nothing could write such a message later.
    """

    recipient: str
    kind: MessageKind
    payload: dict[str, Any] = field(default_factory=dict)
    not_before: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", MessageKind(self.kind))


@dataclass(frozen=True, kw_only=True)
class Envelope:
    """A claimed outbox row."""

    id: int
    tenant_id: str
    firing_key: str
    recipient: str
    kind: MessageKind | str
    """A MessageKind, or the stored text when this release has none by that name (see `MessageKind.of`)."""
    payload: dict[str, Any]
    attempts: int
    lease_until: datetime


@dataclass(frozen=True, kw_only=True)
class DeadLetter:
    """A message given up on, as admins read it before replaying it."""

    id: int
    tenant_id: str
    recipient: str
    kind: str
    attempts: int
    last_error: str
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class OutboxEntry:
    """One outbox row as an operator reads it: to whom, what kind, from which firing, in what state."""

    id: int
    tenant_id: str
    firing_key: str
    recipient: str
    kind: str
    status: str
    not_before: datetime
