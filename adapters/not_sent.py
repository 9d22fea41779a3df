"""`NotSent`, shared by the A2A and MCP agents: what a delegation raises inside its adapter when its request
provably never left, so that sending it again is safe."""

from __future__ import annotations


class NotSent(Exception):
    """The request never reached the agent, provably: it may be sent again (the MCP agent does so once, on a fresh
    session; the A2A agent reports the agent as not reached). `reason` says why, in words an admin can act on."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
