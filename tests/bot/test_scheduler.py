"""The scheduler's jobs: the tick every `COS_TICK_SECONDS`, and the hourly housekeeping that purges old facts and
sign-ins."""

from __future__ import annotations

from datetime import timedelta

from bot.scheduler import HOUSEKEEPING_SECONDS, start_scheduler
from bot.settings import Settings
from bot.teams.botbuilder import create_channel
from planner.domain.context import parse_events
from planner.services.context import ContextFacts
from planner.services.oauth import SignIns
from planner.store import Store
from planner.store.schema import context_facts, oauth_sign_ins
from planner.store.vault import Vault
from tests.conftest import FakeClock


async def test_the_scheduler_ticks_and_purges_expired_facts_and_sign_ins_every_hour(
    store: Store, clock: FakeClock
) -> None:
    event = {"id": "e1", "type": "page_visit", "account": "acme", "at": clock.now.isoformat(), "ttl_hours": 0.05}
    await ContextFacts(store, "contoso").post("web", parse_events([event]))
    sign_ins = SignIns(store, "contoso", Vault([Vault.generate_key()]))
    await sign_ins.open("aad-member", "crm", "https://login.example/?state=s", "s", within=timedelta(minutes=5))
    scheduler = start_scheduler(store, create_channel(Settings.from_env({})), every_seconds=3600)
    scheduler.pause_job("tick")  # before the loop runs it: this test is about the housekeeping
    try:
        tick, housekeeping = scheduler.get_job("tick"), scheduler.get_job("housekeeping")
        assert tick is not None
        assert housekeeping is not None
        assert housekeeping.trigger.interval == timedelta(seconds=HOUSEKEEPING_SECONDS)
        clock.advance(hours=1)
        await housekeeping.func()
    finally:
        scheduler.shutdown(wait=False)
    async with store.engine.connect() as conn:
        assert (await conn.execute(context_facts.select())).all() == []
        assert (await conn.execute(oauth_sign_ins.select())).all() == []
