"""What the tests' operator allows adapters: loopback, where every test peer runs (`COS_ADAPTER_ALLOWED_NETWORKS`),
and the project's stdio servers by name (`COS_STDIO_COMMANDS`). Tests that register adapters as an admin would, in
chat, pass these: the operator's path is the one they take."""

from __future__ import annotations

import sys
from pathlib import Path

from adapters import AdapterLimits
from adapters.egress import Egress
from adapters.stdio_commands import StdioCommand, StdioCommands

ROOT = Path(__file__).resolve().parents[2]

LOOPBACK = Egress.allowing("127.0.0.0/8", "::1/128")
"""Public addresses and loopback."""

STDIO_COMMANDS = StdioCommands.of(
    StdioCommand(name="mcp-server-time", command=sys.executable, args=("-m", "mcp_server_time"), allow_args=True),
    StdioCommand(
        name="vendor-agent",
        command=sys.executable,
        args=("-m", "tests.adapters.vendor_agent", "--stdio"),
        cwd=str(ROOT),
    ),
)

LIMITS = AdapterLimits(egress=LOOPBACK, stdio_commands=STDIO_COMMANDS)
"""The operator's limits of the test bots: loopback allowed, the project's stdio servers listed."""
