"""A customer's journey across systems, end to end: signed events from the web site, the shop and the help desk
change what the vendor agents may do next, a person decides what the rules flag, and the decision log says why.

Real peers: the bot's aiohttp app on loopback, the vendor agent served over MCP (streamable HTTP) as two adapters,
the fake Bot Connector for Teams. The events are signed with the sources' secrets as a connected system would.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.delegating import Delegator
from bot.http.app import create_app
from bot.http.context_events import PATH
from bot.sender import Sender
from bot.settings import Settings
from bot.teams.botbuilder import BotbuilderChannel, create_adapter
from bot.teams.handler import ChiefOfStaffBot
from planner.domain.delegations import Delegation, DelegationStatus
from planner.domain.model import Window
from planner.services.approvals import Approvals
from planner.services.context import ContextSources, sign
from planner.services.decisions import DecisionLog, verify
from planner.services.plans import Plans
from planner.store import Store
from planner.store.vault import Vault
from tests.adapters.operator import LIMITS
from tests.adapters.vendor_agent import serve_in_process
from tests.bot.cards.test_cards import all_text, schema_errors
from tests.bot.conftest import TENANT, Running, TeamsUser
from tests.bot.test_teams import find_action
from tests.conftest import FakeClock
from tests.fakes.connector import FakeConnector

KEY = Vault.generate_key()
CUSTOMER = "acme"
RENEWING = "globex"

RULES = {
    "rules": [
        {
            "id": "quiet-after-ticket",
            "description": "No outbound email while the customer has had a ticket open in the last 48 h",
            "effect": "forbid",
            "kinds": ["delegation"],
            "actions": ["send_email"],
            "when": {"fact": "ticket_opened", "within": "48h"},
        },
        {
            "id": "crm-discounts",
            "description": "The CRM agent may offer up to 15 % on its own",
            "effect": "allow",
            "agents": ["crm"],
            "actions": ["offer_discount"],
            "limits": {"percent": {"le": 15}},
        },
        {
            "id": "renewal-touch",
            "description": "A discount to an account in renewal waits for a person",
            "effect": "require",
            "actions": ["offer_discount"],
            "when": {"fact": "renewal_open"},
        },
    ]
}
FREEZE = {
    "rules": [
        *RULES["rules"],
        {
            "id": "launch-freeze",
            "description": "Launch week: no agent acts on its own",
            "effect": "forbid",
            "kinds": ["delegation"],
        },
    ]
}


@dataclass
class Journey:
    running: Running
    secret: str
    vendor_calls: list[str] = field(default_factory=list)
    next_event: int = 0

    @property
    def delegator(self) -> Delegator:
        assert self.running.bot.delegator is not None
        return self.running.bot.delegator

    async def event(self, source: str, type: str, account: str, **attributes: Any) -> int:
        """Post one signed event as the connected system `source` would; the HTTP status."""
        self.next_event += 1
        clock = self.running.store.clock()
        body = {
            "id": f"{source}-{self.next_event}",
            "type": type,
            "account": account,
            "at": clock.isoformat(),
            "attributes": attributes,
        }
        raw = json.dumps(body).encode()
        headers = {
            "Content-Type": "application/json",
            "X-COS-Source": "journey",
            "X-COS-Tenant": TENANT,
            "X-COS-Signature": sign(self.secret, raw),
        }
        async with self.running.session.post(self.running.server.make_url(PATH), data=raw, headers=headers) as answer:
            await answer.read()
            return answer.status

    async def people(self) -> tuple[TeamsUser, TeamsUser]:
        """The leader, and an approver who has talked to the bot once (so their chat is known)."""
        approver = TeamsUser(
            self.running, user_id="aad-approver", name="Approver", conversation_id="a:personal-approver"
        )
        await approver.ask("help")
        return TeamsUser(self.running), approver

    async def delegate(self, lead: TeamsUser, task_id: int, adapter: str, capability: str, **input: Any) -> Delegation:
        await lead.ask(f"adapter enable {adapter} {capability}")  # an admin enables the tools the journey uses
        await lead.ask(f"delegate T{task_id} to {adapter} {capability} {json.dumps(input)}")
        await self.running.bot.drain()
        await self.delegator.drain()
        [delegation] = await self.delegator.delegations(TENANT).of_task(task_id)
        return delegation


@pytest.fixture
async def journey(store: Store, connector: FakeConnector, clock: FakeClock) -> AsyncIterator[Journey]:
    clock.now = datetime(2026, 3, 2, 10, tzinfo=UTC)
    settings = Settings.from_env({"COS_SECRET_KEYS": KEY, "COS_APPROVAL_EXPIRY_HOURS": "24", "COS_ADMINS": "aad-lead"})
    adapter = create_adapter(settings)
    sender = Sender(store, BotbuilderChannel(adapter), worker="journey")
    delegator = Delegator(
        store, Vault([KEY]), deliver_now=sender.deliver, approval_expiry=settings.approval_expiry, limits=LIMITS
    )
    bot = ChiefOfStaffBot(store, settings, clock=clock, delegator=delegator)
    bot.adapter = adapter
    server = TestServer(create_app(store, adapter, bot, settings), host="127.0.0.1")
    await server.start_server()
    running = Running(store, bot, server, connector, aiohttp.ClientSession())
    secret = await ContextSources(store, TENANT, Vault([KEY])).add("journey", actor="aad-lead")
    yield Journey(running, secret)
    await bot.drain()
    await delegator.close()
    await running.session.close()
    await server.close()


async def tasks(store: Store, count: int) -> list[int]:
    tenant = Plans(store, TENANT)
    window = Window(start=date(2026, 3, 1), end=date(2026, 3, 31))
    master = await tenant.create_master_plan(title="Q1 revenue", owner="aad-lead", window=window, actor="aad-lead")
    tactical = await tenant.create_tactical_plan(
        master.id, title="Customer care", owner="aad-lead", window=window, actor="aad-lead"
    )
    created = [
        await tenant.add_task(
            tactical.id, title=f"Step {n}", due_on=date(2026, 3, 20), owner="aad-lead", actor="aad-lead"
        )
        for n in range(1, count + 1)
    ]
    return [task.id for task in created]


async def test_a_customer_journey_changes_what_every_agent_may_do_and_the_log_says_why(
    journey: Journey, clock: FakeClock
) -> None:
    running = journey.running
    lead, approver = await journey.people()
    t_welcome, t_follow_up, t_discount, t_after_ticket, t_mail_frozen, t_crm_frozen = await tasks(running.store, 6)

    async with serve_in_process(announce=journey.vendor_calls.append) as url:
        config = json.dumps({"transport": "http", "url": url})
        for name in ("mailer", "crm"):
            [added] = await lead.ask(f"adapter add mcp {name} {config}")
            assert f"Adapter mcp:{name} registered" in added
        [roles] = await lead.ask("approvers add leader aad-approver")
        assert "aad-approver" in roles or "Approver" in roles
        [loaded] = await lead.ask(f"policy load {json.dumps(RULES)}")
        assert "Policy version 1 is in force: 3 rule(s)" in loaded

        # The customer visits the site, reads content and buys: nothing there holds the welcome email back.
        assert await journey.event("web", "page_visit", CUSTOMER, url="/pricing") == 202
        assert await journey.event("web", "content_read", CUSTOMER, title="ROI guide") == 202
        assert await journey.event("shop", "purchase", CUSTOMER, order="o-1", amount=12000) == 202
        welcome = await journey.delegate(
            lead, t_welcome, "mailer", "send_email", account=CUSTOMER, to="buyer@acme.example", subject="Welcome"
        )
        assert welcome.status is DelegationStatus.SUCCEEDED, welcome.error
        assert journey.vendor_calls == ["send_email acme: Welcome"]

        # Then they open a support ticket: the next outbound email is stopped, and never reaches the vendor.
        clock.advance(hours=2)
        assert await journey.event("helpdesk", "ticket_opened", CUSTOMER, ticket_id="HD-7", severity="high") == 202
        follow_up = await journey.delegate(
            lead, t_follow_up, "mailer", "send_email", account=CUSTOMER, to="buyer@acme.example", subject="Upsell"
        )
        assert follow_up.status is DelegationStatus.FAILED
        assert follow_up.error == (
            "Stopped by policy: No outbound email while the customer has had a ticket open in the last 48 h."
        )
        assert journey.vendor_calls == ["send_email acme: Welcome"]
        told = [s.body.get("text", "") for s in running.connector.sent if s.conversation_id == lead.conversation_id]
        assert any(f"T{t_follow_up} (D{follow_up.id}, mailer send_email) failed" in text for text in told)

        # Another account is in renewal: the CRM agent's discount, within its own limit, waits for a person.
        assert await journey.event("crm", "renewal_open", RENEWING, renewal_id="R-1", amount=90000) == 202
        before = len(running.connector.sent)
        discount = await journey.delegate(lead, t_discount, "crm", "offer_discount", account=RENEWING, percent=10)
        assert discount.status is DelegationStatus.HELD
        assert journey.vendor_calls == ["send_email acme: Welcome"]
        [card_message] = [s for s in running.connector.sent[before:] if s.conversation_id == approver.conversation_id]
        card = card_message.body["attachments"][0]["content"]
        assert "A discount to an account in renewal waits for a person" in all_text(card)
        told = [s.body.get("text", "") for s in running.connector.sent[before:]]
        assert any("waits for a person's approval before crm may act" in text for text in told)

        # The approver approves on the card, in Teams: the discount goes out, once.
        approve = find_action(card, "Approve")
        await approver.post(approver.activity(text=None, value=approve["data"], replyToId=card_message.activity_id))
        await running.bot.drain()
        await journey.delegator.drain()
        [discount] = await journey.delegator.delegations(TENANT).of_task(t_discount)
        assert discount.status is DelegationStatus.SUCCEEDED, discount.error
        assert journey.vendor_calls[-1] == "offer_discount globex: 10%"

        # The ticket is closed: email flows again.
        clock.advance(hours=1)
        assert await journey.event("helpdesk", "ticket_closed", CUSTOMER, ticket_id="HD-7") == 202
        after_ticket = await journey.delegate(
            lead, t_after_ticket, "mailer", "send_email", account=CUSTOMER, to="buyer@acme.example", subject="Fixed"
        )
        assert after_ticket.status is DelegationStatus.SUCCEEDED, after_ticket.error
        assert journey.vendor_calls[-1] == "send_email acme: Fixed"

        # One change of the rules, in one place, applies to every adapter's next action at once.
        [frozen] = await lead.ask(f"policy load {json.dumps(FREEZE)}")
        assert "Policy version 2 is in force: 4 rule(s)" in frozen
        calls_before = list(journey.vendor_calls)
        mail = await journey.delegate(lead, t_mail_frozen, "mailer", "draft_email", audience="CFOs", topic="launch")
        crm = await journey.delegate(lead, t_crm_frozen, "crm", "create_segment", name="CFOs", criteria="title CFO")
        for stopped in (mail, crm):
            assert (stopped.status, stopped.error) == (
                DelegationStatus.FAILED,
                "Stopped by policy: Launch week: no agent acts on its own.",
            )
        assert journey.vendor_calls == calls_before

    # Every step is in the decision log with its reason, and the chain is intact.
    log = DecisionLog(running.store, TENANT)
    steps = [(e.action, e.subject, e.rules, e.approval_id is not None) for e in await log.entries()]
    assert ("delegation.stop", f"delegation:{follow_up.id}", ("quiet-after-ticket",), False) in steps
    assert ("delegation.flag", f"delegation:{discount.id}", ("renewal-touch", "crm-discounts"), False) in steps
    assert ("delegation.go", f"delegation:{discount.id}", ("renewal-touch", "crm-discounts"), True) in steps
    assert ("delegation.stop", f"delegation:{mail.id}", ("launch-freeze",), False) in steps
    assert ("delegation.stop", f"delegation:{crm.id}", ("launch-freeze",), False) in steps
    assert not [s for s in steps if s[1] in (f"delegation:{welcome.id}", f"delegation:{after_ticket.id}")]
    [stop] = await log.about(f"delegation:{follow_up.id}")
    assert any(":ticket_opened:acme" in fact for fact in stop.data["facts"])
    granted = (await Approvals(running.store, TENANT).for_delegation(discount.id)) or pytest.fail("no approval")
    assert granted.decided_by == "aad-approver"
    report = await verify(running.store, TENANT)
    assert report.ok, report

    # `why` explains it in Teams, in plain words.
    [why] = await lead.ask(f"why D{follow_up.id}")
    assert "No outbound email while the customer has had a ticket open in the last 48 h" in why
    assert "quiet-after-ticket" in why


async def test_a_held_delegation_fails_when_its_approval_is_rejected_or_expires_and_its_owner_hears_why(
    journey: Journey, clock: FakeClock
) -> None:
    from bot.scheduler import tick

    running = journey.running
    lead, approver = await journey.people()
    rejected_task, expiring_task = await tasks(running.store, 2)
    async with serve_in_process(announce=journey.vendor_calls.append) as url:
        await lead.ask(f"adapter add mcp crm {json.dumps({'transport': 'http', 'url': url})}")
        await lead.ask("approvers add leader aad-approver")
        await lead.ask(f"policy load {json.dumps(RULES)}")
        assert await journey.event("crm", "renewal_open", RENEWING, renewal_id="R-2") == 202
        before = len(running.connector.sent)
        first = await journey.delegate(lead, rejected_task, "crm", "offer_discount", account=RENEWING, percent=5)
        second = await journey.delegate(lead, expiring_task, "crm", "offer_discount", account=RENEWING, percent=8)
        assert (first.status, second.status) == (DelegationStatus.HELD, DelegationStatus.HELD)
        first_card = next(
            s
            for s in running.connector.sent[before:]
            if s.conversation_id == approver.conversation_id and f"{first.capability}" in json.dumps(s.body)
        )
        reject = find_action(first_card.body["attachments"][0]["content"], "Reject")
        await approver.post(approver.activity(text=None, value=reject["data"], replyToId=first_card.activity_id))
        await running.bot.drain()
        [first] = await journey.delegator.delegations(TENANT).of_task(rejected_task)
        assert first.status is DelegationStatus.FAILED
        assert first.error is not None
        assert first.error.startswith("Not run: A1 was rejected by aad-approver")

        # Nobody decides the second: a day later (COS_APPROVAL_EXPIRY_HOURS) the tick expires the approval and fails
        # the delegation.
        clock.advance(hours=23)
        await tick(running.store, BotbuilderChannel(running.bot.adapter), at=clock.now, delegator=journey.delegator)
        assert (await journey.delegator.delegations(TENANT).get(second.id)).status is DelegationStatus.HELD
        clock.advance(hours=2)
        await tick(running.store, BotbuilderChannel(running.bot.adapter), at=clock.now, delegator=journey.delegator)
        await journey.delegator.drain()
        [second] = await journey.delegator.delegations(TENANT).of_task(expiring_task)
        assert (second.status, second.error) == (DelegationStatus.FAILED, "Not run: A2 expired with no answer.")
    assert not [call for call in journey.vendor_calls if call.startswith("offer_discount")]
    told = [s.body.get("text", "") for s in running.connector.sent if s.conversation_id == lead.conversation_id]
    assert sum(f"(D{d.id}, crm offer_discount) failed" in text for d in (first, second) for text in told) == 2


GATE_RULES = {
    "rules": [
        {
            "id": "big-discounts",
            "description": "A discount above 15 % is a budget shift",
            "effect": "require",
            "kinds": ["delegation"],
            "actions": ["offer_discount"],
            "when": {"attributes": {"percent": {"gt": 15}}},
            "gates": ["budget"],
        }
    ]
}
GATE_APPROVERS = {
    "leader": "aad-leader",
    "marketing-ops": "aad-marketing",
    "finance": "aad-finance",
    "legal": "aad-legal",
    "brand": "aad-brand",
    "privacy": "aad-privacy",
}


async def test_each_gate_holds_what_falls_under_it_for_its_own_approvers_whatever_the_input_says(
    journey: Journey,
) -> None:
    running = journey.running
    lead = TeamsUser(running)
    chats = {}
    for role, user in GATE_APPROVERS.items():
        person = TeamsUser(running, user_id=user, name=f"The {role} approver", conversation_id=f"a:personal-{role}")
        await person.ask("help")
        await lead.ask(f"approvers add {role} {user}")
        chats[person.conversation_id] = role
    t_segment, t_export, t_creative, t_claim, t_small, t_big, t_strategy = await tasks(running.store, 7)

    async with serve_in_process(announce=journey.vendor_calls.append) as url:
        config = json.dumps({"transport": "http", "url": url})
        for name in ("mailer", "crm"):
            await lead.ask(f"adapter add mcp {name} {config}")
        [loaded] = await lead.ask(f"policy load {json.dumps(GATE_RULES)}")
        assert "Policy version 1 is in force: 1 rule(s)" in loaded
        # An admin says what each capability does; a typo is refused, naming the gates there are.
        [typo] = await lead.ask("adapter classify crm create_segment audiance")
        assert "There is no approval gate" in typo
        assert "audience" in typo
        [classified] = await lead.ask("adapter classify crm create_segment audience")
        assert "crm's create_segment is classified: Audience definition (marketing-ops)" in classified.replace("`", "")
        [two_words] = await lead.ask("adapter classify crm campaign_metrics personal data")
        assert "Personal or sensitive data (privacy)" in two_words
        await lead.ask("adapter classify mailer draft_email brand_creative")
        await lead.ask("adapter classify mailer send_email regulated_claim")

        def held(task_id: int, adapter: str, capability: str, **input: Any) -> Any:
            return journey.delegate(lead, task_id, adapter, capability, **input)

        # The requester leaves the gates out, or declares none: the capability's own gate holds it all the same.
        before = len(running.connector.sent)
        cases = {
            "audience": await held(
                t_segment, "crm", "create_segment", name="CFOs", criteria="title CFO", categories=[]
            ),
            "personal_data": await held(t_export, "crm", "campaign_metrics", campaign="spring"),
            "brand_creative": await held(t_creative, "mailer", "draft_email", audience="CFOs", topic="launch"),
            "regulated_claim": await held(
                t_claim, "mailer", "send_email", account=CUSTOMER, to="buyer@acme.example", subject="Cures all"
            ),
            # A rule adds a gate from the input: a discount above 15 % is a budget shift, 10 % goes on its own.
            "budget": await held(t_big, "crm", "offer_discount", account=CUSTOMER, percent=20),
            # The input can add a gate to a capability nobody classified.
            "strategy": await held(
                t_strategy, "crm", "offer_discount", account=CUSTOMER, percent=5, categories="strategy"
            ),
        }
        small = await held(t_small, "crm", "offer_discount", account=CUSTOMER, percent=10)
        assert small.status is DelegationStatus.SUCCEEDED, small.error
        assert journey.vendor_calls == ["offer_discount acme: 10%"]

        roles = {gate: role for role, gate in [("marketing-ops", "audience"), ("privacy", "personal_data")]}
        roles |= {"brand_creative": "brand", "regulated_claim": "legal", "budget": "finance", "strategy": "leader"}
        approvals = Approvals(running.store, TENANT)
        for gate, delegation in cases.items():
            assert delegation.status is DelegationStatus.HELD, (gate, delegation.error)
            request = await approvals.for_delegation(delegation.id) or pytest.fail(f"no approval for {gate}")
            assert [c.value for c in request.categories] == [gate]
            assert (request.roles, request.approvers) == ((roles[gate],), (GATE_APPROVERS[roles[gate]],))
            cards = [
                chats[s.conversation_id]
                for s in running.connector.sent[before:]
                if s.conversation_id in chats and f'"approval": {request.id}' in json.dumps(s.body)
            ]
            assert cards == [roles[gate]], (gate, cards)

        # An admin sees each adapter's tools with their gates and how its delegations last went.
        await lead.ask("adapters")
        listed = all_text(running.connector.cards()[-1])
        assert "↳ create_segment (on, gates: Audience definition)" in listed
        assert "↳ offer_discount (on, no gate of its own)" in listed
        assert "last success 2 Mar 10:00" in listed

        # ...and everything waiting for a person across the tenant, with a button to cancel each; a member sees
        # only their own.
        [member] = await TeamsUser(running, user_id="aad-writer", name="Writer", conversation_id="a:w").ask(
            "delegations"
        )
        assert "Nothing is running, waiting or deferred" in member
        await lead.ask("delegations")
        [shown] = [s for s in running.connector.sent if s.body.get("attachments")][-1:]
        steering = shown.body["attachments"][0]["content"]
        assert "Open delegations: 6" in all_text(steering)
        assert all_text(steering).count("waiting for a person's approval") == 6
        cancel = find_action(steering, "Cancel")
        before = len(running.connector.sent)
        await lead.post(lead.activity(text=None, value=cancel["data"], replyToId=shown.activity_id))
        arrived = (await running.connector.wait_for(before + 2))[before:]
        # The card clicked is refreshed in place, five left, saying what the button did; the text says it too.
        [update] = [s for s in arrived if s.method == "update"]
        assert update.activity_id == shown.activity_id
        refreshed = update.body["attachments"][0]["content"]
        assert schema_errors(refreshed) == []
        assert "Open delegations: 5" in all_text(refreshed)
        assert f"{cancel['data']['delegation']} is cancelled" in all_text(refreshed)
        assert any(f"{cancel['data']['delegation']} is cancelled" in s.body.get("text", "") for s in arrived)
        gone = await journey.delegator.delegations(TENANT).get(int(cancel["data"]["delegation"][1:]))
        assert gone.status is DelegationStatus.CANCELLED
        assert journey.vendor_calls == ["offer_discount acme: 10%"]

        # Declassified, the capability goes as its input and the rules say.
        await lead.ask("adapter classify mailer draft_email none")
        [t_later] = await tasks(running.store, 1)
        drafted = await held(t_later, "mailer", "draft_email", audience="CFOs", topic="recap")
        assert drafted.status is DelegationStatus.SUCCEEDED, drafted.error
