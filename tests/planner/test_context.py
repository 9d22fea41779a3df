"""Shared context on every backend: facts posted by connected systems, their expiry, closing, and replay refusal."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.text.problems import describe_problem
from planner.domain.context import (
    DEFAULT_TTLS,
    ContextEvent,
    ContextSourceExists,
    ContextSourceNotFound,
    FactType,
    InvalidContextEvent,
    ReplayedContextEvent,
    StaleContextEvent,
    parse_events,
)
from planner.domain.problems import Problem, ProblemCode
from planner.services.context import ContextFacts, ContextSources, purge_expired_facts, reseal_source_secrets, sign
from planner.store import Store
from planner.store.schema import context_facts, context_sources, events
from planner.store.vault import UndecryptableSecret, Vault
from tests.conftest import FakeClock
from tests.saying import raises_saying

TENANT = "contoso"
KEY = Vault.generate_key()


def event(clock: FakeClock, event_id: str, type: str, account: str = "acct-renewal", **extra: Any) -> dict[str, Any]:
    return {"id": event_id, "type": type, "account": account, "at": clock.now.isoformat(), **extra}


async def post(store: Store, clock: FakeClock, *raw: dict[str, Any], source: str = "helpdesk") -> list[Any]:
    return await ContextFacts(store, TENANT).post(source, parse_events(list(raw)))


async def live_types(store: Store, account: str = "acct-renewal") -> list[str]:
    return [fact.type.value for fact in await ContextFacts(store, TENANT).live([account])]


async def test_a_posted_event_holds_until_its_type_expires_it(store: Store, clock: FakeClock) -> None:
    [fact] = await post(store, clock, event(clock, "e1", "sales_contact", attributes={"channel": "call"}))
    assert fact.type is FactType.SALES_CONTACT
    assert fact.attributes == {"channel": "call"}
    assert fact.expires_at == clock.now + timedelta(days=30)
    assert fact.reference == f"fact:{fact.id}:sales_contact:acct-renewal"
    assert await live_types(store) == ["sales_contact"]
    clock.advance(days=30)
    assert await live_types(store) == []


async def test_an_event_can_give_its_own_lifetime_and_an_earlier_observation(store: Store, clock: FakeClock) -> None:
    yesterday = (clock.now - timedelta(days=1)).isoformat()
    [fact] = await post(store, clock, event(clock, "e1", "page_visit", ttl_hours=2, observed_at=yesterday))
    assert fact.observed_at == clock.now - timedelta(days=1)
    assert fact.expires_at == clock.now - timedelta(days=1) + timedelta(hours=2)
    assert await live_types(store) == []  # observed a day ago, held for two hours
    [fresh] = await post(store, clock, event(clock, "e2", "page_visit", ttl_hours=2))
    assert await live_types(store) == ["page_visit"]
    assert fresh.expires_at == clock.now + timedelta(hours=2)


async def test_a_closed_ticket_supersedes_the_opened_one_with_its_id(store: Store, clock: FakeClock) -> None:
    await post(
        store,
        clock,
        event(clock, "o1", "ticket_opened", attributes={"ticket_id": "T-1"}),
        event(clock, "o2", "ticket_opened", attributes={"ticket_id": "T-2"}),
    )
    clock.advance(hours=3)
    await post(store, clock, event(clock, "c1", "ticket_closed", attributes={"ticket_id": "T-1"}))
    facts = await ContextFacts(store, TENANT).live(["acct-renewal"], types=[FactType.TICKET_OPENED])
    assert [f.attributes["ticket_id"] for f in facts] == ["T-2"]
    # As of before the closing, both were open.
    earlier = await ContextFacts(store, TENANT).live(
        ["acct-renewal"], types=["ticket_opened"], at=clock.now - timedelta(hours=1)
    )
    assert sorted(f.attributes["ticket_id"] for f in earlier) == ["T-1", "T-2"]
    clock.advance(minutes=1)
    await post(store, clock, event(clock, "c2", "ticket_closed"))  # no id: every ticket of the account
    assert await live_types(store) == ["ticket_closed", "ticket_closed"]


async def test_a_closing_event_that_arrives_first_still_closes_the_opening_one(store: Store, clock: FakeClock) -> None:
    opened_at = (clock.now - timedelta(hours=2)).isoformat()
    await post(store, clock, event(clock, "c1", "ticket_closed", attributes={"ticket_id": "T-9"}))
    [late] = await post(
        store, clock, event(clock, "o1", "ticket_opened", attributes={"ticket_id": "T-9"}, observed_at=opened_at)
    )
    assert late.superseded_at == clock.now
    assert await live_types(store) == ["ticket_closed"]
    [other] = await post(store, clock, event(clock, "o2", "ticket_opened", attributes={"ticket_id": "T-10"}))
    assert other.superseded_at is None


async def test_renewal_closed_supersedes_the_open_renewal(store: Store, clock: FakeClock) -> None:
    await post(store, clock, event(clock, "r1", "renewal_open", attributes={"amount": 120_000}))
    clock.advance(days=10)
    await post(store, clock, event(clock, "r2", "renewal_closed", attributes={"outcome": "renewed"}))
    assert await live_types(store) == ["renewal_closed"]


async def test_a_replayed_event_id_is_refused_and_nothing_of_its_post_is_stored(store: Store, clock: FakeClock) -> None:
    await post(store, clock, event(clock, "e1", "purchase"))
    with pytest.raises(ReplayedContextEvent, match="'e1'"):
        await post(store, clock, event(clock, "e2", "purchase"), event(clock, "e1", "purchase"))
    async with store.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(context_facts))).scalar() == 1
    # The same id from another source is another event.
    await post(store, clock, event(clock, "e1", "purchase"), source="crm")


async def test_two_posts_of_the_same_event_at_once_store_it_once(store: Store, clock: FakeClock) -> None:
    results = await asyncio.gather(
        post(store, clock, event(clock, "same", "sales_contact")),
        post(store, clock, event(clock, "same", "sales_contact")),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["ReplayedContextEvent", "list"]
    assert await live_types(store) == ["sales_contact"]


async def test_events_far_from_the_clock_are_refused(store: Store, clock: FakeClock) -> None:
    old = event(clock, "old", "purchase", at=(clock.now - timedelta(minutes=6)).isoformat())
    ahead = event(clock, "ahead", "purchase", at=(clock.now + timedelta(minutes=6)).isoformat())
    with pytest.raises(StaleContextEvent, match="'old', 'ahead'"):
        await post(store, clock, old, ahead)
    recent = event(clock, "recent", "purchase", at=(clock.now - timedelta(minutes=4)).isoformat())
    await post(store, clock, recent)


def test_a_bad_post_is_refused_with_every_problem_and_its_path(clock: FakeClock) -> None:
    with pytest.raises(InvalidContextEvent) as refused:
        parse_events(
            [
                {"id": "a", "type": "ticket_open", "account": "x", "at": "2026-01-05T09:00:00"},
                {"type": "purchase", "at": "yesterday", "ttl": 3, "attributes": [1]},
                {"id": "a", "type": "purchase", "account": "y", "at": "2026-01-05T09:00:00Z", "ttl_hours": -1},
                "not an event",
            ]
        )
    problems = [describe_problem(problem) for problem in refused.value.problems]
    assert "events[0].type: \"ticket_open\" is not a fact type (did you mean 'ticket_opened'?)" in problems[0]
    assert 'events[0].at: "2026-01-05T09:00:00" has no offset; add one, such as 2026-01-05T09:00:00Z or +01:00' in (
        problems
    )
    assert "events[1].ttl: not a field here (did you mean 'ttl_hours'?)" in " ".join(problems)
    assert "events[1].id: missing" in problems
    assert "events[1].account: missing" in problems
    assert any(p.startswith('events[1].at: "yesterday" is not an ISO 8601 time') for p in problems)
    assert any(p.startswith("events[1].attributes:") for p in problems)
    assert any(p.startswith("events[2].ttl_hours:") for p in problems)
    assert "events[3]: expected an object with id, type, account and at" in problems
    assert [(problem.path, problem.code) for problem in refused.value.problems][-1] == (
        "events[3]",
        ProblemCode.NOT_AN_OBJECT,
    )
    with pytest.raises(InvalidContextEvent) as twice:
        parse_events([event(clock, "a", "purchase"), event(clock, "a", "purchase")])
    assert twice.value.problems == [Problem(ProblemCode.GIVEN_TWICE, "id", value="a")]
    [single] = parse_events(event(clock, "solo", "content_read"))
    assert single == ContextEvent(id="solo", type=FactType.CONTENT_READ, account="acct-renewal", at=clock.now)


async def test_facts_are_read_per_account_and_per_tenant(store: Store, clock: FakeClock) -> None:
    await post(
        store, clock, event(clock, "a", "purchase", account="acct-a"), event(clock, "b", "purchase", account="acct-b")
    )
    await ContextFacts(store, "fabrikam").post(
        "helpdesk", parse_events(event(clock, "c", "purchase", account="acct-a"))
    )
    facts = await ContextFacts(store, TENANT).live(["acct-a"])
    assert [(f.tenant_id, f.account) for f in facts] == [(TENANT, "acct-a")]
    assert await ContextFacts(store, TENANT).live([]) == []


async def test_purge_drops_expired_facts_once_they_no_longer_guard_against_replays(
    store: Store, clock: FakeClock
) -> None:
    await post(store, clock, event(clock, "short", "page_visit", ttl_hours=0.05), event(clock, "long", "purchase"))
    clock.advance(minutes=4)
    assert await ContextFacts(store, TENANT).purge() == 0  # expired, but its id still guards
    clock.advance(minutes=8)
    assert await ContextFacts(store, TENANT).purge() == 1
    assert await live_types(store) == ["purchase"]


async def test_the_hourly_housekeeping_purges_every_tenants_expired_facts(store: Store, clock: FakeClock) -> None:
    await post(store, clock, event(clock, "a", "page_visit", ttl_hours=0.05), event(clock, "b", "purchase"))
    other = {"id": "c", "type": "page_visit", "account": "acct-other", "at": clock.now.isoformat(), "ttl_hours": 0.05}
    await ContextFacts(store, "fabrikam").post("web", parse_events([other]))
    clock.advance(minutes=4)
    assert await purge_expired_facts(store, clock.now) == 0
    clock.advance(minutes=8)
    assert await purge_expired_facts(store, clock.now) == 2
    assert await live_types(store) == ["purchase"]
    assert await ContextFacts(store, "fabrikam").live(["acct-other"], at=clock.now - timedelta(minutes=10)) == []


# ---- sources -------------------------------------------------------------------------------------------------------


async def test_a_source_secret_is_shown_once_kept_encrypted_and_checks_signatures(store: Store) -> None:
    sources = ContextSources(store, TENANT, Vault([KEY]))
    secret = await sources.add("HelpDesk", actor="aad-admin")
    assert len(secret) >= 40
    [listed] = await sources.list_sources()
    assert (listed.name, listed.created_by) == ("helpdesk", "aad-admin")
    assert secret not in repr(listed)
    async with store.engine.connect() as conn:
        stored = (await conn.execute(select(context_sources.c.secret))).scalar()
        recorded = (await conn.execute(select(events.c.kind, events.c.after))).all()
    assert secret.encode() not in stored
    assert [(kind, after) for kind, after in recorded] == [("context_source.added", {"name": "helpdesk"})]
    body = b'{"id": "e1"}'
    assert await sources.verify("helpdesk", body, sign(secret, body))
    assert await sources.verify("helpdesk", body, sign(secret, body).upper().replace("SHA256=", "sha256="))
    assert not await sources.verify("helpdesk", body + b" ", sign(secret, body))
    assert not await sources.verify("helpdesk", body, "sha256=" + "0" * 64)
    assert not await sources.verify("helpdesk", body, "")
    assert not await sources.verify("crm", body, sign(secret, body))
    assert not await ContextSources(store, "fabrikam", Vault([KEY])).verify("helpdesk", body, sign(secret, body))


async def test_rotating_a_source_secret_retires_the_old_one_and_removing_forgets_it(store: Store) -> None:
    sources = ContextSources(store, TENANT, Vault([KEY]))
    old = await sources.add("crm", actor="aad-admin")
    new = await sources.rotate("crm", actor="aad-admin")
    assert new != old
    body = b"[]"
    assert await sources.verify("crm", body, sign(new, body))
    assert not await sources.verify("crm", body, sign(old, body))
    [listed] = await sources.list_sources()
    assert listed.rotated_at is not None
    with pytest.raises(ContextSourceExists):
        await sources.add("crm", actor="aad-admin")
    with raises_saying(ContextSourceNotFound, "Did you mean 'crm'"):
        await sources.remove("crn", actor="aad-admin")
    await sources.remove("crm", actor="aad-admin")
    assert await sources.list_sources() == []
    assert not await sources.verify("crm", body, sign(new, body))


async def test_source_secrets_are_resealed_with_the_newest_key(store: Store) -> None:
    old_key, new_key = KEY, Vault.generate_key()
    secret = await ContextSources(store, TENANT, Vault([old_key])).add("crm", actor="aad-admin")
    assert await reseal_source_secrets(store, Vault([new_key, old_key])) == 1
    body = b"{}"
    assert await ContextSources(store, TENANT, Vault([new_key])).verify("crm", body, sign(secret, body))
    with pytest.raises(UndecryptableSecret):
        await ContextSources(store, TENANT, Vault([old_key])).verify("crm", body, sign(secret, body))


def test_every_fact_type_has_a_default_lifetime() -> None:
    assert set(DEFAULT_TTLS) == set(FactType)
    assert all(ttl > timedelta(0) for ttl in DEFAULT_TTLS.values())
