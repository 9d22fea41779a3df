"""A stdio MCP server that reports how it was started: its environment (names and values), its working folder and
its arguments, through the tool `started_with`. The adapter-safety tests run it as an operator's allow-list entry.

    python tests/security/env_server.py [ARG…]
"""

from __future__ import annotations

import asyncio
import os
import sys

from mcp.server.mcpserver import MCPServer


def main() -> None:
    server = MCPServer("env-reporter", version="1.0", log_level="WARNING", subscriptions=False)

    @server.tool(description="How this process was started: environment, working folder, arguments.")
    def started_with() -> dict[str, object]:
        return {"env": dict(os.environ), "cwd": os.getcwd(), "args": sys.argv[1:]}

    asyncio.run(server.run_stdio_async())


if __name__ == "__main__":
    main()
