"""OAuth grants and sign-ins of user-delegated MCP adapters: kept sealed, one per adapter and person.

An adapter that acts as a person keeps what that person granted it (tokens, refreshed as they expire) in
`OAuthGrants`, sealed with the vault. When it has no usable grant, the person is sent a sign-in card (the bot's
`SignInChannel`); `SignIns` remembers the authorization request's `state` (its SHA-256 only) until the
authorization server sends the person back to the bot's callback (`answer_sign_in`, at whichever replica), and the
waiting delegation reads the answer once: it is wiped as it is read. A state is answered once, before it expires;
anything else is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from planner.store import Store
from planner.store import oauth as oauth_store
from planner.store.vault import Vault, VaultError

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.2
KEPT_AFTER_EXPIRY = timedelta(minutes=1)
"""How long an unended sign-in is kept past its expiry: its waiter reads an answer that came just in time at its next
poll, and ends the sign-in itself."""
_MOST_PARAMETER_CHARS = 4096


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


class OAuthGrants:
    """The sealed grants of one adapter of one tenant, by person (the adapter's own registration under "")."""

    def __init__(self, store: Store, tenant_id: str, adapter: str, vault: Vault) -> None:
        self._store = store
        self._tenant_id = tenant_id
        self._adapter = adapter
        self._vault = vault

    async def load(self, user_id: str) -> bytes | None:
        """What was kept for `user_id`, unsealed, or None (also when no configured key opens it: the person then
        signs in again rather than the adapter failing)."""
        async with self._store.read() as conn:
            sealed = await oauth_store.load_grant(conn, self._tenant_id, self._adapter, user_id)
        if sealed is None:
            return None
        try:
            return self._vault.decrypt(sealed)
        except VaultError:
            logger.warning("an OAuth grant of adapter %r cannot be unsealed with the configured keys", self._adapter)
            return None

    async def save(self, user_id: str, grant: bytes) -> None:
        """Keep `grant` for `user_id`, sealed, in place of what was kept."""
        async with self._store.transaction() as conn:
            await oauth_store.save_grant(
                conn, self._tenant_id, self._adapter, user_id, self._vault.encrypt(grant), at=self._store.clock()
            )


@dataclass(frozen=True, kw_only=True)
class SignIn:
    id: int
    expires_at: datetime


@dataclass(frozen=True, kw_only=True)
class SignInEnded:
    answer: dict[str, str] | None
    """The callback's parameters (a code, or the error the person or the vendor ended it with); None: it expired."""
    card: dict[str, Any] | None
    """Where the sign-in card lies (kept by `keep_sign_in_card`), to update it in place; None when it was not kept."""


class SignIns:
    """The sign-ins one tenant's delegations wait on."""

    def __init__(self, store: Store, tenant_id: str, vault: Vault) -> None:
        self._store = store
        self.tenant_id = tenant_id
        self._vault = vault

    async def open(
        self,
        user_id: str,
        adapter: str,
        authorization_url: str,
        state: str,
        *,
        within: timedelta,
        delegation_id: int | None = None,
    ) -> SignIn:
        """Wait for the callback that carries `state`, for `within` from now; `authorization_url` (which holds the
        state) is kept sealed until the person's browser takes it (`take_authorization_url`)."""
        now = self._store.clock()
        async with self._store.transaction() as conn:
            sign_in_id = await oauth_store.insert_sign_in(
                conn,
                tenant_id=self.tenant_id,
                user_id=user_id,
                adapter=adapter,
                delegation_id=delegation_id,
                state_hash=state_hash(state),
                authorization=self._vault.encrypt(authorization_url.encode()),
                asked_at=now,
                expires_at=now + within,
            )
        return SignIn(id=sign_in_id, expires_at=now + within)

    async def wait(self, sign_in: SignIn, *, poll_seconds: float = POLL_SECONDS) -> SignInEnded:
        """How the sign-in ended: the callback's parameters, read once (then wiped), or None when it expired first;
        and where its card lies, read as it ends (an ended sign-in may be purged any time after)."""
        while True:
            async with self._store.transaction() as conn:
                status, sealed = await oauth_store.sign_in_state(conn, sign_in.id)
                ended: str | None = None
                answer: dict[str, str] | None = None
                if status == oauth_store.ANSWERED and sealed is not None:
                    ended = oauth_store.CONSUMED
                    answer = json.loads(self._vault.decrypt(sealed))
                elif status == oauth_store.OPEN and self._store.clock() >= sign_in.expires_at:
                    ended = oauth_store.EXPIRED
                if ended is not None or status != oauth_store.OPEN:
                    card = await oauth_store.sign_in_card(conn, sign_in.id)
                    if ended is not None:
                        await oauth_store.close_sign_in(conn, sign_in.id, ended)
                    return SignInEnded(answer=answer, card=card)
            await asyncio.sleep(poll_seconds)


async def keep_sign_in_card(store: Store, tenant_id: str, sign_in_id: int, card: dict[str, Any]) -> None:
    """Keep where the card of the sign-in `sign_in_id` lies once it was sent (its conversation and activity id)."""
    async with store.transaction() as conn:
        await oauth_store.set_sign_in_card(conn, tenant_id, sign_in_id, card)


async def purge_sign_ins(store: Store, at: datetime) -> int:
    """Delete every tenant's sign-ins that ended (answered and read, or expired) and those past their expiry whose
    delegation no longer waits (the bot restarted meanwhile), as of `at` (the scheduler's hourly housekeeping);
    returns how many. Nothing is lost: an ended sign-in is never read again, and a link or callback for one that is
    gone is refused as for an expired one."""
    async with store.transaction() as conn:
        return await oauth_store.forget_sign_ins(conn, expired_before=at - KEPT_AFTER_EXPIRY)


async def take_authorization_url(store: Store, vault: Vault, sign_in_id: int) -> str | None:
    """The authorization URL of the open, unexpired sign-in `sign_in_id`, handed out once; None otherwise (also when
    no configured key opens it)."""
    async with store.transaction() as conn:
        sealed = await oauth_store.take_authorization(conn, sign_in_id, at=store.clock())
    if sealed is None:
        return None
    try:
        return vault.decrypt(sealed).decode()
    except VaultError:
        logger.warning("a sign-in's authorization URL cannot be unsealed with the configured keys")
        return None


async def answer_sign_in(store: Store, vault: Vault, parameters: Mapping[str, str]) -> bool:
    """Hand the callback's parameters to the sign-in its `state` names; False (and nothing kept) when no open,
    unexpired sign-in has that state: unknown, used already, or expired."""
    state = parameters.get("state", "")
    kept = {
        key: parameters[key][:_MOST_PARAMETER_CHARS] for key in ("code", "state", "iss", "error") if key in parameters
    }
    if not state or len(state) > _MOST_PARAMETER_CHARS or not ("code" in kept or "error" in kept):
        return False
    async with store.transaction() as conn:
        return await oauth_store.answer_sign_in(
            conn, state_hash(state), vault.encrypt(json.dumps(kept).encode()), at=store.clock()
        )
