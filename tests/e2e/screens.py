"""A short quarter driven through Microsoft's Teams emulator (Agents Playground), its key cards screenshotted from the
emulator's web UI in headless Chromium: what a leader sees in Teams, at Teams' card width.

`docs/screens/make.py` runs it for the README; tests/e2e/test_screens.py runs it in the suite. Both servers listen on
loopback only and are stopped however it ends; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from playwright.async_api import Page, async_playwright

from tests.adapters.vendor_agent import serve_in_process
from tests.adapters.web_vendor import PASSWORD, USERNAME, WebVendor, vendor_config
from tests.e2e.playground import TENANT, Playground, from_bot, write_config
from tests.e2e.test_playground import LOOPBACK_ONLY, PLAYGROUND, ROOT, free_port, stop, wait_until_up
from tests.fakes.oauth_server import LoopbackAuthorization, serve_oauth_protected

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 2400}
"""Tall enough for the tallest card a Teams screen should show (about 1,200 px), so it is never cut."""
WAIT_S = 30.0
DELEGATION_S = 15
"""How long the delegated report runs: long enough to be seen running, short enough not to hold the agent's exit."""


@dataclass(frozen=True, kw_only=True)
class Shot:
    name: str
    path: Path
    width: float
    height: float
    """The card as the emulator drew it, in CSS pixels."""
    text: str


@dataclass
class Emulator:
    """The bot and the emulator on loopback, the emulator's web UI open in Chromium."""

    teams: Playground
    page: Page
    env: dict[str, str]
    bot: str
    """The bot's base URL."""
    out: Path
    shots: list[Shot] = field(default_factory=list)

    @property
    def chat(self) -> str:
        return self.teams.conversation("personal")

    async def say(self, text: str, *, expect: str) -> None:
        """Write `text` in the personal chat and wait for a reply containing `expect`."""
        start = len(self.teams.frames)
        await self.teams.say(self.chat, text)
        try:
            await self.teams.wait_for(from_bot(containing=expect), start=start, within=WAIT_S)
        except TimeoutError:
            said = [(f.get("message") or {}).get("text") for f in self.teams.frames[start:]]
            raise AssertionError(f"{text!r}: no reply with {expect!r} in {WAIT_S} s; the bot said {said}") from None

    async def send(self, text: str, *, expect: str, action: str = "createMessage", within: float = WAIT_S) -> None:
        """Write `text` in the personal chat and wait for a message of the bot's, created or updated (`action`),
        containing `expect`, however many others come first."""
        start = len(self.teams.frames)
        await self.teams.say(self.chat, text)
        await self.wait_for(expect, start=start, action=action, within=within)

    async def wait_for(self, expect: str, *, start: int, action: str = "createMessage", within: float = WAIT_S) -> None:
        """Wait for a message of the bot's from frame `start`, created or updated (`action`), containing `expect`."""
        try:
            await self.teams.wait_for(from_bot(action, expect), start=start, within=within)
        except TimeoutError:
            said = [(f.get("action"), (f.get("message") or {}).get("text")) for f in self.teams.frames[start:]]
            raise AssertionError(f"no {action} with {expect!r} in {within} s; the bot said {said}") from None

    async def as_member(self, member: dict[str, str], text: str) -> None:
        """`member` (another user of the emulator's tenant) writes to the bot in their own personal chat.

        The emulator speaks for its current user only, so the activity is posted to the bot as Teams would post it;
        the bot's replies to that chat go to the emulator's connector, which has no such chat and drops them.
        """
        activity = {
            "type": "message",
            "id": f"member-{len(self.teams.frames)}-{text[:8]}",
            "channelId": "msteams",
            "serviceUrl": f"{self.teams.base}/_connector",
            "from": {"id": member["id"], "name": member["name"], "aadObjectId": member["aadObjectId"]},
            "recipient": {"id": self.teams.bot_id, "name": self.teams.config["bot"]["name"]},
            "conversation": {
                "id": f"personal-{member['id']}",
                "conversationType": "personal",
                "tenantId": self.teams.config["tenantId"],
            },
            "channelData": {"tenant": {"id": self.teams.config["tenantId"]}},
            "text": text,
        }
        async with self.teams.http.post(self.bot + "/api/messages", json=activity) as answer:
            assert answer.status < 300, await answer.text()

    async def tick(self, at: datetime) -> None:
        """`cos tick --at AT --apply`, as an operator runs it, against the bot's database."""
        tick = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "tick",
            "--at",
            at.isoformat(),
            "--apply",
            cwd=ROOT,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            async with asyncio.timeout(WAIT_S * 2):
                said, _ = await tick.communicate()
        finally:
            if tick.returncode is None:
                tick.kill()
                await tick.wait()
        assert tick.returncode == 0, said.decode()

    async def shoot(self, name: str, containing: str, *, card: bool = True) -> Shot:
        """Screenshot the last card of the chat that contains `containing`, as the web UI shows it (waiting for one
        to be drawn); `card=False`: the last message, a card or not."""
        cards = self.page.locator(".fai-OutputCard")
        if card:
            cards = cards.filter(has=self.page.locator(".ac-container"))
        message = cards.filter(has_text=containing).last
        await message.wait_for(timeout=WAIT_S * 1000)
        await message.scroll_into_view_if_needed(timeout=WAIT_S * 1000)
        path = self.out / f"{name}.png"
        await message.screenshot(path=str(path), timeout=WAIT_S * 1000)
        box = await message.bounding_box()
        assert box is not None
        shot = Shot(name=name, path=path, width=box["width"], height=box["height"], text=await message.inner_text())
        self.shots.append(shot)
        return shot


