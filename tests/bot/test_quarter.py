"""A quarter, scripted: a leader sets the plan and derives its tiers, members are nudged over simulated weeks (the
tick `cos tick --at TIME --apply` runs), tasks slip and complete, a KPI drifts and recovers.

What each person receives is written down per day, as they would see it in Teams, and compared with the quarter as
it should go; every card is checked as a reader would: valid, no taller than a Teams screen, names not ids,
numbers for people.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.scheduler import tick
from bot.settings import Settings
from bot.teams.botbuilder import create_channel
from bot.teams.channel import TeamsChannel
from tests.bot.cards.card_height import card_height
from tests.bot.cards.test_cards import all_text, of_type, schema_errors
from tests.bot.conftest import Running, TeamsUser
from tests.bot.test_nudges import said
from tests.bot.test_teams import find_action
from tests.conftest import FakeClock
from tests.fakes.connector import Sent

HEIGHT_BUDGET_PX = 1200
DAILY_BUDGET = 3
TICK_HOURS_UTC = (8, 15)
"""When the simulated scheduler ticks each day: the members' mornings (Berlin, 09:00) and the Friday review."""


@dataclass(frozen=True)
class Person:
    user_id: str
    name: str
    conversation_id: str
    time_zone: str


LEAD = Person("aad-lead", "Lead", "a:personal-lead", "Europe/London")
WRITER = Person("aad-writer", "Content Writer", "a:writer", "Europe/Berlin")
DESIGNER = Person("aad-designer", "Designer", "a:designer", "Europe/Madrid")
PEOPLE = {p.conversation_id: p for p in (LEAD, WRITER, DESIGNER)}


def headline(body: dict[str, Any]) -> list[str]:
    """A message as a reader skims it: its text's first sentence and its card's heading; for a summary card, the
    first sentence of each message folded into it."""
    cards = [a["content"] for a in body.get("attachments") or [] if "content" in a]
    line = " | ".join(
        part for part in [_sentence(body.get("text") or ""), *(f"[{_first_text(c)}]" for c in cards)] if part
    )
    folded = [_sentence(_first_text(row)) for c in cards for row in _summary_rows(c)]
    return [_short(line), *(_short(f"  · {text}") for text in folded)]


def _sentence(text: str) -> str:
    first = text.split("\n")[0]
    end = first.find(". ")
    return first if end < 0 else first[: end + 1]


def _short(line: str, limit: int = 100) -> str:
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _summary_rows(card: dict[str, Any]) -> list[dict[str, Any]]:
    if not _first_text(card).endswith("updates for you"):
        return []
    rows = [e for e in card["body"] if e.get("type") == "Container"]
    return [{"body": [r]} for row in rows for r in (row["items"] if row.get("id") else [row])]


def _first_text(card: dict[str, Any]) -> str:
    for element in card.get("body", []):
        if element.get("type") == "TextBlock":
            return str(element["text"])
        if element.get("type") == "Container":
            return _first_text({"body": element.get("items", [])})
    return ""


@dataclass
class Diary:
    """What arrived from the ticks, per person, per day of theirs."""

    days: dict[tuple[str, date], list[str]] = field(default_factory=lambda: defaultdict(list))
    messages: list[tuple[Person, datetime, Sent]] = field(default_factory=list)

    def write(self, at: datetime, sent: Sent) -> None:
        person = PEOPLE[sent.conversation_id]
        local = at.astimezone(ZoneInfo(person.time_zone))
        first, *folded = headline(sent.body)
        self.days[(person.name, local.date())].extend([f"{local:%H:%M} {first}", *folded])
        self.messages.append((person, at, sent))

    def transcript(self) -> str:
        lines = []
        for (name, day), arrived in sorted(self.days.items(), key=lambda item: (item[0][1], item[0][0])):
            count = sum(not line.startswith(" ") for line in arrived)
            lines.append(f"{day:%a %d %b} {name}: {count}")
            lines.extend(f"  {line}" for line in arrived)
        return "\n".join(lines)


