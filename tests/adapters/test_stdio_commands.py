"""The operator's stdio allow-list: which program a bare name starts."""

from __future__ import annotations

import sysconfig
from pathlib import Path

from adapters.stdio_commands import StdioCommands


def test_a_bare_name_not_on_the_path_runs_from_the_bots_own_environment(tmp_path: Path) -> None:
    commands = StdioCommands.from_settings("mcp-server-time, nowhere-to-be-found")
    # The bot started as `.venv/bin/cos`, its virtualenv not activated: the PATH does not hold its scripts folder.
    environ = {"PATH": str(tmp_path)}
    launch = commands.launch("mcp-server-time", (), {}, environ=environ)
    assert launch.command == str(Path(sysconfig.get_path("scripts")) / "mcp-server-time")
    assert Path(launch.command).is_file()
    assert commands.launch("nowhere-to-be-found", (), {}, environ=environ).command == "nowhere-to-be-found"


def test_a_name_on_the_path_runs_from_the_path(tmp_path: Path) -> None:
    program = tmp_path / "mcp-server-time"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    launch = StdioCommands.from_settings("mcp-server-time").launch(
        "mcp-server-time", (), {}, environ={"PATH": str(tmp_path)}
    )
    assert launch.command == "mcp-server-time"  # the SDK finds it on the child's PATH, as before