LEADER_AAD = TENANT["currentUser"]["aadObjectId"]
"""The emulator's current user (the leader), as its activities carry them."""


@asynccontextmanager
async def emulator(workdir: Path, out: Path, *, public: bool = False) -> AsyncIterator[Emulator]:
    """`cos serve` and the emulator on free loopback ports, the emulator's web UI in headless Chromium; `public`: the
    bot's own address is its public one (its signed links: sign-in, evidence)."""
    bot_port, playground_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MICROSOFT_APP", "ANTHROPIC", "DATABASE_URL"))}
    env |= {
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'screens.db'}",
        "COS_DATA_DIR": str(workdir),
        "COS_SECRET_KEY_FILE": str(workdir / "local.key"),
        "COS_PORT": str(bot_port),
        "COS_LOG_LEVEL": "WARNING",
        # The leader (the emulator's current user) is the local admin: they register the agent below.
        "COS_LOCAL_ADMIN": LEADER_AAD,
        "COS_ADAPTER_ALLOWED_NETWORKS": "127.0.0.1/32",  # the vendor agent below, on loopback
    }
    if public:
        env["COS_PUBLIC_URL"] = f"http://127.0.0.1:{bot_port}"
    with (workdir / "bot.log").open("wb") as bot_log, (workdir / "playground.log").open("wb") as playground_log:
        bot = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve"],
            cwd=ROOT,
            env=env,
            stdout=bot_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        playground = subprocess.Popen(
            [
                str(PLAYGROUND),
                "start",
                "-p",
                str(playground_port),
                "-e",
                f"http://127.0.0.1:{bot_port}/api/messages",
                "-c",
                "msteams",
                "--dt",
            ],
            cwd=workdir,
            env=env
            | write_config(workdir)  # its people named by role, not its sample tenant's
            | {"TEAMSAPPTESTER_BROWSER": "none", "NODE_OPTIONS": f"--require {LOOPBACK_ONLY}"},
            stdout=playground_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            await wait_until_up(f"http://127.0.0.1:{bot_port}/healthz", bot)
            base = f"http://127.0.0.1:{playground_port}"
            await wait_until_up(f"{base}/_internal/v1/testConfig", playground)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM)
                try:
                    page = await browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
                    async with Playground(base) as teams:
                        await page.goto(base + "/", timeout=WAIT_S * 1000)
                        yield Emulator(teams=teams, page=page, env=env, bot=f"http://127.0.0.1:{bot_port}", out=out)
                finally:
                    await browser.close()
        finally:
            stop(playground)
            stop(bot)