@dataclass
class Quarter:
    running: Running
    clock: FakeClock
    diary: Diary = field(default_factory=Diary)
    channel: TeamsChannel = field(default_factory=lambda: create_channel(Settings.from_env({})))
    """The channel `cos tick --apply` makes: the Bot Connector at each conversation's service URL."""

    def user(self, person: Person) -> TeamsUser:
        return TeamsUser(
            self.running,
            user_id=person.user_id,
            name=person.name,
            conversation_id=person.conversation_id,
            time_zone=person.time_zone,
        )

    async def say(self, person: Person, text: str) -> list[Sent]:
        """`person` writes `text`; the bot's answers."""
        before = len(self.running.connector.sent)
        response = await self.user(person).say(text)
        assert response.status in (200, 201), (text, response.status)
        await self.running.bot.drain()
        return self.running.connector.sent[before:]

    async def click(self, person: Person, sent: Sent, title: str) -> list[Sent]:
        """`person` presses the button `title` on a card the bot sent them."""
        card = sent.body["attachments"][0]["content"]
        action = find_action(card, title)
        before = len(self.running.connector.sent)
        user = self.user(person)
        await user.post(user.activity(text=None, value=action["data"], replyToId=sent.activity_id))
        await self.running.bot.drain()
        return self.running.connector.sent[before:]

    async def tick(self, at: datetime) -> None:
        """The tick `cos tick --at AT --apply` runs."""
        self.clock.now = at
        before = len(self.running.connector.sent)
        await tick(self.running.store, self.channel, at=at)
        for sent in self.running.connector.sent[before:]:
            assert sent.method == "send", sent
            self.diary.write(at, sent)

    def last_to(self, person: Person, containing: str) -> Sent:
        return next(s for p, _, s in reversed(self.diary.messages) if p == person and containing in said(s.body))


TASKS = [
    ("Draft the launch email", "P2", "2026-01-09", WRITER),
    ("Write the webinar invite", "P2", "2026-01-09", WRITER),
    ("Publish the pricing page copy", "P2", "2026-01-09", WRITER),
    ("Design the webinar banner", "P2", "2026-01-14", DESIGNER),
    ("Write the nurture sequence", "P2", "2026-01-16", WRITER),
    ("Write the February newsletter", "P3", "2026-02-06", WRITER),
    ("Design the case study layout", "P3", "2026-02-11", DESIGNER),
]
CLICK = "click "
SCRIPT = [
    (datetime(2026, 1, 9, 10, tzinfo=UTC), WRITER, "done T1"),
    (datetime(2026, 1, 12, 10, tzinfo=UTC), LEAD, "record SQLs 20"),
    (datetime(2026, 1, 16, 10, tzinfo=UTC), WRITER, "done T2"),
    (datetime(2026, 1, 16, 10, tzinfo=UTC), WRITER, "done T3"),
    (datetime(2026, 1, 16, 10, tzinfo=UTC), WRITER, "done T5"),
    (datetime(2026, 1, 20, 10, tzinfo=UTC), DESIGNER, CLICK + "Done"),
    (datetime(2026, 2, 2, 10, tzinfo=UTC), LEAD, "record SQLs 190"),
    (datetime(2026, 2, 2, 10, tzinfo=UTC), LEAD, "week P3"),
    (datetime(2026, 2, 6, 10, tzinfo=UTC), WRITER, "done T6"),
    (datetime(2026, 2, 12, 10, tzinfo=UTC), DESIGNER, "done T7"),
    (datetime(2026, 3, 2, 10, tzinfo=UTC), LEAD, "record SQLs 340"),
    (datetime(2026, 3, 30, 10, tzinfo=UTC), LEAD, "record SQLs 510"),
]
"""What people do during the quarter, and when: finish tasks (one from its nudge's Done button), record readings."""

UNFORMATTED_NUMBER = re.compile(r"(?<![\d,.])(?!20\d\d\b)\d{4,}(?![\d-])")
SCIENTIFIC = re.compile(r"\d[eE][+-]?\d")


async def plan_the_quarter(q: Quarter) -> dict[str, list[Sent]]:
    """A leader sets the master plan, derives the tactical plans and a week; the members have said hello once."""
    q.clock.now = datetime(2026, 1, 5, 7, 30, tzinfo=UTC)
    for member in (WRITER, DESIGNER):
        await q.say(member, "whoami")  # their personal chats are known from here on
    replies = {
        "master": await q.say(LEAD, "new plan 500 SQLs by 31 March from 2026-01-01 to 2026-03-31 kpi SQLs 500"),
        "budget": await q.say(LEAD, "budget P1 250k USD"),
        "derive": await q.say(LEAD, "derive tactical P1 monthly"),
        "save": await q.say(LEAD, "save draft 1"),
        "budget rule": await q.say(LEAD, f"triggers set budget {DAILY_BUDGET}"),
    }
    for title, plan, due, owner in TASKS:
        await q.say(LEAD, f"add task {title} to {plan} due {due} owner {owner.name}")
    replies["week"] = await q.say(LEAD, "week P2")
    return replies


