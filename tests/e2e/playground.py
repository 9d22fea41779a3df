"""Drives Microsoft's Teams emulator (Agents Playground) through its own HTTP and WebSocket API.

The playground posts Teams-shaped activities to the bot and implements the Bot Connector API the bot replies
through; every frame it would show in its chat window arrives on its conversation WebSocket.

Its built-in tenant has sample users with personal names; `write_config` gives it one whose people are named by role
instead (`TENANT`), which the tests and the README's screenshots use.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

Frame = dict[str, Any]

CONFIG_ENV = "M365_AGENTS_PLAYGROUND_CONFIG_PATH"
"""Where the emulator reads its tenant from (else `.m365agentsplayground.yml` in its working folder, else its
built-in sample tenant). A file it rejects makes it exit 1 saying nothing about why on stdout or stderr: the reason
is in `devTools/m365agentsplayground.log` under its working folder."""


def _person(number: int, role: str, mailbox: str) -> dict[str, str]:
    """A user of the emulator's tenant, named by role; its fields are those of the emulator's config schema."""
    first, _, rest = role.partition(" ")
    address = f"{mailbox}@example.com"
    return {
        "id": f"user-id-{number}",
        "name": role,
        "userPrincipleName": address,  # sic: the emulator's spelling
        "aadObjectId": f"00000000-0000-0000-0000-00000000000{20 + number}",
        "givenName": first,
        "surname": rest,
        "email": address,
    }


TENANT: dict[str, Any] = {
    "version": "0.1.1",
    "tenantId": "00000000-0000-0000-0000-0000000000001",
    "bot": {"id": "00000000-0000-0000-0000-00000000000011", "name": "Chief of Staff"},
    "currentUser": _person(0, "Marketing lead", "lead"),
    # The schema wants exactly five other users.
    "users": [
        _person(1, "Content writer", "writer"),
        _person(2, "Designer", "designer"),
        _person(3, "Web developer", "developer"),
        _person(4, "Events manager", "events"),
        _person(5, "Sales lead", "sales"),
    ],
    "personalChat": {"id": "personal-chat-id"},
    "groupChat": {"id": "group-chat-id", "name": "Marketing team chat"},
    "team": {
        "id": "team-id",
        "name": "Marketing",
        "aadGroupId": "00000000-0000-0000-0000-000000000031",
        "channels": [{"id": "channel-announcements-id", "name": "Announcements"}],
    },
}
"""The emulator's tenant with its people named by role and example.com addresses, ids as in its built-in one."""


def write_config(folder: Path) -> dict[str, str]:
    """Writes `TENANT` as the emulator's config file in `folder`; the environment that points the emulator at it.

    JSON is YAML, so the file is written as JSON.
    """
    path = folder / "playground-tenant.yml"
    path.write_text(json.dumps(TENANT, indent=2) + "\n")
    return {CONFIG_ENV: str(path)}


class Playground:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.frames: list[Frame] = []
        self._arrived = asyncio.Condition()

    async def __aenter__(self) -> Playground:
        self.http = aiohttp.ClientSession()
        answer = await self.http.get(self.base + "/_internal/v1/testConfig")
        self.config = (await answer.json())["config"]
        self.me = self.config["currentUser"]["id"]
        self.bot_id = self.config["bot"]["id"]
        # Connect before anything happens: frames sent with no client connected go to the first one only.
        self.ws = await self.http.ws_connect(
            self.base.replace("http", "ws", 1) + "/_ws_conversation/v1/conversations/stream"
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._reader.cancel()
        await self.ws.close()
        await self.http.close()

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                async with self._arrived:
                    self.frames.append(json.loads(message.data))
                    self._arrived.notify_all()

    async def wait_for(self, matches: Callable[[Frame], bool], *, start: int = 0, within: float = 20.0) -> Frame:
        """The first frame from index `start` that matches (bounded wait)."""

        def found() -> Frame | None:
            return next((f for f in self.frames[start:] if matches(f)), None)

        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: found() is not None)
        frame = found()
        assert frame is not None
        return frame

    def conversation(self, kind: str) -> str:
        config = self.config
        return {
            "personal": config["personalChat"]["id"],
            "group": config["groupChats"][0]["id"],
            "channel": config["teams"][0]["channels"][0]["id"],
        }[kind]

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        async with self.http.post(self.base + path, json=body) as answer:
            text = await answer.text()
            assert answer.status < 300, f"{path} -> {answer.status} {text}"
            return json.loads(text) if text else None

    async def install(self, conversation: str) -> None:
        await self._post(f"/_debug/conversation/{conversation}/installation", {})

    async def say(self, conversation: str, text: str, *, mention_bot: bool = False) -> Any:
        body: dict[str, Any] = {"from": {"id": self.me}, "text": text, "textFormat": "plain"}
        if mention_bot:
            name = self.config["bot"]["name"]
            body["text"] = f"<at>{name}</at> {text}"
            body["textFormat"] = "xml"
            body["mentions"] = [{"mentioned": {"id": self.bot_id, "name": name}, "text": f"<at>{name}</at>"}]
        return await self._post(f"/_conversation/v1/conversations/{conversation}/messages", body)

    async def submit(self, conversation: str, reply_to_id: str, value: dict[str, Any]) -> Any:
        return await self._post(
            "/_conversation/v1/submit",
            {"conversation": {"id": conversation}, "from": {"id": self.me}, "replyToId": reply_to_id, "value": value},
        )

    async def execute(self, conversation: str, reply_to_id: str, verb: str, data: dict[str, Any]) -> Any:
        return await self._post(
            "/_conversation/v1/invoke",
            {
                "name": "adaptiveCard/action",
                "from": {"id": self.me},
                "conversation": {"id": conversation},
                "replyToId": reply_to_id,
                "value": {"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"},
            },
        )


def from_bot(action: str = "createMessage", containing: str | None = None) -> Callable[[Frame], bool]:
    """Matches a frame of the bot's messages (created or updated) whose text or cards contain a string."""

    def matches(frame: Frame) -> bool:
        if frame.get("action") != action:
            return False
        message = frame.get("message") or {}
        blob = (message.get("text") or "") + json.dumps(message.get("attachments") or [])
        return containing is None or containing in blob

    return matches