def quarter_of(day: date) -> tuple[date, date]:
    first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    after = date(first.year + (first.month + 3 > 12), (first.month + 2) % 12 + 1, 1)
    return first, after - timedelta(days=1)


class OutsideTheQuarter(ValueError):
    """The short quarter needs yesterday and tomorrow inside this quarter (the bot runs on the real clock)."""

    def __init__(self, day: date) -> None:
        super().__init__(f"{day} is the first or last day of its quarter: run it tomorrow")


async def shoot_a_quarter(workdir: Path, out: Path) -> list[Shot]:
    """A leader plans this quarter and derives its tiers, funds it, is nudged, gets a summary of what one tick had
    for them, a member asks for a change of strategy, work is delegated to an agent; the key cards, as PNGs in `out`.

    Raises OutsideTheQuarter on the first and last day of a quarter.
    """
    today = date.today()  # the bot's clock is the real one
    start, end = quarter_of(today)
    yesterday, tomorrow = today - timedelta(days=1), today + timedelta(days=1)
    if not start <= yesterday < tomorrow <= end:
        raise OutsideTheQuarter(today)

    def plan_of(day: date) -> str:
        """The tactical plan of `day`'s month (derived monthly: P2, P3, P4)."""
        return f"P{2 + day.month - start.month}"

    noon = datetime.combine(today, time(12), tzinfo=UTC)
    for folder in (workdir, out):
        folder.mkdir(parents=True, exist_ok=True)
    async with emulator(workdir, out) as teams:
        await teams.teams.install(teams.chat)
        await teams.teams.wait_for(from_bot(containing="AdaptiveCard"), within=WAIT_S)
        await teams.say(
            f"new plan 600 SQLs this quarter from {start} to {end} kpi SQLs 600", expect="Master plan P1 created"
        )
        await teams.say("derive tactical P1 monthly", expect="Draft 1")
        await teams.shoot("draft", "Tactical plans proposed")
        await teams.say("save draft 1", expect="Saved by")
        await teams.tick(noon - timedelta(hours=1))  # the months already over: their retrospectives, folded in one card
        await teams.teams.wait_for(from_bot(containing="updates for you"), within=WAIT_S)
        plan = plan_of(today)
        await teams.say("budget P1 250k USD", expect="budget")
        await teams.say(f"allocate 60k USD to {plan}", expect="60,000")
        await teams.say(f"spend 12,500 USD on {plan}", expect="12,500")
        for setting in ("drift", "health", "weekly", "approaching", "escalation"):
            await teams.say(f"triggers off {setting}", expect="off")
        await teams.say(
            f"add task Draft the launch email to {plan_of(yesterday)} due {yesterday} owner me", expect="Task T1"
        )
        await teams.tick(noon)
        await teams.teams.wait_for(from_bot(containing="Where is it?"), within=WAIT_S)
        await teams.shoot("nudge", "Draft the launch email")

        for title in ("Write the webinar invite", "Publish the pricing page copy", "Design the webinar banner"):
            await teams.say(f"add task {title} to {plan_of(tomorrow)} due {tomorrow} owner me", expect=title)
        await teams.say(f"add task Record the launch video to {plan_of(end)} due {end} owner me", expect="T5")
        for setting in ("approaching", "drift"):
            await teams.say(f"triggers on {setting}", expect="on")
        await teams.say("record SQLs 310", expect="Recorded SQLs")
        await teams.tick(noon + timedelta(hours=1))
        # The summary of this tick's reminders (the bot's own ticks may send other summaries meanwhile): waited for
        # as the web UI draws it.
        await teams.shoot("summary", "Heads up:")

        await teams.say(f"week {plan}", expect="Weekly plan")
        await teams.shoot("week", "Your week")
        await teams.say(f"tasks {plan}", expect="Draft the launch email")
        await teams.shoot("tasks", "Draft the launch email")
        await teams.say("plan P1", expect="600 SQLs this quarter")
        await teams.shoot("plan", "Tactical plans")
        await teams.say(f"plan {plan}", expect="Budget")
        await teams.shoot("budget", "Budget")

        # A member asks for a change of strategy in their own chat with the bot: it waits for the leader's
        # approval, and the approval card reaches the leader with the next tick.
        member = teams.teams.config["users"][0]
        await teams.as_member(member, "hello")
        await teams.as_member(member, "set target SQLs 700 in P1")
        # The request is due from when it was made (the real clock): a tick as of an earlier hour would not send it.
        await teams.tick(max(noon + timedelta(hours=2), datetime.now(UTC) + timedelta(minutes=1)))
        await teams.teams.wait_for(from_bot(containing="Approve"), within=WAIT_S)
        await teams.shoot("approval", "Approve")

        # Work handed to a vendor agent (the project's MCP fixture on loopback), still running.
        async with serve_in_process() as agent:
            await teams.say(f'adapter add mcp crm {{"transport": "http", "url": "{agent}"}}', expect="crm")
            await teams.say("adapter enable crm slow_report", expect="slow_report is on")
            report = f'{{"campaign": "spring launch", "seconds": {DELEGATION_S}}}'
            await teams.say(f"delegate T5 to crm slow_report {report}", expect="T5")
            await teams.say("delegations", expect="Open delegations")  # not the live card, which names the tool too
            await teams.shoot("delegations", "Open delegations")
        return teams.shots


