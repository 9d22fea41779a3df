"""Every kind of outbox message can be written when it is sent: one composer each, and each gives a message."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import insert

from bot.addressing import Undeliverable
from bot.artifacts import ArtifactLinks
from bot.nudges import COMPOSERS, compose
from bot.teams.channel import Address, Posted
from planner.domain.governance import Action, ActionKind, GateCategory
from planner.domain.messages import Message, MessageKind
from planner.domain.model import TaskChanges, TaskStatus, Window
from planner.services.approvals import Approvals
from planner.services.outbox import Outbox
from planner.services.plans import Plans
from planner.services.tenants import Tenants
from planner.store import Store
from planner.store.schema import delegations, outbox
from tests.bot.cards.test_cards import all_text, schema_errors
from tests.conftest import FakeClock

TENANT = "contoso"
LINKS = ArtifactLinks((b"a key the bot signs its links with",), base_url="https://cos.example")
FEB = Window(start=date(2026, 2, 1), end=date(2026, 2, 28))
WEEK = "2026-W07"
"""9 to 15 February: the slipped task is due in it."""


def test_every_message_kind_has_exactly_one_composer() -> None:
    assert all(isinstance(kind, MessageKind) for kind in COMPOSERS)
    assert sorted(COMPOSERS) == sorted(MessageKind)


def test_a_message_of_a_kind_nothing_could_write_is_refused_when_it_is_queued() -> None:
    with pytest.raises(ValueError, match="fax"):
        Message(recipient="aad-writer", kind="fax")  # type: ignore[arg-type]


async def seeded(store: Store, clock: FakeClock) -> dict[str, int]:
    """A master plan led by `aad-lead`, a tactical plan with a slipped task and a done milestone of `aad-writer`,
    a delegation held for approval, and an approval request waiting for `aad-approver`."""
    clock.now = datetime(2026, 2, 10, 9, tzinfo=UTC)
    tenant = Plans(store, TENANT)
    master = await tenant.create_master_plan(title="Q1 pipeline", owner="aad-lead", window=FEB, actor="aad-lead")
    tactical = await tenant.create_tactical_plan(master.id, title="Launch", owner="aad-lead", window=FEB, actor="x")
    slipped = await tenant.add_task(
        tactical.id, title="Draft launch email", due_on=date(2026, 2, 9), owner="aad-writer", actor="x"
    )
    launch = await tenant.add_task(
        tactical.id, title="Launch day", due_on=date(2026, 2, 10), owner="aad-writer", milestone=True, actor="x"
    )
    await tenant.update_task(launch.id, TaskChanges(status=TaskStatus.DONE), actor="aad-writer")
    async with store.transaction() as conn:
        delegation = (
            await conn.execute(
                insert(delegations)
                .values(
                    tenant_id=TENANT,
                    task_id=slipped.id,
                    adapter="hubspot",
                    adapter_kind="mcp",
                    capability="draft_email",
                    input={},
                    timeout_seconds=30.0,
                    actor="aad-writer",
                    status="held",
                    queued_at=clock.now,
                    attempts=0,
                )
                .returning(delegations.c.id)
            )
        ).scalar_one()
    approvals = Approvals(store, TENANT)
    await approvals.approvers.assign("finance", "aad-approver", actor="aad-admin")
    action = Action(
        tenant_id=TENANT,
        kind=ActionKind.DELEGATION,
        actor="aad-lead",
        agent="hubspot",
        name="shift_budget",
        subject=f"task:{slipped.id}",
        attributes={"amount": 20000},
        categories=(GateCategory.BUDGET,),
    )
    request = await approvals.request(
        action, requester="aad-lead", reason="it converts better", resume={"delegation": delegation}
    )
    return {
        "master": master.id,
        "tactical": tactical.id,
        "slipped": slipped.id,
        "launch": launch.id,
        "delegation": delegation,
        "approval": request.id,
    }


def one_of_each(ids: dict[str, int]) -> dict[MessageKind, tuple[str, dict[str, Any]]]:
    """A recipient and a payload for every kind, as the code that queues it writes them."""
    task = {"task": ids["slipped"], "title": "Draft launch email", "due_on": "2026-02-09"}
    delegation = {"delegation": ids["delegation"]}
    drift = {
        "metric": 1,
        "name": "Sign-ups",
        "plan": ids["master"],
        "plan_title": "Q1 pipeline",
        "unit": "",
        "actual": 10.0,
        "expected": 40.0,
        "target": 100.0,
        "health": "at risk",
        "reason": "30 behind pace",
    }
    health = {"plan": ids["master"], "title": "Q1 pipeline", "before": "on track", "after": "at risk", "reasons": []}
    return {
        MessageKind.DEADLINE_APPROACHING: ("aad-writer", task),
        MessageKind.DEADLINE_SLIPPED: ("aad-writer", task),
        MessageKind.ESCALATION: ("aad-lead", {**task, "owner": "aad-writer"}),
        MessageKind.MILESTONE_COMPLETED: ("aad-lead", {"task": ids["launch"], "title": "Launch day"}),
        MessageKind.METRIC_DRIFT: ("aad-lead", drift),
        MessageKind.PLAN_HEALTH: ("aad-lead", health),
        MessageKind.WEEK_PLAN: ("aad-writer", {"week": WEEK}),
        MessageKind.WEEK_SUMMARY: ("conversation:19:marketing@thread.tacv2", {"week": WEEK}),
        MessageKind.WEEK_REVIEW: ("aad-writer", {"week": WEEK}),
        MessageKind.DIGEST: ("aad-lead", {"week": WEEK}),
        MessageKind.DELEGATION_RESULT: ("aad-writer", delegation),
        MessageKind.DELEGATION_DEFERRED: ("aad-writer", delegation),
        MessageKind.DELEGATION_HELD: ("aad-writer", delegation),
        MessageKind.DELEGATION_UNKNOWN: ("aad-writer", delegation),
        MessageKind.DELEGATION_OVERDUE: ("aad-writer", {**delegation, "task": ids["slipped"], "due_on": "2026-02-09"}),
        MessageKind.APPROVAL_REQUEST: ("aad-approver", {"approval": ids["approval"]}),
        MessageKind.APPROVAL_DECIDED: ("aad-lead", {"approval": ids["approval"]}),
        MessageKind.RETROSPECTIVE: ("aad-lead", {"plan": ids["tactical"]}),
        MessageKind.QUESTION: ("aad-writer", {"question": 1, "text": "What is the code hubspot sent you?"}),
        MessageKind.NOTICE: ("aad-writer", {"text": "Your approved action ran."}),
        MessageKind.SIGN_IN: (
            "aad-writer",
            {"agent": "crm", "sign_in": 1, "minutes": 5},
        ),
        MessageKind.SIGN_IN_ENDED: ("aad-writer", {"agent": "crm", "outcome": "signed in", "sign_in": 1}),
    }


async def test_a_message_of_every_kind_is_written_as_text_a_person_reads(store: Store, clock: FakeClock) -> None:
    ids = await seeded(store, clock)
    messages = one_of_each(ids)
    assert set(messages) == set(MessageKind)
    queue = Outbox(store)
    for kind, (recipient, payload) in messages.items():
        assert await queue.fire(
            TENANT, f"every-kind:{kind}", [Message(recipient=recipient, kind=kind, payload=payload)]
        )
    claimed = [e for e in await queue.claim("sender", limit=100) if e.firing_key.startswith("every-kind:")]
    assert {envelope.kind for envelope in claimed} == set(MessageKind)
    for envelope in claimed:
        written = await compose(Tenants(store), envelope, artifact_links=LINKS)
        assert written is not None, f"a {envelope.kind} message was dropped"
        # A message of one card (one that is updated in place) says in its notification what it is.
        assert (written.text or written.summary or "").strip(), f"a {envelope.kind} message says nothing"
        if envelope.kind is MessageKind.DELEGATION_OVERDUE:  # the day its payload carries, as the cards write it
            assert "the task was due Mon 9 Feb." in (written.text or "")


async def test_a_stored_kind_this_release_cannot_write_is_undeliverable_not_a_failed_claim(
    store: Store, clock: FakeClock
) -> None:
    async with store.transaction() as conn:
        await conn.execute(
            insert(outbox).values(
                tenant_id=TENANT,
                firing_key="from-a-newer-release",
                recipient="aad-writer",
                kind="fax",
                payload={},
                status="pending",
                not_before=clock.now,
                attempts=0,
                created_at=clock.now,
            )
        )
    queue = Outbox(store)
    await queue.fire(TENANT, "k", [Message(recipient="aad-writer", kind=MessageKind.NOTICE, payload={"text": "hi"})])
    claimed = {envelope.kind: envelope for envelope in await queue.claim("sender")}
    assert set(claimed) == {"fax", MessageKind.NOTICE}
    with pytest.raises(Undeliverable, match="fax"):
        await compose(Tenants(store), claimed["fax"])
    assert await compose(Tenants(store), claimed[MessageKind.NOTICE]) is not None


async def test_a_sign_in_card_is_written_only_with_a_signed_link_to_the_bot_never_the_vendors_url(
    store: Store, clock: FakeClock
) -> None:
    queue = Outbox(store)
    payloads = {
        "sign-in:new": {"agent": "crm", "sign_in": 7, "minutes": 5},
        "sign-in:old": {"agent": "crm", "url": "https://login.example/authorize?state=s", "minutes": 5},
    }
    for key, payload in payloads.items():
        await queue.fire(TENANT, key, [Message(recipient="aad-writer", kind=MessageKind.SIGN_IN, payload=payload)])
    claimed = {envelope.firing_key: envelope for envelope in await queue.claim("sender", limit=10)}
    written = await compose(Tenants(store), claimed["sign-in:new"], artifact_links=LINKS)
    assert written is not None
    (button,) = written.cards[0]["actions"]
    assert button["url"].startswith("https://cos.example/api/oauth/start/7?expires=")
    with pytest.raises(Undeliverable, match="public URL and secret keys"):
        await compose(Tenants(store), claimed["sign-in:new"])  # no key to sign its link with
    with pytest.raises(Undeliverable):
        await compose(Tenants(store), claimed["sign-in:old"], artifact_links=LINKS)  # queued before: no id to link to


async def test_a_sign_in_that_ended_updates_its_card_without_the_button_or_says_so_in_a_line_when_it_cannot(
    store: Store, clock: FakeClock
) -> None:
    where = Posted(address=Address(service_url="https://smba.example", conversation_id="a:writer"), activity_id="a-7")
    queue = Outbox(store)
    payloads = {
        "signed-in": {"agent": "crm", "outcome": "signed in", "sign_in": 7, "card": where.stored()},
        "expired": {"agent": "crm", "outcome": "expired", "sign_in": 8, "card": where.stored()},
        "refused": {"agent": "crm", "outcome": "refused", "sign_in": 9, "card": where.stored()},
        "signed-in, no card": {"agent": "crm", "outcome": "signed in", "sign_in": 10},
        "expired, no card": {"agent": "crm", "outcome": "expired", "sign_in": 11},
    }
    for key, payload in payloads.items():
        message = Message(recipient="aad-writer", kind=MessageKind.SIGN_IN_ENDED, payload=payload)
        await queue.fire(TENANT, key, [message])
    claimed = {envelope.firing_key: envelope for envelope in await queue.claim("sender", limit=10)}
    written = {key: await compose(Tenants(store), envelope) for key, envelope in claimed.items()}

    signed_in = written["signed-in"]
    assert signed_in is not None
    assert signed_in.updates == where
    assert signed_in.text is None
    (card,) = signed_in.cards
    assert "actions" not in card  # no Sign in button any more
    assert all_text(card) == "Signed in to crm\nDone: crm works as you now. I'm carrying on with what you asked."
    assert schema_errors(card) == []
    expired, refused = written["expired"], written["refused"]
    assert expired is not None
    assert expired.updates == where
    assert "actions" not in expired.cards[0]
    assert all_text(expired.cards[0]).startswith("Sign-in to crm expired\nThe link was not used in time")
    assert refused is not None
    assert "actions" not in refused.cards[0]
    assert all_text(refused.cards[0]).startswith("Not signed in to crm\nThe sign-in was refused or cancelled")

    # Its card lies nowhere known (Teams gave it no id): a line once signed in; nothing when it did not happen.
    line = written["signed-in, no card"]
    assert line is not None
    assert line.cards == ()
    assert line.updates is None
    assert line.text == "You're signed in to crm. I'm carrying on with what you asked."
    assert written["expired, no card"] is None