async def run_the_quarter(q: Quarter, until: date) -> None:
    """Tick twice a weekday and once a weekend day to `until`; people act as SCRIPT says, between the ticks."""
    script = list(SCRIPT)
    day = date(2026, 1, 5)
    while day <= until:
        for hour in TICK_HOURS_UTC if day.weekday() < 5 else TICK_HOURS_UTC[:1]:
            at = datetime.combine(day, datetime.min.time(), tzinfo=UTC).replace(hour=hour)
            while script and script[0][0] <= at:
                when, person, text = script.pop(0)
                q.clock.now = when
                if text.startswith(CLICK):
                    await q.click(person, q.last_to(person, "Where is it?"), text.removeprefix(CLICK))
                else:
                    await q.say(person, text)
            await q.tick(at)
        day += timedelta(days=1)


def assert_reads_well(card: dict[str, Any], validated: set[str]) -> None:
    """A card as a leader would paste it: valid, fits a Teams screen, names not ids, numbers for people.

    The schema check is the slow one: each kind of card (its heading, digits aside) is validated once."""
    kind = re.sub(r"\d+", "#", _first_text(card))
    if kind not in validated:
        validated.add(kind)
        assert schema_errors(card) == []
    assert card_height(card) <= HEIGHT_BUDGET_PX, _first_text(card)
    shown = all_text(card)
    assert "aad-" not in shown, shown
    assert not SCIENTIFIC.search(shown), shown
    assert not UNFORMATTED_NUMBER.search(shown), shown