async def shoot_delegations(workdir: Path, out: Path) -> list[Shot]:
    """Work handed to vendor agents, as the person who delegates and the admin see it: the live card of an MCP agent
    reporting progress and the result it ends as, an agent's question mid-call, a browser agent's 2FA code and its
    evidence, the sign-in card of an agent that works as the person, and the admin's delegations and adapters cards.
    """
    today = date.today()
    start, end = quarter_of(today)
    for folder in (workdir, out):
        folder.mkdir(parents=True, exist_ok=True)
    vendor = await WebVendor(username=USERNAME, password=PASSWORD).start()
    try:
        async with (
            emulator(workdir, out, public=True) as teams,
            serve_in_process() as agent,
            serve_oauth_protected(LoopbackAuthorization()) as crm,
        ):
            await teams.teams.install(teams.chat)
            await teams.teams.wait_for(from_bot(containing="AdaptiveCard"), within=WAIT_S)
            await teams.say(
                f"new plan 600 SQLs this quarter from {start} to {end} kpi SQLs 600", expect="Master plan P1 created"
            )
            await teams.say("derive tactical P1 monthly", expect="Draft 1")
            await teams.say("save draft 1", expect="Saved by")
            # Every result here is followed to its end: none waits for tomorrow behind the leader's daily budget.
            await teams.say("triggers set budget 50", expect="50")
            month = f"P{2 + today.month - start.month}"
            await teams.say(f"add task Export the spring launch report to {month} due {end} owner me", expect="T1")
            await teams.say(f'adapter add mcp marketing {{"transport": "http", "url": "{agent}"}}', expect="marketing")
            for tool in ("export_report", "send_campaign", "slow_report", "campaign_visual"):
                await teams.say(f"adapter enable marketing {tool}", expect=f"{tool} is on")

            # The live card: the agent reports each part it exports, the card follows, then ends as the result.
            started = len(teams.teams.frames)
            report = '{"campaign": "spring-launch", "steps": 4, "pause": 4, "kib": 1}'
            await teams.send(
                f"delegate T1 to marketing export_report {report}", expect="exported part 2", action="updateMessage"
            )
            await teams.shoot("progress", "exported part 2")
            await teams.wait_for("It is back", start=started, action="updateMessage", within=WAIT_S * 2)
            await teams.shoot("result", "It is back")

            # A question the agent asks mid-call, answered in the chat.
            campaign = '{"campaign": "spring-launch"}'
            await teams.send(f"delegate T1 to marketing send_campaign {campaign}", expect="A question from")
            await teams.shoot("question", "A question from")
            await teams.send("Confirm: yes, Audience Size: 12000", expect="12000 recipients", action="updateMessage")

            # A browser agent: its 2FA code asked in the chat, its evidence screenshot linked from the result.
            web = vendor_config(vendor)  # the browser adapter's tests' recipes, for the vendor's web app
            del web["name"]  # named as it is registered
            await teams.say(f"adapter add browser briefs {json.dumps(web)}", expect="briefs")
            started = len(teams.teams.frames)
            brief = '{"name": "Spring launch", "audience": "CMOs at mid-size SaaS"}'
            delegate = f"delegate T1 to briefs create_campaign_brief {brief}"
            await teams.send(delegate, expect="A question from", within=WAIT_S * 2)
            await teams.shoot("code", "A question from")
            await teams.teams.say(teams.chat, vendor.code)
            await teams.wait_for("It is back", start=started, action="updateMessage", within=WAIT_S * 2)
            await teams.shoot("evidence", "View evidence")

            # An agent that works as the person: the sign-in card.
            await teams.say(
                f'adapter add mcp crm {{"transport": "http", "url": "{crm}", "oauth_grant": "authorization_code"}}',
                expect="crm",
            )
            started = len(teams.teams.frames)
            await teams.send("adapter test crm", expect="Sign in")
            await teams.shoot("sign_in", "Sign in")
            asked = await teams.teams.wait_for(from_bot(containing="Action.OpenUrl"), start=started)
            [button] = asked["message"]["attachments"][0]["content"]["actions"]
            assert button["url"].startswith(teams.bot), button  # the bot's own signed link, never the vendor's page
            assert teams.page.context.browser is not None
            person = await teams.page.context.browser.new_context()  # their own browser: the vendor, then the bot
            try:
                signed_in = await person.new_page()
                await signed_in.goto(button["url"], timeout=WAIT_S * 1000)
                await signed_in.screenshot(path=str(out / "signed_in_page.png"))
            finally:
                await person.close()
            await teams.wait_for("whoami", start=started)

            # The admin's cards: a report still running, another whose agent did not answer in time (it may have done
            # it: Retry or Cancel), cancelled from the card, which is answered in place; the adapters with their state.
            slow = f'{{"campaign": "spring-launch", "seconds": {DELEGATION_S}}}'
            await teams.say(f"delegate T1 to marketing slow_report {slow}", expect="T1")
            hasty = json.dumps({"transport": "http", "url": agent, "timeout_seconds": 2})
            await teams.say(f"adapter add mcp reports {hasty}", expect="mcp:reports registered")
            await teams.say("adapter enable reports slow_report", expect="slow_report is on")
            started = len(teams.teams.frames)
            await teams.teams.say(teams.chat, f"delegate T1 to reports slow_report {slow}")
            await teams.wait_for("No answer came back", start=started, action="updateMessage")
            await teams.say("delegations", expect="Open delegations: 2")
            await teams.shoot("delegations_admin", "Open delegations: 2")
            # Cancel, clicked as a person does: the card answers in place, saying what it did.
            listed = teams.page.locator(".fai-OutputCard").filter(has_text="Open delegations: 2").last
            await listed.get_by_role("button", name="Cancel").click(timeout=WAIT_S * 1000)
            await teams.shoot("delegations_cancelled", "is cancelled")
            await teams.say("adapters", expect="marketing")
            await teams.shoot("adapters", "export_report")
            return teams.shots
    finally:
        await vendor.stop()
