"""A delegation followed live: its card, sent to the task's owner when the delegation is started from chat, updated in
place as the agent reports progress, and a last time with where the delegation ended.

Nothing here waits on the delegation's path: a step reported only marks the card changed, and a background task of
the card's sends the update, at most one every `LiveCards.every_seconds` (Teams' limits are per conversation, and a
chatty agent would spend them), always with the latest steps. The final state is always sent, whatever the throttle.
A card that cannot be sent or updated is logged and given up: the result still reaches the owner through the outbox.
The card's updates live in this process (a delegation started from chat runs where it was started); where the card
lies is kept with the delegation, so that the result, sent through the outbox by whichever replica, updates the card
in place rather than arriving as a second message (see `bot.nudges` and `Sender`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace

from bot.addressing import Undeliverable
from bot.artifacts import artifacts_shown
from bot.cards.delegation import MOST_STEPS, delegation_card
from bot.sender import Sender
from bot.teams.channel import Address, Outgoing, Posted, TeamsError
from bot.text import messages
from planner.domain.delegations import Delegation
from planner.services.delegation import keep_live_card

logger = logging.getLogger(__name__)

UPDATE_EVERY_SECONDS = 3.0
"""At most one progress update of a card this often."""
FINISH_SECONDS = 10.0
"""How long the final update may hold up the result's message (Teams answering slowly or not at all)."""


class LiveCards:
    """Follows delegations in the cards it sends, through `sender` (so within Teams' limits)."""

    def __init__(
        self, sender: Sender, *, every_seconds: float = UPDATE_EVERY_SECONDS, finish_seconds: float = FINISH_SECONDS
    ) -> None:
        self.sender = sender
        self.every_seconds = every_seconds
        self.finish_seconds = finish_seconds

    def follow(self, delegation: Delegation, recipient: str, *, title: str | None = None) -> LiveCard:
        """Start following `delegation` in a card sent to `recipient` (sent in the background); `title`: its task's."""
        return LiveCard(self, delegation, recipient, title=title)


class LiveCard:
    """One delegation's card: `progressed` as steps arrive, `finish` once it has settled."""

    def __init__(self, cards: LiveCards, delegation: Delegation, recipient: str, *, title: str | None) -> None:
        self._cards = cards
        self._title = title
        self._delegation = delegation
        self._recipient = recipient
        self._steps = list(delegation.progress)
        self._changed = asyncio.Event()
        self._where: tuple[Address, str] | None = None
        self._in_flight: asyncio.Task[None] | None = None
        self._pump = asyncio.create_task(self._run(), name=f"live card of D{delegation.id}")

    def progressed(self, step: str) -> None:
        """A step the agent reported: shown at the next update. Returns at once."""
        self._steps.append(step)
        del self._steps[:-MOST_STEPS]
        self._changed.set()

    async def finish(self, delegation: Delegation | None) -> None:
        """Show where `delegation` ended (the card's last update, whatever the throttle), giving Teams
        `LiveCards.finish_seconds` at most; None (it could not be read): stop updating the card. Never raises."""
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump
        if delegation is None:
            return
        try:
            async with asyncio.timeout(self._cards.finish_seconds):
                await self._finish(delegation)
        except TimeoutError:
            logger.warning("the live card of D%s was left as it was: Teams did not answer in time", delegation.id)
            if self._in_flight is not None:
                self._in_flight.cancel()

    async def _finish(self, delegation: Delegation) -> None:
        if self._in_flight is not None:
            await self._in_flight  # a send or an update under way lands before the final one
        if self._where is None:
            return
        try:
            shown = await artifacts_shown(self._cards.sender.store, self._cards.sender.artifact_links, delegation)
        except Exception:  # the top of the card's job: the card stays as it was, the result goes through the outbox
            logger.exception("the live card of D%s could not show where it ended", delegation.id)
            return
        # Finished, the result's own update follows with what to do next; stopped, it says it waits.
        lead = None if delegation.finished else messages.delegation_stopped()
        await self._update(_card_only(delegation_card(delegation, shown, title=self._title, lead=lead)))

    async def _run(self) -> None:
        # Shielded: cancelling the pump (on finish) must not cut a send or an update in half.
        self._in_flight = asyncio.ensure_future(self._send())
        await asyncio.shield(self._in_flight)
        while self._where is not None:
            await self._changed.wait()
            self._changed.clear()
            running = replace(self._delegation, progress=tuple(self._steps))
            self._in_flight = asyncio.ensure_future(self._update(_card_only(self._card(running))))
            await asyncio.shield(self._in_flight)
            await asyncio.sleep(self._cards.every_seconds)  # the throttle: steps meanwhile wait for the next update

    async def _send(self) -> None:
        delegation = self._delegation
        message = _card_only(self._card(delegation), summary=messages.delegation_following(delegation.adapter))
        try:
            to, activity_id = await self._cards.sender.send_now(delegation.tenant_id, self._recipient, message)
        except (Undeliverable, TeamsError) as error:
            logger.warning("the live card of D%s could not be sent: %s", delegation.id, error)
            return
        except Exception:  # the top of the card's job: the delegation runs on without it
            logger.exception("the live card of D%s could not be sent", delegation.id)
            return
        if not activity_id:
            logger.warning("the live card of D%s was sent without an id: it cannot be updated", delegation.id)
            return
        self._where = (to, activity_id)
        card = {"recipient": self._recipient, **Posted(address=to, activity_id=activity_id).stored()}
        try:
            await keep_live_card(self._cards.sender.store, delegation.tenant_id, delegation.id, card)
        except Exception:  # the top of the card's job: the result then arrives as a message of its own
            logger.exception("where the live card of D%s lies could not be kept", delegation.id)

    def _card(self, running: Delegation) -> dict[str, object]:
        lead = messages.delegation_following(running.adapter)
        return delegation_card(running, title=self._title, lead=lead)

    async def _update(self, message: Outgoing) -> None:
        assert self._where is not None
        to, activity_id = self._where
        try:
            await self._cards.sender.update_now(self._delegation.tenant_id, to, activity_id, message)
        except TeamsError as error:  # the next update carries the latest state anyway
            logger.warning("the live card of D%s was not updated: %s", self._delegation.id, error)
        except Exception:  # the top of the card's job: the delegation runs on without it
            logger.exception("the live card of D%s was not updated", self._delegation.id)


def _card_only(card: dict[str, object], *, summary: str | None = None) -> Outgoing:
    # One activity, its words in the card: a message of text and a card may be shown (and answered, with its id) as
    # two, and the one updated would then be the text. `summary` is what a notification of it says.
    return Outgoing(cards=(card,), summary=summary)
