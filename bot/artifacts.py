"""A delegation's artifacts (an agent's whole answer when it was too big to show, the screenshots a browser agent took
as evidence), opened by the owner from the result card through a signed, expiring link the bot serves:
`GET /api/artifacts/{tenant}/{delegation}/{evidence}?expires=…&signature=…`. A link opens only the evidence it names,
of the delegation it names: the path is signed whole, and the evidence is looked up among that delegation's.

Signed like chart links (bot/charts.py), with a key of their own derived from the secret keys, so a chart link's
signature opens no artifact. A file is served as a download of plain text, an image as the image it was checked to be
(both `nosniff`, with a sandboxing CSP): what an agent wrote is data, and never runs in the owner's browser as a page
of ours. Screenshots are kept encrypted at rest (with the fields the browser filled masked) and decrypted only to
answer a valid link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from bot.cards.delegation import ArtifactShown
from bot.charts import signing_keys
from bot.settings import Settings
from planner.domain.delegations import Delegation, StoredEvidence
from planner.services.delegation import evidence_of
from planner.services.tenants import Tenants
from planner.store import Store
from planner.store.vault import Vault, VaultError

logger = logging.getLogger(__name__)

ARTIFACT_PATH = "/api/artifacts/{tenant}/{delegation}/{evidence}"
LINK_LIFETIME = timedelta(days=7)
_KEY_LABEL = b"cos artifact links v1"


@dataclass(frozen=True)
class ArtifactLinks:
    """Mints and checks signed, expiring links to a delegation's artifacts."""

    keys: tuple[bytes, ...]
    base_url: str = ""
    vault: Vault | None = None
    """What opens the kept files (evidence is encrypted at rest); None: they cannot be shown."""

    def link(self, tenant_id: str, delegation_id: int, evidence_id: int, *, now: datetime) -> str | None:
        """A URL to the artifact, valid for LINK_LIFETIME from `now`; None without a key or a public URL to link to."""
        path = ARTIFACT_PATH.format(tenant=tenant_id, delegation=delegation_id, evidence=evidence_id)
        return self.signed(path, until=now + LINK_LIFETIME)

    def signed(self, path: str, *, until: datetime) -> str | None:
        """A URL to the bot's `path`, signed whole and valid until `until` (checked by `verify`); None without a key
        or a public URL to link to. Other kinds of links (a sign-in's) are signed by it too: their paths differ, so
        one kind's signature opens nothing of another."""
        if not self.keys or not self.base_url:
            return None
        expires = int(until.timestamp())
        signature = hmac.new(self.keys[0], _message(path, expires), hashlib.sha256).hexdigest()
        return f"{self.base_url.rstrip('/')}{path}?expires={expires}&signature={signature}"

    def verify(self, path: str, expires: int, signature: str, *, now: datetime) -> bool:
        """True when `signature` is one of ours for this path and expiry, and the expiry is still ahead."""
        if expires <= now.timestamp():
            return False
        message = _message(path, expires)
        return any(
            hmac.compare_digest(hmac.new(key, message, hashlib.sha256).hexdigest(), signature) for key in self.keys
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> ArtifactLinks:
        """Links keyed from the secret keys and rooted at the bot's public URL; none (off, logged) without them."""
        try:
            keys = signing_keys(settings, label=_KEY_LABEL)
        except (VaultError, OSError) as error:
            logger.error("artifact links are off: %s", error)
            keys = ()
        try:
            vault = settings.vault()
        except VaultError as error:
            logger.error("kept files cannot be shown: %s", error)
            vault = None
        return cls(keys, base_url=settings.public_url, vault=vault)


def _message(path: str, expires: int) -> bytes:
    return f"{path}\n{expires}".encode()


SHOWN_KINDS = frozenset({"image", "screenshot"})
"""Evidence shown as a picture: an image an agent returned, a screenshot a browser agent took."""
_SIGNATURES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff", "image/gif": b"GIF8"}
INLINE_IMAGE_BYTES = 12 * 1024
"""An image up to this size goes in the card itself (a `data:` URI); a larger one through a signed link, so the card
stays within what Teams takes in one message."""


def artifacts(evidence: list[StoredEvidence]) -> list[StoredEvidence]:
    """The evidence the card shows or links to: artifacts kept whole, images and screenshots (checked to be what they
    say: a picture whose bytes are not of its type is neither shown nor served)."""
    return [
        item
        for item in evidence
        if item.content is not None
        and (
            item.kind == "artifact"
            or (item.kind in SHOWN_KINDS and item.content.startswith(_SIGNATURES.get(item.media_type, b"\0never")))
        )
    ]


async def artifacts_shown(store: Store, links: ArtifactLinks | None, delegation: Delegation) -> list[ArtifactShown]:
    """What a finished delegation's card shows of its evidence, each with a signed link when the bot can mint one (a
    small image inline instead); nothing while it runs."""
    if not delegation.finished:
        return []
    now = store.clock()
    shown = []
    vault = links.vault if links is not None else None
    for item in artifacts(await evidence_of(store, delegation.tenant_id, delegation.id, vault)):
        url = links.link(delegation.tenant_id, delegation.id, item.id, now=now) if links is not None else None
        if item.kind == "image" and item.content is not None and item.size <= INLINE_IMAGE_BYTES:
            url = f"data:{item.media_type};base64,{base64.b64encode(item.content).decode('ascii')}"
        shown.append(ArtifactShown(description=item.description, size=item.size, url=url, kind=item.kind))
    return shown


class ArtifactEndpoint:
    """`GET /api/artifacts/{tenant}/{delegation}/{evidence}`: the artifact's content, for a valid link only."""

    def __init__(self, tenants: Tenants, settings: Settings, *, links: ArtifactLinks | None = None) -> None:
        """`links`: the keys to check links with; by default derived from `settings` on the first request."""
        self._tenants = tenants
        self._settings = settings
        self._links = links

    def links(self) -> ArtifactLinks:
        if self._links is None:  # derived on the first request: in local mode that reads, or makes, the key file
            self._links = ArtifactLinks.from_settings(self._settings)
        return self._links

    async def handle(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        refused = web.json_response({"error": "This link is not valid or has expired."}, status=403)
        try:
            delegation_id = int(request.match_info["delegation"])
            evidence_id = int(request.match_info["evidence"])
            expires = int(request.query.get("expires", ""))
        except ValueError:
            return refused
        path = ARTIFACT_PATH.format(tenant=tenant, delegation=delegation_id, evidence=evidence_id)
        links = self.links()
        store = self._tenants.store
        if not links.keys or not links.verify(path, expires, request.query.get("signature", ""), now=store.clock()):
            logger.warning("refused an artifact link with a bad or expired signature")
            return refused
        kept = await evidence_of(store, tenant, delegation_id, links.vault)
        found = [item for item in artifacts(kept) if item.id == evidence_id]
        if not found or found[0].content is None:
            return web.json_response({"error": "That file is no longer kept."}, status=404)
        if found[0].kind in SHOWN_KINDS:
            return web.Response(
                body=found[0].content,
                content_type=found[0].media_type,
                headers={
                    "X-Content-Type-Options": "nosniff",
                    "Content-Security-Policy": "sandbox; default-src 'none'",
                    "Cache-Control": "private, max-age=3600",
                },
            )
        return web.Response(
            body=found[0].content,
            content_type="text/plain",
            charset="utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="D{delegation_id}-answer.txt"',
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "sandbox; default-src 'none'",
                "Cache-Control": "private, max-age=3600",
            },
        )


def add_artifact_routes(
    app: web.Application, tenants: Tenants, settings: Settings, *, links: ArtifactLinks | None = None
) -> None:
    """Serve `GET /api/artifacts/{tenant}/{delegation}/{evidence}` on `app`."""
    endpoint = ArtifactEndpoint(tenants, settings, links=links)
    app.router.add_get("/api/artifacts/{tenant}/{delegation:\\d+}/{evidence:\\d+}", endpoint.handle)