EXPECTED = """\
Mon 05 Jan Content Writer: 1
  09:00 Good morning! Here is your week (2026-W02). | [Your week, 2026-W02]
Mon 05 Jan Lead: 1
  08:00 SQLs is at risk in P2 500 SQLs by 31 March: January 2026: behind its pace to target. | [SQLs is dri…
Thu 08 Jan Content Writer: 1
  09:00 [3 updates for you]
    · Heads up: T1 Draft the launch email is due Fri 9 Jan.
    · Heads up: T2 Write the webinar invite is due Fri 9 Jan.
    · Heads up: T3 Publish the pricing page copy is due Fri 9 Jan.
Thu 08 Jan Lead: 1
  08:00 P2 500 SQLs by 31 March: January 2026 is now off track (was at risk). | [500 SQLs by 31 March]
Fri 09 Jan Content Writer: 1
  16:00 The week is ending: 2 of your tasks are still open. | [Your week, 2026-W02]
Fri 09 Jan Lead: 2
  08:00 SQLs is at risk in P1 500 SQLs by 31 March: behind its pace to target. | [SQLs is drifting]
  15:00 [2 updates for you]
    · Your digest for 2026-W02:
    · P2 500 SQLs by 31 March: January 2026 is now at risk (was off track).
Sat 10 Jan Content Writer: 1
  09:00 [2 updates for you]
    · T2 Write the webinar invite was due Fri 9 Jan and is not done yet.
    · T3 Publish the pricing page copy was due Fri 9 Jan and is not done yet.
Sun 11 Jan Lead: 1
  08:00 [2 updates for you]
    · T2 Write the webinar invite was due Fri 9 Jan and is still open; Content Writer has not answere…
    · T3 Publish the pricing page copy was due Fri 9 Jan and is still open; Content Writer has not an…
Mon 12 Jan Content Writer: 1
  09:00 Good morning! Here is your week (2026-W03). | [Your week, 2026-W03]
Mon 12 Jan Designer: 1
  09:00 Good morning! Here is your week (2026-W03). | [Your week, 2026-W03]
Mon 12 Jan Lead: 1
  15:00 [4 updates for you]
    · P1 500 SQLs by 31 March is now off track (was at risk).
    · P2 500 SQLs by 31 March: January 2026 is now off track (was at risk).
    · SQLs is off track in P1 500 SQLs by 31 March: behind its pace to target.
    · SQLs is off track in P2 500 SQLs by 31 March: January 2026: behind its pace to target.
Tue 13 Jan Designer: 1
  09:00 Heads up: T4 Design the webinar banner is due Wed 14 Jan. | [Design the webinar banner]
Thu 15 Jan Content Writer: 1
  09:00 Heads up: T5 Write the nurture sequence is due Fri 16 Jan. | [Write the nurture sequence]
Thu 15 Jan Designer: 1
  09:00 T4 Design the webinar banner was due Wed 14 Jan and is not done yet. | [Design the webinar banner]
Fri 16 Jan Designer: 1
  16:00 The week is ending: 1 of your tasks is still open. | [Your week, 2026-W03]
Fri 16 Jan Lead: 2
  08:00 T4 Design the webinar banner was due Wed 14 Jan and is still open; Designer has not answered the re…
  15:00 Your digest for 2026-W03: | [How P1 500 SQLs by 31 March is doing]
Mon 19 Jan Designer: 1
  09:00 Good morning! Here is your week (2026-W04). | [Your week, 2026-W04]
Fri 23 Jan Lead: 1
  15:00 Your digest for 2026-W04: | [How P1 500 SQLs by 31 March is doing]
Fri 30 Jan Lead: 1
  15:00 Your digest for 2026-W05: | [How P1 500 SQLs by 31 March is doing]
Sun 01 Feb Lead: 1
  08:00 P2 500 SQLs by 31 March: January 2026 has ended. | [Retrospective: P2 500 SQLs by 31 March: January…
Mon 02 Feb Content Writer: 1
  09:00 Good morning! Here is your week (2026-W06). | [Your week, 2026-W06]
Mon 02 Feb Lead: 1
  15:00 P1 500 SQLs by 31 March is now on track (was off track). | [500 SQLs by 31 March]
Tue 03 Feb Lead: 1
  08:00 [3 updates for you]
    · P1 500 SQLs by 31 March is now at risk (was on track).
    · P3 500 SQLs by 31 March: February 2026 is now off track (was on track).
    · SQLs is off track in P3 500 SQLs by 31 March: February 2026: behind its pace to target.
Thu 05 Feb Content Writer: 1
  09:00 Heads up: T6 Write the February newsletter is due Fri 6 Feb. | [Write the February newsletter]
Fri 06 Feb Lead: 1
  15:00 Your digest for 2026-W06: | [How P1 500 SQLs by 31 March is doing]
Sun 08 Feb Lead: 1
  08:00 SQLs is at risk in P1 500 SQLs by 31 March: behind its pace to target. | [SQLs is drifting]
Mon 09 Feb Designer: 1
  09:00 Good morning! Here is your week (2026-W07). | [Your week, 2026-W07]
Tue 10 Feb Designer: 1
  09:00 Heads up: T7 Design the case study layout is due Wed 11 Feb. | [Design the case study layout]
Thu 12 Feb Designer: 1
  09:00 T7 Design the case study layout was due Wed 11 Feb and is not done yet. | [Design the case study la…
Thu 12 Feb Lead: 1
  08:00 [2 updates for you]
    · P1 500 SQLs by 31 March is now off track (was at risk).
    · SQLs is off track in P1 500 SQLs by 31 March: behind its pace to target.
Fri 13 Feb Lead: 1
  15:00 Your digest for 2026-W07: | [How P1 500 SQLs by 31 March is doing]
Fri 20 Feb Lead: 1
  15:00 Your digest for 2026-W08: | [How P1 500 SQLs by 31 March is doing]
Fri 27 Feb Lead: 1
  15:00 Your digest for 2026-W09: | [How P1 500 SQLs by 31 March is doing]
Sun 01 Mar Lead: 1
  08:00 P3 500 SQLs by 31 March: February 2026 has ended. | [Retrospective: P3 500 SQLs by 31 March: Februa…
Mon 02 Mar Lead: 1
  15:00 P1 500 SQLs by 31 March is now on track (was off track). | [500 SQLs by 31 March]
Wed 04 Mar Lead: 1
  08:00 [3 updates for you]
    · P1 500 SQLs by 31 March is now at risk (was on track).
    · P4 500 SQLs by 31 March: March 2026 is now off track (was on track).
    · SQLs is off track in P4 500 SQLs by 31 March: March 2026: behind its pace to target.
Fri 06 Mar Lead: 1
  15:00 Your digest for 2026-W10: | [How P1 500 SQLs by 31 March is doing]
Tue 10 Mar Lead: 1
  08:00 SQLs is at risk in P1 500 SQLs by 31 March: behind its pace to target. | [SQLs is drifting]
Fri 13 Mar Lead: 1
  15:00 Your digest for 2026-W11: | [How P1 500 SQLs by 31 March is doing]
Wed 18 Mar Lead: 1
  08:00 [2 updates for you]
    · P1 500 SQLs by 31 March is now off track (was at risk).
    · SQLs is off track in P1 500 SQLs by 31 March: behind its pace to target.
Fri 20 Mar Lead: 1
  15:00 Your digest for 2026-W12: | [How P1 500 SQLs by 31 March is doing]
Fri 27 Mar Lead: 1
  15:00 Your digest for 2026-W13: | [How P1 500 SQLs by 31 March is doing]
Mon 30 Mar Lead: 1
  16:00 [2 updates for you]
    · P1 500 SQLs by 31 March is now on track (was off track).
    · P4 500 SQLs by 31 March: March 2026 is now on track (was off track).
Wed 01 Apr Lead: 1
  09:00 P4 500 SQLs by 31 March: March 2026 has ended. | [Retrospective: P4 500 SQLs by 31 March: March 202…
"""
"""The quarter as each person receives it from the ticks, by their own day and time: how many messages, each
message's first sentence and card heading, and the messages a summary card folds together."""


async def test_a_quarter_as_each_person_receives_it(running: Running, clock: FakeClock) -> None:
    q = Quarter(running, clock)
    replies = await plan_the_quarter(q)
    [draft] = [a["content"] for s in replies["derive"] for a in s.body["attachments"]]
    assert "Owner: Lead" in all_text(draft)
    assert "KPIs: SQLs 172" in all_text(draft).split("\n")  # a prorated share of 500 SQLs, a whole number
    assert "P1's budget is $250,000." in said(replies["budget"][0].body)
    assert "tactical plans P2, P3, P4" in said(replies["save"][0].body)
    assert "P5" in said(replies["week"][0].body)

    await run_the_quarter(q, until=date(2026, 4, 1))

    assert q.diary.transcript() == EXPECTED.strip()
    # Each month is judged on its own SQLs, never on the quarter's running total against a month's share: on 2 March
    # the quarter stands at 340, and March, one day old, has won about 8 of them (February won the rest, up to its
    # last day on the line from 190 on 2 February to 340 on 2 March).
    recorded = [said(s.body) for s in running.connector.sent if said(s.body).startswith("Recorded SQLs")]
    assert [line.split("Counts for ")[1] for line in recorded] == [
        "P2 500 SQLs by 31 March: January 2026: 20 of its 172, off track.",
        "P3 500 SQLs by 31 March: February 2026: 11 of its 156, on track.",
        "P4 500 SQLs by 31 March: March 2026: 8 of its 172, on track.",
        "P4 500 SQLs by 31 March: March 2026: 178 of its 172, on track.",
    ]
    # After the quarter each month is final on what it won by its last day, on the line between the readings either
    # side of it: January 179 of 172, met; February 154 of 156, missed by a little; March 178 of 172, met (and the
    # quarter 510 of 500).
    [card] = [a["content"] for s in await q.say(LEAD, "plan P1") for a in s.body["attachments"]]
    assert [line for line in all_text(card).split("\n") if line.startswith("SQLs: ")] == [
        "SQLs: 510 of 500 (window ended) · Met",
        "SQLs: 179 of 172 (window ended) · Met",
        "SQLs: 154 of 156 (window ended) · Missed",
        "SQLs: 178 of 172 (window ended) · Met",
    ]
    # The KPI drifts, recovers and drifts again: each change is said once; an unchanged drift is not repeated
    # (SQLs stays at 20 from 12 January to 2 February, and the lead hears nothing more of it).
    drifts = [
        (day, line.split(" is ")[1].split(" in P")[0])
        for (name, day), lines in q.diary.days.items()
        for line in lines
        if name == LEAD.name and "behind its pace" in line and " in P1 " in line
    ]
    assert drifts == [
        (date(2026, 1, 9), "at risk"),
        (date(2026, 1, 12), "off track"),
        (date(2026, 2, 8), "at risk"),
        (date(2026, 2, 12), "off track"),
        (date(2026, 3, 10), "at risk"),
        (date(2026, 3, 18), "off track"),
    ]
    # What did not fit one message arrived folded: each reminder opens to its own card with its buttons.
    [folded] = [s for p, at, s in q.diary.messages if p == WRITER and at == datetime(2026, 1, 8, 8, tzinfo=UTC)]
    summary = folded.body["attachments"][0]["content"]
    opens = [a for a in of_type(summary, "Action.ShowCard") if a["title"] == "Open"]
    assert len(opens) == 3
    assert all("Done" in json.dumps(a["card"]) and "Snooze" in json.dumps(a["card"]) for a in opens)
    for (name, day), arrived in q.diary.days.items():
        assert sum(not line.startswith(" ") for line in arrived) <= DAILY_BUDGET, (name, day, arrived)
    validated: set[str] = set()
    for sent in running.connector.sent:  # the replies to what people typed and clicked too
        for attachment in sent.body.get("attachments") or []:
            assert_reads_well(attachment["content"], validated)
